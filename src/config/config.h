// berthd's configuration: embedded defaults, an optional TOML file plus
// drop-ins, then command-line flags, in that order of precedence (last wins).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::config {

struct Config {
  // [grpc]
  std::string socket = "/run/berth/berth.sock";
  // A second socket serving only the ImageService (v1 and v1alpha2), for a
  // kubelet with --image-service-endpoint; empty: none. The main socket
  // serves images too either way.
  std::string image_socket;
  // [paths]
  std::string root = "/var/lib/berth";  // persistent: images, content, metadata
  std::string state = "/run/berth";     // runtime state, gone at reboot
  // [registry]
  std::string registry_config_dir = "/etc/berth/certs.d";  // containerd hosts.toml layout
  std::vector<std::string> registry_auth_files = {"/root/.docker/config.json",
                                                  "/var/lib/kubelet/config.json"};
  int max_concurrent_downloads = 3;
  int pull_progress_timeout_seconds = 60;  // a pull with no progress this long fails
  // [cni]
  std::string cni_conf_dir = "/etc/cni/net.d";
  std::vector<std::string> cni_bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
  // When the kubelet sends a pod CIDR (UpdateRuntimeConfig) and cni_conf_dir
  // holds no network config, write one for it from the template below.
  bool cni_default_network = true;
  // A file with {{.PodCIDR}}-style placeholders (see network/pod_network.h);
  // empty: the built-in bridge + host-local + portmap template.
  std::string cni_default_network_template;
  // [stream]
  // Streaming server (exec, attach, port-forward): host:port, port 0 picks one.
  std::string stream_address = "127.0.0.1:0";
  // Both set: HTTPS with this PEM certificate (chain) and key; both empty: HTTP.
  std::string stream_tls_cert_file, stream_tls_key_file;
  // [metrics]
  std::string metrics_address;  // empty: no metrics endpoint
  // [stats]
  // Background sweep of cgroup samples and writable-layer sizes; 0: none.
  int stats_collect_period_ms = 10000;
  // Stats RPCs reuse a cgroup sample younger than this.
  int stats_min_sample_interval_ms = 500;
  // [log]
  std::string log_level = "info";
  // [runtime]
  std::string cgroup_driver = "cgroupfs";
  // Empty: crun where a probe container runs with it on this host, else runc.
  std::string default_handler;
  // [runtime.handlers]: runtime handler (RuntimeClass handler) name → OCI
  // runtime binary, a path or a name looked up in PATH. A handler whose
  // binary is missing is left out; an empty value removes a handler.
  std::map<std::string, std::string> handlers = {{"crun", "crun"}, {"runc", "runc"}};
  // "native": exec (ExecSync, streaming exec) joins the container from berthd
  // without a runtime process (oci/native_exec.h); "runc": `<runtime> exec`.
  std::string exec_mode = "native";

  // --- metrics endpoint and lifecycle events ---
  // [metrics] allow_non_loopback: metrics.address ("host:port") has no
  // authentication, so an address other than loopback must be allowed.
  bool metrics_allow_non_loopback = false;
  // [events] queue_length: events a GetContainerEvents client may fall
  // behind by before its oldest are dropped.
  int events_queue_length = 1024;

  // [images] pinned_images: images reported pinned (the kubelet's image GC
  // skips them): references, image IDs or name prefixes ending in '*'
  // (image/pinned_images.h; checked when berthd starts).
  std::vector<std::string> pinned_images;
  // --- CDI devices ---
  // [cdi] spec_dirs: CDI spec directories, later ones taking priority.
  std::vector<std::string> cdi_spec_dirs = {"/etc/cdi", "/var/run/cdi"};

  static Config Defaults() { return Config(); }
  // Checks values a person could get wrong; names the setting in the error.
  Status Validate() const;
  // The effective configuration as TOML, loadable again by LoadFile.
  std::string ToToml() const;
  // This configuration as TOML with a comment on every section and setting
  // (`berthd config default` prints it for the defaults). Loads back to the
  // same configuration.
  std::string ToCommentedToml() const;
};

// Overlays the settings present in a TOML document onto `cfg`. Unknown keys
// are INVALID_ARGUMENT, so typos do not go unnoticed.
Status MergeToml(std::string_view toml_text, std::string_view source_name, Config& cfg);

// Applies `file` (if it exists; a missing default file is fine, a missing
// explicitly named file is NOT_FOUND) and then every `*.toml` in `dropin_dir`
// in lexical order.
Status LoadFiles(const std::filesystem::path& file, bool file_required,
                 const std::filesystem::path& dropin_dir, Config& cfg);

// A listening address: "127.0.0.1:9100", "[::1]:9100", "localhost:9100"
// (loopback), "0.0.0.0:9100", ":9100" (all interfaces). The host must be an
// IP literal or "localhost" (no name lookups); port 0 picks a free port.
struct ListenAddress {
  std::string ip;  // IPv4 or IPv6 literal, without brackets
  int port = 0;
  bool loopback = false;
};
StatusOr<ListenAddress> ParseListenAddress(std::string_view address);
// Settings (section.key) that ToToml() prints and ToCommentedToml() has no
// comment for, plus documented keys that are not settings; empty when the two
// agree (a unit test keeps it so).
std::vector<std::string> UndocumentedSettings();

// Splits a colon-separated list, dropping empty elements.
std::vector<std::string> SplitColonList(std::string_view s);

}  // namespace berth::config
