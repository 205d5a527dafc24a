// Where berthctl connects and with which timeout, resolved the way crictl
// resolves it: command-line flags (or their environment variables) win over
// the client config file, which wins over built-in defaults.
//
// Pure functions, thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::ctl {

// The runtime endpoint berthctl uses when none is configured.
inline constexpr std::string_view kDefaultEndpoint = "unix:///run/berth/berth.sock";
// The client config file read when --config / CRI_CONFIG_FILE is not given.
inline constexpr std::string_view kDefaultConfigPath = "/etc/crictl.yaml";
inline constexpr std::chrono::milliseconds kDefaultTimeout{2000};

// The keys crictl accepts in its config file. Unknown keys are errors.
struct ConfigFile {
  std::string runtime_endpoint;
  std::string image_endpoint;
  int timeout_seconds = 0;  // 0: not set
  bool debug = false;
  bool pull_image_on_create = false;
  bool disable_pull_on_run = false;
};

// Parses a crictl.yaml ("runtime-endpoint: unix:///...", "timeout: 10", ...).
// An empty file is an empty config. Errors read like crictl's, e.g.
// "Config option 'foo' is not valid".
StatusOr<ConfigFile> ParseConfigFile(std::string_view text);

// Reads `path`; when it does not exist, falls back to crictl.yaml in
// `exe_dir` (crictl's behaviour). NotFound when neither exists.
StatusOr<ConfigFile> LoadConfigFile(const std::string& path, const std::string& exe_dir);

// Global flags as given on the command line; an environment variable bound
// to a flag counts as given (urfave/cli semantics).
struct GlobalFlags {
  std::optional<std::string> config;            // -c/--config, CRI_CONFIG_FILE
  std::optional<std::string> runtime_endpoint;  // -r, CONTAINER_RUNTIME_ENDPOINT
  std::optional<std::string> image_endpoint;    // -i, IMAGE_SERVICE_ENDPOINT
  std::optional<std::string> timeout;           // -t, Go duration text ("2s", "1m30s")
  std::optional<bool> debug;                    // -D
};

struct Settings {
  std::string runtime_endpoint;
  std::string image_endpoint;  // never empty: falls back to runtime_endpoint
  std::chrono::milliseconds timeout = kDefaultTimeout;
  bool debug = false;
  bool pull_image_on_create = false;
  bool disable_pull_on_run = false;
};

// Combines flags, the config file (nullopt when none was loaded) and defaults.
// A timeout of 0 or less given on the command line means the default.
// Fails on an unparsable timeout or an endpoint explicitly set to "".
StatusOr<Settings> ResolveSettings(const GlobalFlags& flags, const std::optional<ConfigFile>& file);

// Go's time.ParseDuration ("300ms", "1.5h", "2h45m", "0"), in milliseconds
// (sub-millisecond parts are truncated).
StatusOr<std::chrono::milliseconds> ParseGoDuration(std::string_view text);

// Turns a CRI endpoint into a gRPC target: "unix:///run/x.sock" and a bare
// "/run/x.sock" become "unix:/run/x.sock". Like crictl only Unix sockets are
// supported ("only support unix socket endpoint" for tcp://, "protocol \"x\"
// not supported" for other schemes).
StatusOr<std::string> EndpointToGrpcTarget(std::string_view endpoint);

}  // namespace berth::ctl
