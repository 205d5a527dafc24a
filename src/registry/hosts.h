// Where to send registry requests: containerd's hosts.toml directory layout.
//
//   <hosts_dir>/<registry host>/hosts.toml   (the host may carry a port: "127.0.0.1:5000")
//   <hosts_dir>/_default/hosts.toml          (used when the host has no directory of its own)
//
// A hosts.toml has an optional top-level `server` (the upstream) and `[host."URL"]` tables
// (mirrors, tried first, in file order). Each of them, and the top level for `server`, accepts:
//   capabilities = ["pull", "resolve", "push"]   default: all three
//   ca = "file.pem" | ["a.pem", "b.pem"]         relative paths are relative to the file's dir
//   client = "both.pem" | ["both.pem"] | [["cert.pem", "key.pem"]]
//   skip_verify = true|false
//   override_path = true|false                   URL path is the API root (no "/v2" appended)
//   header = { "Name" = "value" | ["v1", "v2"] }
//
// Unlike containerd, Berth never adds an endpoint that a present hosts.toml does not name:
// without `server` there is no fallback to the default upstream. This keeps a host that an
// administrator (or a test) redirected from ever being contacted, not even by a DNS lookup.
//
// All functions here are pure or read only files; they are safe to call from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace berth::registry {

// One place that can answer distribution-API requests for a registry host.
struct Endpoint {
  std::string url;                  // scheme://host[:port], scheme is http or https, no path
  std::string path_prefix = "/v2";  // API root: "<url path>/v2", or the URL path if override_path
  bool can_resolve = true;          // may resolve tags to manifests
  bool can_pull = true;             // may serve blobs and manifests by digest
  bool can_push = true;
  bool skip_verify = false;           // do not verify the TLS certificate chain and name
  std::vector<std::string> ca_files;  // PEM CA certificates trusted in addition to system CAs
  std::string client_cert;            // PEM client certificate (may contain the key too)
  std::string client_key;             // PEM key for client_cert; empty if inside client_cert
  std::map<std::string, std::string> headers;  // extra request headers (lists joined by ", ")
  bool is_mirror = false;  // from a [host] table: requests carry "?ns=<registry host>"

  bool operator==(const Endpoint&) const = default;
};

// The endpoint used when no hosts.toml applies: docker.io (and index.docker.io) go to
// https://registry-1.docker.io; loopback hosts (localhost, 127.x.x.x, [::1], with or without a
// port) use plain http, as Docker does for them; any other host uses https://<host>.
Endpoint DefaultEndpoint(std::string_view registry_host);

// Parses the text of one hosts.toml. `base_dir` resolves relative `ca`/`client` paths and
// `source_name` names the file in errors. Returns the [host] endpoints in file order, then
// `server` if set. INVALID_ARGUMENT on syntax or type errors, unknown capabilities, URLs
// that are not http(s), or a file naming no endpoint at all.
StatusOr<std::vector<Endpoint>> ParseHostsToml(std::string_view toml_text,
                                               const std::filesystem::path& base_dir,
                                               std::string_view source_name);

// The ordered endpoints for `registry_host` ("docker.io", "127.0.0.1:5000"): from
// <hosts_dir>/<host>/hosts.toml, else <hosts_dir>/_default/hosts.toml, else
// {DefaultEndpoint(host)}. An empty `hosts_dir` means no configuration. The files are read
// on every call, so edits apply without a restart.
StatusOr<std::vector<Endpoint>> ResolveEndpoints(const std::filesystem::path& hosts_dir,
                                                 std::string_view registry_host);

}  // namespace berth::registry
