// Registry credentials and authentication challenges: pure functions, no network.
// Everything here is safe to call from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"  // Base64Encode, Base64Decode
#include "common/status.h"

namespace berth::registry {

// Credentials for one registry, shaped like CRI's AuthConfig and Docker's config.json entries.
// Use either username/password (or `auth`, base64 of "user:pass"), an `identity_token`
// (an OAuth2 refresh token, exchanged at the token realm), or a `registry_token` (sent as the
// bearer token directly).
struct AuthConfig {
  std::string username;
  std::string password;
  std::string auth;
  std::string identity_token;
  std::string registry_token;

  bool empty() const {
    return username.empty() && password.empty() && auth.empty() && identity_token.empty() &&
           registry_token.empty();
  }
  bool operator==(const AuthConfig&) const = default;
};

// Username and password from `username`/`password`, or else decoded from `auth`.
// INVALID_ARGUMENT if `auth` is not base64 of "user:pass". Returns {"", ""} when neither is set.
struct BasicCredentials {
  std::string username;
  std::string password;
  bool empty() const { return username.empty() && password.empty(); }
};
StatusOr<BasicCredentials> ResolveBasicCredentials(const AuthConfig& auth);

// Looks `registry_host` up in the "auths" object of a Docker config.json text. Keys may be a
// bare host ("127.0.0.1:5000"), a URL ("https://host/v1/"); "docker.io", "index.docker.io" and
// "registry-1.docker.io" (and the legacy "https://index.docker.io/v1/") are one registry.
// An exact key match wins over a normalized one. Returns nullopt when no entry matches.
// INVALID_ARGUMENT (naming `source_name`) on malformed JSON or a malformed `auth` field.
StatusOr<std::optional<AuthConfig>> ParseDockerConfig(std::string_view json_text,
                                                      std::string_view registry_host,
                                                      std::string_view source_name);

// Same, reading the file. A missing file is not an error: it yields nullopt.
StatusOr<std::optional<AuthConfig>> LookupDockerConfig(const std::filesystem::path& config_json,
                                                       std::string_view registry_host);

// One challenge of a WWW-Authenticate header: scheme lowercased ("bearer", "basic"),
// parameter names lowercased, values unquoted.
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;

  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? "" : it->second;
  }
  bool operator==(const AuthChallenge&) const = default;
};

// Parses one WWW-Authenticate header value (RFC 7235), which may hold several challenges:
//   Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"
//   Basic realm="x", Bearer realm="y"
// Malformed parts are skipped; an empty vector means nothing usable.
std::vector<AuthChallenge> ParseAuthChallenges(std::string_view header_value);

}  // namespace berth::registry
