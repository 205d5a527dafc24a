// The CRI headers come first: see server/signals.h.
#include "server/cri_services.h"
// (blank line keeps clang-format from reordering)

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include "common/fs.h"
#include "common/memory.h"
#include "common/numbers.h"
#include "common/userns.h"
#include "image/image_service.h"
#include "metrics/http_endpoint.h"
#include "server/daemon.h"
#include "server/domain.h"
#include "server/image_socket.h"
#include "server/listen.h"
#include "server/metrics_collectors.h"
#include "server/signals.h"
#include "server/v1alpha2_services.h"
#include "store/metadata_store.h"

namespace berth::server {

namespace fs = std::filesystem;

namespace {

std::string FindInPath(std::string_view name) {
  const char* path = ::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& dir : config::SplitColonList(p)) {
    fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

// Resolves each configured handler's binary; a handler whose binary is
// missing is left out (a host need not have both crun and runc).
std::vector<oci::HandlerState> FindHandlers(const config::Config& config) {
  std::vector<oci::HandlerState> found;
  for (const auto& [name, binary] : config.handlers) {
    std::string path;
    if (binary.find('/') != std::string::npos) {
      if (::access(binary.c_str(), X_OK) == 0) path = binary;
    } else {
      path = FindInPath(binary);
    }
    if (path.empty()) {
      spdlog::info("event=runtime_handler_missing handler={} binary={}", name, binary);
      continue;
    }
    found.push_back({name, path, false, {}});
  }
  return found;
}

// Runs one throwaway container with every handler at once (about 30 ms for
// runc), because being installed does not mean working: crun refuses hybrid
// cgroup hosts. Runs after berthd started serving; each result goes into
// `registry` as it comes, which then picks the default handler.
void ProbeHandlers(const config::Config& config, const std::string& probe_binary,
                   oci::HandlerRegistry& registry) {
  // User namespaces need ID-mapped layers under overlayfs, on the
  // filesystem the layers live on.
  const Status idmap = ProbeIdmappedOverlay(config.root);
  if (!idmap.ok()) {
    spdlog::warn("event=user_namespaces_unavailable error=\"{}\"", idmap.message());
  }
  const std::vector<oci::HandlerState> handlers = registry.Handlers();
  std::vector<std::thread> probes;
  for (const auto& h : handlers) {
    probes.emplace_back([&config, &probe_binary, &registry, &idmap, h] {
      oci::ProbeOptions opts;
      opts.binary = h.binary;
      opts.probe_binary = probe_binary;
      opts.work_dir = (fs::path(config.state) / "probe" / h.name).string();
      opts.systemd_cgroup = config.cgroup_driver == "systemd";
      opts.try_user_namespace = idmap.ok();
      opts.user_namespace_unavailable = std::string(idmap.message());
      oci::RuntimeProbe probe = oci::ProbeRuntime(opts);
      if (probe.works) {
        spdlog::info(
            "event=runtime_handler handler={} binary={} works=true "
            "recursive_read_only_mounts={} user_namespaces={}",
            h.name, h.binary, probe.features.recursive_read_only_mounts,
            probe.features.user_namespaces);
      } else {
        spdlog::warn("event=runtime_handler handler={} binary={} works=false error=\"{}\"", h.name,
                     h.binary, probe.error);
      }
      registry.SetProbeResult(h.name, std::move(probe));
    });
  }
  for (auto& t : probes) t.join();
  std::error_code ec;
  fs::remove(fs::path(config.state) / "probe", ec);
  const std::string def = registry.DefaultName();
  spdlog::info("event=runtime_ready runtime={}", def.empty() ? "none" : def);
  // Start-up (recovery, the probes) is over: what it alone used need not
  // stay resident (common/memory.h).
  ReleaseFreeHeap();
  spdlog::debug("event=memory_trimmed after=startup file_kb_dropped={}", DropCleanFilePages());
}

// The directory of berthd's own executable: helper binaries (berth-monitor)
// are looked up there first, then in PATH.
std::string FindHelper(std::string_view name) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path beside = self.parent_path() / name;
    if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  }
  return FindInPath(name);
}

// libberth-criu-compat.so: beside berthd (a build tree), else in
// ../lib/berth (the Debian package's /usr/lib/berth). Empty when absent.
std::string FindCriuCompatLibrary() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (const fs::path& p :
       {self.parent_path() / "libberth-criu-compat.so",
        self.parent_path().parent_path() / "lib" / "berth" / "libberth-criu-compat.so"}) {
    if (::access(p.c_str(), R_OK) == 0) return p.lexically_normal().string();
  }
  return "";
}

