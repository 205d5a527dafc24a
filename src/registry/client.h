// OCI distribution-spec pull client on libcurl: manifests and blobs, with anonymous, basic and
// bearer-token authentication, hosts.toml mirrors, TLS options and retries.
//
// Request flow for one call: the endpoints of ResolveEndpoints(hosts_dir, registry_host) that
// have the needed capability (`resolve` for a manifest by tag, `pull` for a manifest by digest
// and for blobs) are tried in order. Each endpoint is first asked anonymously (or with a token
// cached for the same endpoint, repository and credentials); on 401 the WWW-Authenticate
// challenge decides between Basic and Bearer, credentials come from the call's AuthConfig or
// else the first docker config.json in ClientOptions that has an entry for the registry host.
// A 404, an unreachable endpoint, or any other failure moves on to the next endpoint (as
// containerd does), except that a blob download never moves on after it delivered bytes.
// When all endpoints fail, the status code is that of the first failure that is not NOT_FOUND
// (NOT_FOUND when every endpoint answered 404), and the message names every endpoint tried
// with its error.
//
// Error codes: NOT_FOUND (unknown repository, tag, manifest or blob), UNAUTHENTICATED (401
// after authenticating, or no credentials for a registry that requires them),
// PERMISSION_DENIED (403), UNAVAILABLE (unreachable, TLS failure, 5xx after retries),
// RESOURCE_EXHAUSTED (429 after retries), DEADLINE_EXCEEDED (no progress for stall_timeout),
// DATA_LOSS (digest or size mismatch), INVALID_ARGUMENT (bad repository, reference or hosts.toml),
// FAILED_PRECONDITION (no configured endpoint has the needed capability).
//
// Outgoing traffic goes only to the configured endpoints, the token realms they name and the
// redirects they answer with (http and https only).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/media_types.h"
#include "common/status.h"
#include "registry/auth.h"
#include "registry/hosts.h"

namespace berth::registry {

struct ClientOptions {
  std::filesystem::path hosts_dir;  // containerd hosts.toml layout; empty: default endpoints
  std::vector<std::filesystem::path> docker_config_paths;  // searched in order; missing = skip
  // A transfer that moves no byte for this long fails (connect included). At least 1s.
  std::chrono::seconds stall_timeout{60};
  std::string user_agent = "berth/0.1";
  // Attempts per endpoint for transient failures (timeouts, resets, 5xx, 429); >= 1.
  // A refused connection or a TLS failure is not retried: the next endpoint is tried instead.
  int max_attempts = 3;
  // Pause before the second attempt; doubles for each further one (capped at 5s).
  std::chrono::milliseconds retry_backoff{200};
};

struct Manifest {
  std::string media_type;  // Content-Type, or the body's "mediaType" if the former is generic
  std::string body;        // exact bytes served
  Digest digest;           // sha256 of body
};

// Asks whether the caller of a request has gone: OK to go on, anything else (CANCELLED,
// DEADLINE_EXCEEDED) aborts the transfer within about a second and is returned unchanged, with
// no retry and no other endpoint tried. Called from the transferring thread; must be cheap.
using CancelCheck = std::function<Status()>;

// Thread-safe: one Client per daemon, shared by all pulls; calls may run in parallel (each
// transfer uses its own curl handle; idle handles are pooled to keep connections alive).
// Bearer tokens are cached per (endpoint, repository, credentials) until they expire.
class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // GET <prefix>/<repository>/manifests/<reference> accepting Docker schema2 manifests and
  // lists and OCI manifests and indexes. `repository` is the full path ("library/busybox");
  // `reference` is a tag or "sha256:<hex>". For a digest reference the body must hash to it
  // (else DATA_LOSS, and the next endpoint is tried). Manifests over 8 MiB are refused.
  // `cancelled`, if set, is polled during transfers (see CancelCheck).
  StatusOr<Manifest> GetManifest(std::string_view registry_host, std::string_view repository,
                                 std::string_view reference, const std::optional<AuthConfig>& auth,
                                 const CancelCheck& cancelled = {});

  // Streams GET <prefix>/<repository>/blobs/<digest> (following redirects) to `sink`, chunk by
  // chunk as received, hashing on the way. Afterwards the sha256 must equal `digest`, else
  // DATA_LOSS "digest mismatch"; with expected_size >= 0 the size must match too (checked
  // against Content-Length before the first byte, and while streaming). A non-OK status from
  // `sink` aborts the transfer and is returned unchanged. No progress for stall_timeout gives
  // DEADLINE_EXCEEDED naming the blob. Transient failures are retried (and other endpoints
  // tried) only while no byte has reached `sink`; after that the caller must start over.
  // `sink` is called on the calling thread.
  Status GetBlob(std::string_view registry_host, std::string_view repository, const Digest& digest,
                 int64_t expected_size, const std::function<Status(const char*, size_t)>& sink,
                 const std::optional<AuthConfig>& auth, const CancelCheck& cancelled = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Validates a repository path ("library/busybox") and a tag, as the distribution spec
// defines them; INVALID_ARGUMENT naming the value otherwise.
Status ValidateRepository(std::string_view repository);
Status ValidateTag(std::string_view tag);

}  // namespace berth::registry
