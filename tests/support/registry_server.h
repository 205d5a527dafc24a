// Runs a real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, a
// free port, storage in a fresh temp dir, optionally with htpasswd basic auth, token auth
// (with an in-process token service on 127.0.0.1 that signs JWTs with a fresh key) or TLS
// (a fresh self-signed certificate for 127.0.0.1). Everything is removed by Stop().
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "support/fake_http_server.h"

namespace berth::testing {

inline constexpr char kRegistryBinary[] = "/usr/bin/docker-registry";

// One htpasswd line ("user:$2y$...") with a bcrypt hash, made by `htpasswd -Bbn`.
StatusOr<std::string> MakeHtpasswdLine(std::string_view user, std::string_view password);

struct RegistryServerOptions {
  // Basic auth from this htpasswd file (bcrypt entries only).
  std::filesystem::path htpasswd_file;
  // Or basic auth for one user: the server writes the htpasswd file itself.
  std::string username;
  std::string password;

  // Token auth: the registry answers 401 with a Bearer challenge whose realm is
  // token_realm(). The token service grants the requested scopes, and requires
  // token_username/token_password as basic credentials if token_username is set. A POST
  // with grant_type=refresh_token is accepted only if refresh_token equals token_refresh_token
  // (when that is set). Exclusive with basic auth.
  bool token_auth = false;
  std::string token_username;
  std::string token_password;
  std::string token_refresh_token;

  // Serve https with a fresh self-signed certificate for 127.0.0.1 (see ca_file()).
  bool tls = false;
};

// Not thread-safe: start, use and stop from one test thread (requests may come from any).
class RegistryServer {
 public:
  RegistryServer();
  ~RegistryServer();  // Stop()s
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  // Starts the registry and waits until it answers GET /v2/ (at most 20s). On failure the
  // message carries the tail of the registry's log.
  Status Start(RegistryServerOptions options = {});
  // Stops the registry (SIGTERM, then SIGKILL after 5s) and removes its directory. Idempotent.
  void Stop();

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }  // registry host
  std::string url() const;  // http(s)://127.0.0.1:port
  // The registry's TLS certificate (PEM), when started with tls.
  std::filesystem::path ca_file() const { return dir_ / "tls-cert.pem"; }
  std::string token_realm() const;  // "" without token auth
  // The token service's log of requests (token auth only).
  std::vector<RecordedRequest> token_requests() const;
  // Mints a token granting `actions` ("pull", "pull,push") on `repository` (token auth only),
  // e.g. to push test content.
  StatusOr<std::string> IssueToken(std::string_view repository, std::string_view actions) const;
  std::string Log() const;  // the registry's output so far

 private:
  struct TokenIssuer;
  Status StartOnce();
  CannedResponse HandleTokenRequest(const RecordedRequest& req);

  RegistryServerOptions options_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::unique_ptr<TokenIssuer> issuer_;
  std::unique_ptr<FakeHttpServer> token_server_;
};

}  // namespace berth::testing