// What the OCI spec builder must know about this host.
oci::HostCaps DetectHostCaps() {
  oci::HostCaps caps;
  caps.cgroup_v2 = fs::exists("/sys/fs/cgroup/cgroup.controllers");
  auto last_cap = ReadFile("/proc/sys/kernel/cap_last_cap");
  if (auto n = last_cap.ok() ? ParseDecimal<int>(*last_cap) : std::nullopt) caps.last_cap = *n;
  auto status = ReadFile("/proc/self/status");
  if (status.ok()) {
    auto pos = status->find("CapEff:\t");
    if (pos != std::string::npos) {
      caps.current_caps = std::stoull(status->substr(pos + 8, 16), nullptr, 16);
    }
  }
  auto adj = ReadFile("/proc/self/oom_score_adj");
  if (auto n = adj.ok() ? ParseDecimal<int>(*adj) : std::nullopt) caps.current_oom_score_adj = *n;
  // Lowering oom_score_adj needs CAP_SYS_RESOURCE (bit 24).
  caps.can_lower_oom_score_adj = caps.current_caps && ((*caps.current_caps >> 24) & 1);
  if (!caps.can_lower_oom_score_adj) {
    spdlog::info(
        "event=host_quirk detail=\"no CAP_SYS_RESOURCE: container oom_score_adj is "
        "clamped to {}\"",
        caps.current_oom_score_adj);
  }
  caps.swap_controller_available =
      caps.cgroup_v2 || fs::exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
  caps.hugetlb_available = fs::exists("/sys/fs/cgroup/hugetlb") || caps.cgroup_v2;
  return caps;
}

}  // namespace

void SetupLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("berth");
  logger->set_pattern("time=%Y-%m-%dT%H:%M:%S.%fZ level=%l %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

Status RunDaemon(const config::Config& config) {
  RETURN_IF_ERROR(config.Validate());
  RETURN_IF_ERROR(MakeDirs(config.root, 0711));
  RETURN_IF_ERROR(MakeDirs(config.state, 0711));
  RETURN_IF_ERROR(MakeDirs(fs::path(config.root) / "containers", 0711));
  RETURN_IF_ERROR(PrepareSocket(config.socket, "--socket"));

  oci::HandlerRegistry handlers(FindHandlers(config), config.default_handler);
  RuntimeInfo runtime_info;
  runtime_info.version = "0.1.0";
  runtime_info.handlers = &handlers;
  RpcDecorator rpc;
  Domain domain;
  domain.events = std::make_unique<container::LifecycleEventBus>(
      static_cast<size_t>(config.events_queue_length), [](const events::DropNotice& n) {
        // Once per streak; the stream logs how many it lost when it resumes.
        if (n.first_of_streak) {
          spdlog::warn(
              "event=events_dropped subscriber={} dropped_total={} detail=\"a "
              "GetContainerEvents client fell behind; its oldest events are dropped\"",
              n.subscriber, n.dropped_so_far);
        }
      });
  DaemonMetrics metrics(domain, [&rpc] { return rpc.ready(); });
  rpc.SetMetrics(&metrics.rpc_requests(), &metrics.rpc_latency());
  RuntimeServiceImpl runtime_svc(config, runtime_info, domain, rpc);
  ImageServiceImpl image_svc(domain.images, rpc, &metrics.pull(), &handlers);
  // runtime.v1alpha2 for older kubelets and crictl, through the same handlers.
  V1alpha2RuntimeService runtime_v1alpha2_svc(runtime_svc);
  V1alpha2ImageService image_v1alpha2_svc(image_svc);
  // Containers keep running when berthd stops: the domain is torn down
  // without touching them.

  // Listen first: clients get a clear UNAVAILABLE from the decorator while
  // recovery runs, rather than a refused connection.
  grpc::ServerBuilder builder;
  builder.AddListeningPort(StrCat("unix://", config.socket), grpc::InsecureServerCredentials());
  builder.RegisterService(&runtime_svc);
  builder.RegisterService(&image_svc);
  builder.RegisterService(&runtime_v1alpha2_svc);
  builder.RegisterService(&image_v1alpha2_svc);
  ApplyServerSettings(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return UnavailableError(StrCat("cannot listen on ", config.socket));
  ScopeGuard stop_server([&] {
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    ::unlink(config.socket.c_str());
  });
  if (::chmod(config.socket.c_str(), 0660) != 0) {
    return ErrnoStatus(errno, StrCat("chmod ", config.socket));
  }
  std::unique_ptr<ImageSocket> image_socket;
  if (!config.image_socket.empty()) {
    ASSIGN_OR_RETURN(image_socket, ImageSocket::Start(config.image_socket, domain.images, rpc,
                                                      &metrics.pull(), &handlers));
  }
  std::unique_ptr<metrics::HttpEndpoint> metrics_endpoint;
  if (!config.metrics_address.empty()) {
    ASSIGN_OR_RETURN(config::ListenAddress addr,
                     config::ParseListenAddress(config.metrics_address));
    ASSIGN_OR_RETURN(metrics_endpoint, metrics::HttpEndpoint::Start(addr.ip, addr.port, [&metrics] {
                       return metrics.registry().Render();
                     }));
    spdlog::info("event=metrics_listening address={} path=/metrics", metrics_endpoint->address());
  }

  // Recovery: open the stores and collect what interrupted pulls left.
  ASSIGN_OR_RETURN(domain.db, store::MetadataStore::Open(fs::path(config.root) / "meta.db"));
  image::ImageServiceOptions image_opts;
  image_opts.root = config.root;
  image_opts.max_concurrent_downloads = config.max_concurrent_downloads;
  image_opts.registry.hosts_dir = config.registry_config_dir;
  for (const auto& f : config.registry_auth_files) {
    image_opts.registry.docker_config_paths.push_back(f);
  }
  image_opts.registry.stall_timeout = std::chrono::seconds(config.pull_progress_timeout_seconds);
  image_opts.registry.user_agent = StrCat("berth/", runtime_info.version);
  image_opts.pinned_images = config.pinned_images;
  ASSIGN_OR_RETURN(domain.images, image::ImageService::Open(image_opts, domain.db.get()));

  network::CniOptions cni_opts;
  cni_opts.conf_dir = config.cni_conf_dir;
  cni_opts.bin_dirs = config.cni_bin_dirs;
  cni_opts.cache_dir = fs::path(config.root) / "cni";
  domain.cni = std::make_unique<network::CniManager>(cni_opts);
  network::DefaultPodNetworkOptions default_network_opts;
  default_network_opts.enabled = config.cni_default_network;
  default_network_opts.conf_dir = config.cni_conf_dir;
  default_network_opts.template_file = config.cni_default_network_template;
  default_network_opts.ipam_data_dir = (fs::path(config.state) / "cni" / "networks").string();
  domain.default_network = std::make_unique<network::DefaultPodNetwork>(default_network_opts);
  std::map<std::string, oci::OciRuntime*> runtimes;
  std::vector<std::string> global_args;
  if (config.cgroup_driver == "systemd") global_args.push_back("--systemd-cgroup");
  for (const auto& h : handlers.Handlers()) {
    // Registered whatever its probe finds, so that containers created
    // before (e.g. on another kernel) can still be stopped and removed.
    fs::path runtime_root = fs::path(config.state) / "runtimes" / h.name;
    RETURN_IF_ERROR(MakeDirs(runtime_root, 0700));
    domain.runtimes[h.name] =
        oci::NewCliRuntime(h.name, h.binary, runtime_root.string(), global_args);
    runtimes[h.name] = domain.runtimes[h.name].get();
  }
  sandbox::SandboxManagerOptions sb_opts;
  sb_opts.state_dir = fs::path(config.state) / "sandboxes";
  sb_opts.netns_dir = fs::path(config.state) / "netns";
  sb_opts.pause_binary = FindHelper("berth-pause");
  ASSIGN_OR_RETURN(domain.sandboxes,
                   sandbox::SandboxManager::Open(sb_opts, domain.db.get(), domain.cni.get()));
  container::ContainerManagerOptions ct_opts;
  ct_opts.root_dir = fs::path(config.root) / "containers";
  ct_opts.state_dir = fs::path(config.state) / "containers";
  ct_opts.monitor_binary = FindHelper("berth-monitor");
  ct_opts.criu_compat_library = FindCriuCompatLibrary();
  ct_opts.cgroup_driver = config.cgroup_driver == "systemd" ? oci::CgroupDriver::kSystemd
                                                            : oci::CgroupDriver::kCgroupfs;
  ct_opts.host = DetectHostCaps();
  ct_opts.handlers = &handlers;
  ct_opts.events = domain.events.get();
  ct_opts.cdi_spec_dirs = config.cdi_spec_dirs;
  if (config.exec_mode == "native") ct_opts.native_exec = std::make_shared<oci::NativeExecutor>();
  if (ct_opts.monitor_binary.empty()) {
    spdlog::warn(
        "event=monitor_missing detail=\"berth-monitor not found beside berthd or in "
        "PATH: containers cannot be created\"");
  }
  ASSIGN_OR_RETURN(domain.containers,
                   container::ContainerManager::Open(ct_opts, domain.db.get(), domain.images.get(),
                                                     domain.sandboxes.get(), runtimes));
  domain.images->SetInUseCheck([containers = domain.containers.get()](const std::string& image_id) {
    return containers->ImageUser(image_id);
  });
  domain.stream_runtime =
      std::make_unique<StreamRuntime>(domain.containers.get(), domain.sandboxes.get());
  stream::StreamServerOptions stream_opts;
  stream_opts.address = config.stream_address;
  stream_opts.tls_cert_file = config.stream_tls_cert_file;
  stream_opts.tls_key_file = config.stream_tls_key_file;
  auto stream_server = stream::StreamServer::Start(stream_opts, domain.stream_runtime.get());
  if (!stream_server.ok()) {
    return Annotate(stream_server.status(),
                    StrCat("start the streaming server on ", config.stream_address));
  }
  domain.stream = std::move(*stream_server);
  stats::StatsOptions stats_opts;
  stats_opts.collect_period = std::chrono::milliseconds(config.stats_collect_period_ms);
  stats_opts.min_sample_interval = std::chrono::milliseconds(config.stats_min_sample_interval_ms);
  stats_opts.writable_layer_mountpoint = (fs::path(config.root) / "containers").string();
  stats_opts.cgroup_driver = ct_opts.cgroup_driver;
  StatusOr<std::unique_ptr<stats::CgroupReader>> cgroups = stats::NewHostCgroupReader();
  if (!cgroups.ok()) {
    // Containers still run; stats then carry attributes and writable layers only.
    spdlog::warn("event=cgroups_unreadable error=\"{}\"", cgroups.status().message());
    cgroups = stats::NewCgroupV2Reader("/sys/fs/cgroup");
  }
  spdlog::info("event=stats cgroup_version={} collect_period_ms={} min_sample_interval_ms={}",
               (*cgroups)->version() == stats::CgroupVersion::kV2 ? 2 : 1,
               config.stats_collect_period_ms, config.stats_min_sample_interval_ms);
  domain.stats = stats::StatsService::Start(stats_opts, domain.containers.get(),
                                            domain.sandboxes.get(), std::move(*cgroups));
  // State is recovered: serve now. The handler probes run containers, which
  // takes a while; they finish in the background (calls that need a handler
  // wait for its probe, Status says RuntimeReady once the default works).
  rpc.MarkReady();
  spdlog::info("event=ready socket={} image_socket={} root={} state={} stream={} version={}",
               config.socket, config.image_socket.empty() ? "off" : config.image_socket,
               config.root, config.state, domain.stream->base_url(), runtime_info.version);
  std::thread prober(ProbeHandlers, std::cref(config), FindHelper("berth-pause"),
                     std::ref(handlers));
  ScopeGuard join_prober([&] { prober.join(); });

  spdlog::info("event=shutdown signal={}", WaitForShutdownSignal());
  stop_server.Cancel();
  if (!rpc.Drain(std::chrono::seconds(5))) {
    spdlog::warn("event=shutdown_cancels detail=\"calls still running after 5 s are cancelled\"");
  }
  domain.events->Close();  // ends GetContainerEvents streams
  if (image_socket) image_socket->Stop();
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  ::unlink(config.socket.c_str());
  // Sessions still streaming end here (exec'd processes are killed), before
  // the managers they use go away.
  domain.stream->Stop();
  // A probe still running (a stop right after a start) finishes and cleans up.
  join_prober.Cancel();
  prober.join();
  spdlog::info("event=stopped");
  return OkStatus();
}

}  // namespace berth::server
