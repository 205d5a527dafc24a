// berthd: the Berth CRI daemon.
#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>

#include "common/memory.h"
#include "config/config.h"
#include "doctor/doctor.h"
#include "server/daemon.h"

#ifdef BERTH_JEMALLOC
// jemalloc's settings, read when it initialises (its documented `malloc_conf`
// symbol): two arenas, as glibc's are capped below; a background thread that
// gives freed pages back to the kernel after a second (dirty) and at once
// after that (muzzy), so RSS falls back after a pull or a large list without
// a call on the RPC path. Figures: docs/benchmarks.md.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): jemalloc's interface
extern "C" const char* malloc_conf;
const char* malloc_conf = "narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif

int main(int argc, char** argv) {
  // Before any thread starts: berthd's threads mostly wait, and an arena per
  // thread (glibc's default, up to 8 per core) keeps each one's free memory.
  // (With jemalloc, malloc_conf above does this.)
  berth::LimitMallocArenas(2);
  using berth::config::Config;
  CLI::App app{"berthd: a Kubernetes container runtime (CRI v1 and v1alpha2)"};
  app.set_version_flag("--version", "berthd 0.1.0");
  std::string config_file = "/etc/berth/config.toml";
  std::string dropin_dir = "/etc/berth/berth.d";
  std::optional<std::string> image_socket;
  std::vector<std::string> pinned_images;
  std::optional<std::string> socket, root, state, registry_dir, cni_conf, cni_bin, stream_addr,
      stream_cert, stream_key, metrics_addr, log_level, cgroup_driver, default_handler, exec_mode;
  std::vector<std::string> handler_flags;
  std::optional<int> max_downloads, pull_timeout;
  std::optional<int> stats_period, stats_min_interval;
  std::vector<std::string> auth_files;
  auto* config_opt = app.add_option("--config", config_file, "TOML configuration file");
  app.add_option("--config-dropin-dir", dropin_dir,
                 "directory of *.toml drop-ins, applied in name order");
  app.add_option("--socket", socket, "CRI gRPC Unix socket (default /run/berth/berth.sock)");
  app.add_option("--image-socket", image_socket,
                 "a second Unix socket serving only the CRI ImageService, for a kubelet with "
                 "--image-service-endpoint (default: none)");
  app.add_option("--pinned-image", pinned_images,
                 "an image reported pinned, so that the kubelet's image GC keeps it: a "
                 "reference, an image ID or a name prefix ending in '*' (repeatable; replaces "
                 "images.pinned_images)");
  app.add_option("--root", root, "persistent data directory (default /var/lib/berth)");
  app.add_option("--state", state, "runtime state directory (default /run/berth)");
  app.add_option("--registry-config-dir", registry_dir,
                 "registry hosts in containerd's hosts.toml layout (default /etc/berth/certs.d)");
  app.add_option("--cni-conf-dir", cni_conf, "CNI network configs (default /etc/cni/net.d)");
  std::optional<bool> cni_default_network;
  std::optional<std::string> cni_default_template;
  app.add_option("--cni-default-network", cni_default_network,
                 "true or false: write a bridge network for the pod CIDR the kubelet sends when "
                 "the CNI config dir has none (default true)");
  app.add_option("--cni-default-network-template", cni_default_template,
                 "template file of that network (default: built in; see docs/configuration.md)");
  app.add_option("--cni-bin-dir", cni_bin,
                 "colon-separated CNI plugin directories (default /opt/cni/bin:/usr/lib/cni)");
  app.add_option("--stream-address", stream_addr,
                 "streaming server (exec, attach, port-forward) host:port (default 127.0.0.1:0)");
  app.add_option("--stream-tls-cert", stream_cert,
                 "PEM certificate of the streaming server: HTTPS (needs --stream-tls-key)");
  app.add_option("--stream-tls-key", stream_key, "PEM private key of the streaming server");
  // Metrics endpoint and lifecycle events.
  std::optional<int> events_queue;
  bool metrics_non_loopback = false;
  app.add_option("--metrics-address", metrics_addr,
                 "Prometheus metrics endpoint, host:port (default: off; loopback only unless "
                 "--metrics-allow-non-loopback)");
  app.add_flag("--metrics-allow-non-loopback", metrics_non_loopback,
               "allow a --metrics-address that other hosts can reach (it has no authentication)");
  app.add_option("--events-queue-length", events_queue,
                 "events a GetContainerEvents client may fall behind by before the oldest are "
                 "dropped (default 1024)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error (default info)");
  app.add_option("--cgroup-driver", cgroup_driver, "cgroupfs or systemd (default cgroupfs)");
  app.add_option("--exec-mode", exec_mode,
                 "native (exec without a runtime process) or runc (default native)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--runtime-handler", handler_flags,
                 "NAME=BINARY: an OCI runtime for RuntimeClass handler NAME (repeatable; adds to "
                 "or replaces the defaults crun=crun and runc=runc; NAME= removes one)");
  app.add_option("--default-runtime-handler", default_handler,
                 "handler for pods that name none (default: crun where it runs here, else runc)");
  app.add_option("--registry-auth-file", auth_files,
                 "docker-style config.json with registry credentials (repeatable; replaces the "
                 "defaults /root/.docker/config.json and /var/lib/kubelet/config.json)");
  app.add_option("--max-concurrent-downloads", max_downloads,
                 "layer downloads at once (default 3)");
  app.add_option("--pull-progress-timeout", pull_timeout,
                 "seconds without progress before a pull fails (default 60)");
  app.add_option("--stats-collect-period-ms", stats_period,
                 "background sweep of container stats, milliseconds; 0 turns it off "
                 "(default 10000)");
  app.add_option("--stats-min-sample-interval-ms", stats_min_interval,
                 "stats calls reuse a cgroup sample younger than this (default 500)");
  std::optional<std::string> cdi_dirs;
  app.add_option("--cdi-spec-dir", cdi_dirs,
                 "colon-separated CDI spec directories, later ones taking priority (default "
                 "/etc/cdi:/var/run/cdi)");
  auto* config_cmd = app.add_subcommand("config", "print the effective configuration as TOML");
  config_cmd->fallthrough();  // `berthd config --socket X` works like `berthd --socket X config`
  auto* config_default_cmd = config_cmd->add_subcommand(
      "default", "print the default configuration, with a comment on every setting");
  auto* doctor_cmd = app.add_subcommand(
      "doctor", "check whether this host can run pods, and say what to do about each problem");
  doctor_cmd->fallthrough();  // the daemon's flags name the directories and handlers to check
  std::string doctor_output = "text";
  doctor_cmd->add_option("-o,--output", doctor_output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  CLI11_PARSE(app, argc, argv);
  if (config_default_cmd->parsed()) {
    // The built-in defaults only: no file, drop-in or flag changes them, so a
    // broken /etc/berth/config.toml can be replaced with this output.
    std::cout << Config::Defaults().ToCommentedToml();
    return 0;
  }

  Config cfg = Config::Defaults();
  berth::Status s = berth::config::LoadFiles(config_file, config_opt->count() > 0, dropin_dir, cfg);
  if (!s.ok()) {
    std::cerr << "berthd: " << s.message() << "\n";
    return 2;
  }
  if (socket) cfg.socket = *socket;
  if (image_socket) cfg.image_socket = *image_socket;
  if (!pinned_images.empty()) cfg.pinned_images = pinned_images;
  if (root) cfg.root = *root;
  if (state) cfg.state = *state;
  if (registry_dir) cfg.registry_config_dir = *registry_dir;
  if (cni_conf) cfg.cni_conf_dir = *cni_conf;
  if (cni_bin) cfg.cni_bin_dirs = berth::config::SplitColonList(*cni_bin);
  if (cdi_dirs) cfg.cdi_spec_dirs = berth::config::SplitColonList(*cdi_dirs);
  if (cni_default_network) cfg.cni_default_network = *cni_default_network;
  if (cni_default_template) cfg.cni_default_network_template = *cni_default_template;
  if (stream_addr) cfg.stream_address = *stream_addr;
  if (stream_cert) cfg.stream_tls_cert_file = *stream_cert;
  if (stream_key) cfg.stream_tls_key_file = *stream_key;
  if (metrics_addr) cfg.metrics_address = *metrics_addr;
  if (metrics_non_loopback) cfg.metrics_allow_non_loopback = true;
  if (events_queue) cfg.events_queue_length = *events_queue;
  if (log_level) cfg.log_level = *log_level;
  if (cgroup_driver) cfg.cgroup_driver = *cgroup_driver;
  if (exec_mode) cfg.exec_mode = *exec_mode;
  if (default_handler) cfg.default_handler = *default_handler;
  for (const auto& h : handler_flags) {
    auto eq = h.find('=');
    if (eq == std::string::npos) {
      std::cerr << "berthd: --runtime-handler " << h << ": expected NAME=BINARY\n";
      return 2;
    }
    if (eq + 1 == h.size()) {
      cfg.handlers.erase(h.substr(0, eq));
    } else {
      cfg.handlers[h.substr(0, eq)] = h.substr(eq + 1);
    }
  }
  if (!auth_files.empty()) cfg.registry_auth_files = auth_files;
  if (max_downloads) cfg.max_concurrent_downloads = *max_downloads;
  if (pull_timeout) cfg.pull_progress_timeout_seconds = *pull_timeout;
  if (stats_period) cfg.stats_collect_period_ms = *stats_period;
  if (stats_min_interval) cfg.stats_min_sample_interval_ms = *stats_min_interval;
  if (s = cfg.Validate(); !s.ok()) {
    std::cerr << "berthd: invalid configuration: " << s.message() << "\n";
    return 2;
  }
  if (config_cmd->parsed()) {
    std::cout << cfg.ToToml();
    return 0;
  }
  if (doctor_cmd->parsed()) {
    berth::doctor::DoctorOptions opts;
    opts.monitor_binary = berth::doctor::FindHelperBinary("berth-monitor");
    opts.pause_binary = berth::doctor::FindHelperBinary("berth-pause");
    berth::doctor::Report report = berth::doctor::RunDoctor(cfg, std::move(opts));
    if (doctor_output == "json") {
      std::cout << report.ToJson().dump(2) << "\n";
    } else {
      std::cout << report.ToText();
    }
    return report.CanRunPods() ? 0 : 1;
  }
  berth::server::BlockShutdownSignals();
  berth::server::SetupLogging(cfg.log_level);
  s = berth::server::RunDaemon(cfg);
  if (!s.ok()) {
    std::cerr << "berthd: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}
