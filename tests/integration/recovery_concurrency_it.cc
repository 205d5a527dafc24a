// Crash recovery, driven in-process: the domain berthd's RunDaemon wires (metadata store,
// image service, CNI, runc, sandbox and container managers, stats, lifecycle events) is built
// here directly, pods and containers are made with real runc, berth-monitor and CNI bridge
// plugins, and the whole domain is then dropped without stopping anything, as when berthd
// exits: the monitors keep the containers. A new domain recovers from disk and serves calls
// from several threads at once while its runtime probe still runs (berthd serves before its
// probes finish), the calls berthd's handlers make: status, lists, stats, exec, create,
// start, stop, remove, pod stop and remove. The binary has no gRPC, so ThreadSanitizer sees
// every thread and lock involved (docs/testing.md, "TSan record"); in the normal and ASan
// suites this is an ordinary test.
//
// Asserted: records survive the restarts unchanged, exits that happened while the domain was
// down are recorded (and published once), containers created before still start, calls made
// during recovery see a coherent state, and once the pods are removed nothing is left: no
// mount, process, IP lease, veth, cgroup, bundle, writable layer or runtime state.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/process.h"
#include "common/status.h"
#include "container/container_manager.h"
#include "image/image_service.h"
#include "network/cni.h"
#include "oci/handler_registry.h"
#include "oci/native_exec.h"
#include "oci/oci_runtime.h"
#include "oci/runtime_probe.h"
#include "sandbox/sandbox_manager.h"
#include "stats/cgroup_reader.h"
#include "stats/stats_service.h"
#include "store/metadata_store.h"
#include "support/image_builder.h"
#include "support/registry_push.h"
#include "support/registry_server.h"

#ifndef BERTH_MONITOR_BINARY
#error "BERTH_MONITOR_BINARY must name berth-monitor (see tests/integration/CMakeLists.txt)"
#endif
#ifndef BERTH_PAUSE_BINARY
#error "BERTH_PAUSE_BINARY must name berth-pause (see tests/integration/CMakeLists.txt)"
#endif

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;
using Clock = std::chrono::steady_clock;
using container::ContainerRecord;
using container::ContainerState;
using container::LifecycleEventType;

constexpr char kRepo[] = "tsan/busybox";
constexpr char kCniBinDir[] = "/usr/lib/cni";
constexpr char kRunc[] = "/usr/sbin/runc";

#define IT_ASSERT_OK(expr)                                                         \
  do {                                                                             \
    const ::berth::Status it_status_ = (expr);                                     \
    ASSERT_TRUE(it_status_.ok()) << #expr << " failed: " << it_status_.ToString(); \
  } while (0)

// `lhs` is a declaration ("auto x"): it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define IT_ASSERT_OK_AND_ASSIGN(lhs, expr)                                         \
  auto IT_CONCAT_(it_or_, __LINE__) = (expr);                                      \
  ASSERT_TRUE(IT_CONCAT_(it_or_, __LINE__).ok())                                   \
      << #expr << " failed: " << IT_CONCAT_(it_or_, __LINE__).status().ToString(); \
  lhs = std::move(*IT_CONCAT_(it_or_, __LINE__))
// NOLINTEND(bugprone-macro-parentheses)
#define IT_CONCAT_(a, b) IT_CONCAT_INNER_(a, b)
#define IT_CONCAT_INNER_(a, b) a##b

// Host state --------------------------------------------------------------------------------

std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool Exists(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

std::string ReadOr(const fs::path& p) {
  StatusOr<std::string> s = ReadFile(p);
  return s.ok() ? *s : "";
}

// Mount points (octal escapes undone) of /proc/self/mountinfo at or below `dir`.
std::vector<std::string> MountsUnder(const fs::path& dir) {
  std::vector<std::string> out;
  const std::string prefix = dir.string();
  const std::string text = ReadOr("/proc/self/mountinfo");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    // Fields: id parent major:minor root mount_point ...
    size_t pos = 0;
    for (int i = 0; i < 4 && pos != std::string::npos; ++i) {
      pos = line.find(' ', pos);
      if (pos != std::string::npos) ++pos;
    }
    if (pos == std::string::npos) continue;
    const std::string field = line.substr(pos, line.find(' ', pos) - pos);
    std::string point;
    for (size_t i = 0; i < field.size(); ++i) {
      if (field[i] == '\\' && i + 3 < field.size()) {
        point += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                   (field[i + 3] - '0'));
        i += 3;
      } else {
        point += field[i];
      }
    }
    if (point == prefix || point.starts_with(prefix + "/")) out.push_back(point);
  }
  return out;
}

bool IsZombie(int pid) {
  const std::string stat = ReadOr(StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

bool Alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0 && !IsZombie(pid); }

std::string CmdlineOf(int pid) {
  std::string c = ReadOr(StrCat("/proc/", pid, "/cmdline"));
  std::replace(c.begin(), c.end(), '\0', ' ');
  return c;
}

std::string PidNamespaceOf(int pid) {
  std::error_code ec;
  const fs::path target = fs::read_symlink(StrCat("/proc/", pid, "/ns/pid"), ec);
  return ec ? "" : target.string();
}

std::vector<int> LivePids() {
  std::vector<int> out;
  for (const std::string& name : DirEntries("/proc")) {
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      const int pid = std::stoi(name);
      if (!IsZombie(pid)) out.push_back(pid);
    }
  }
  return out;
}

// Directories right below `parent` in every cgroup hierarchy.
std::vector<std::string> CgroupsBelow(const std::string& parent) {
  std::vector<std::string> out;
  for (const std::string& ctrl : DirEntries("/sys/fs/cgroup")) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path("/sys/fs/cgroup") / ctrl / parent, ec)) {
      if (e.is_directory()) out.push_back(e.path().string());
    }
  }
  return out;
}

// The domain -------------------------------------------------------------------------------

// What server/daemon.cc's RunDaemon builds, in its order, without the gRPC server.
struct DomainSet {
  std::unique_ptr<oci::HandlerRegistry> handlers;
  std::unique_ptr<container::LifecycleEventBus> events;
  std::unique_ptr<store::MetadataStore> db;
  std::unique_ptr<image::ImageService> images;
  std::unique_ptr<network::CniManager> cni;
  std::map<std::string, std::unique_ptr<oci::OciRuntime>> runtimes;
  std::unique_ptr<sandbox::SandboxManager> sandboxes;
  std::unique_ptr<container::ContainerManager> containers;
  std::unique_ptr<stats::StatsService> stats;
  // The runtime handler probe, which runs while calls are served.
  std::thread prober;

  // Drops everything as berthd's exit does: nothing is stopped.
  void Close() {
    if (prober.joinable()) prober.join();
    if (events) events->Close();
    stats.reset();
    containers.reset();
    sandboxes.reset();
    runtimes.clear();
    cni.reset();
    images.reset();
    db.reset();
    events.reset();
    handlers.reset();
  }
  ~DomainSet() { Close(); }
};

class RecoveryConcurrencyIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // spdlog's registry is a function-local static inside Debian's (uninstrumented)
    // libspdlog: made here on the main thread, as berthd's SetupLogging does before any
    // other thread, rather than by whichever pull logs first. TSan cannot see the guard of
    // a static initialised on another thread inside an uninstrumented library.
    spdlog::default_logger();
    if (::geteuid() != 0) {
      suite_error_ = "skip: pods need root (namespaces, mounts, cgroups)";
      return;
    }
    registry_ = new RegistryServer();
    Status s = registry_->Start();
    if (!s.ok()) {
      suite_error_ = StrCat("cannot start the test registry: ", s.ToString());
      return;
    }
    StatusOr<ImageSpec> spec = BusyboxImageSpec(MediaTypes::kDocker);
    StatusOr<BuiltImage> built =
        spec.ok() ? BuildImage(*spec) : StatusOr<BuiltImage>(spec.status());
    if (!built.ok()) {
      suite_error_ = StrCat("busybox image: ", built.status().ToString());
      return;
    }
    const PushTarget target{registry_->url(), "", "", "", ""};
    for (const BuiltBlob& b : built->blobs) {
      StatusOr<Digest> d = PushBlob(target, kRepo, b.data);
      if (!d.ok()) suite_error_ = StrCat("push blob: ", d.status().ToString());
    }
    StatusOr<Digest> m = PushManifest(target, kRepo, "v1", built->top.media_type, built->top.data);
    if (!m.ok()) suite_error_ = StrCat("push manifest: ", m.status().ToString());
    image_id_ = built->config_digest.str();
  }

  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    if (suite_error_.starts_with("skip: ")) GTEST_SKIP() << suite_error_;
    ASSERT_TRUE(suite_error_.empty()) << suite_error_;
    std::string tmpl = "/tmp/bt-rec-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp: " << ::strerror(errno);
    dir_ = tmpl;
    for (const char* d : {"root", "state", "certs.d", "cni", "pod-logs"}) {
      IT_ASSERT_OK(MakeDirs(dir_ / d, 0755));
    }
    const fs::path hosts = dir_ / "certs.d" / registry_->host();
    IT_ASSERT_OK(MakeDirs(hosts, 0755));
    IT_ASSERT_OK(
        WriteFileAtomic(hosts / "hosts.toml",
                        StrCat("server = \"", registry_->url(), "\"\n\n[host.\"", registry_->url(),
                               "\"]\n  capabilities = [\"pull\", ", "\"resolve\"]\n")));
    image_ = StrCat(registry_->host(), "/", kRepo, ":v1");
    cgroup_parent_ = StrCat("berth-rec-", RandomHex(4));
    ASSERT_NO_FATAL_FAILURE(SetUpBridgeNetwork());
  }

  void TearDown() override {
    if (dir_.empty()) return;
    domain_.Close();
    // The sandbox manager keeps <state>/netns bound onto itself (as iproute2 does with
    // /run/netns) and never unmounts it.
    const fs::path netns = dir_ / "state" / "netns";
    for (int i = 0; i < 8 && !MountsUnder(netns).empty(); ++i) ::umount2(netns.c_str(), MNT_DETACH);
    EXPECT_THAT(MountsUnder(dir_), IsEmpty()) << "mounts left under " << dir_;
    if (!bridge_.empty() && Exists(fs::path("/sys/class/net") / bridge_)) {
      StatusOr<ProcessResult> r = RunProcess({"ip", "link", "del", bridge_});
      EXPECT_TRUE(r.ok() && r->exit_code == 0) << "ip link del " << bridge_;
    }
    // The runtime makes the pods' cgroup parent and never removes it.
    for (const std::string& ctrl : DirEntries("/sys/fs/cgroup")) {
      const fs::path base = fs::path("/sys/fs/cgroup") / ctrl / cgroup_parent_;
      std::error_code ec;
      std::vector<fs::path> dirs;
      for (auto it = fs::recursive_directory_iterator(base, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory()) dirs.push_back(it->path());
      }
      std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
        return a.string().size() > b.string().size();
      });
      for (const fs::path& d : dirs) ::rmdir(d.c_str());
      ::rmdir(base.c_str());
    }
    if (MountsUnder(dir_).empty()) {
      Status s = RemoveAll(dir_);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }

  // A bridge with a host-local /24 of its own (10.x.y.0/24 that no route of the host uses).
  void SetUpBridgeNetwork() {
    std::mt19937 rng(std::random_device{}());
    const std::string routes = [] {
      StatusOr<ProcessResult> r = RunProcess({"ip", "-4", "route", "show", "table", "all"});
      return r.ok() ? r->out : std::string();
    }();
    bool found = false;
    for (int i = 0; i < 50 && !found; ++i) {
      prefix_ = StrCat("10.", 100 + rng() % 101, ".", rng() % 256, ".");
      found = routes.find(prefix_) == std::string::npos;
    }
    ASSERT_TRUE(found) << "no free 10.x.y.0/24 on this host";
    bridge_ = StrCat("br", RandomHex(3));
    ASSERT_FALSE(Exists(fs::path("/sys/class/net") / bridge_)) << bridge_ << " exists";
    network_name_ = StrCat("berth-rec-", RandomHex(3));
    nlohmann::json range = {{"subnet", prefix_ + "0/24"}};
    nlohmann::json ipam = {{"type", "host-local"},
                           {"dataDir", (dir_ / "ipam").string()},
                           {"ranges", nlohmann::json::array({nlohmann::json::array({range})})}};
    nlohmann::json plugin = {{"type", "bridge"},
                             {"bridge", bridge_},
                             {"isGateway", true},
                             {"ipMasq", false},
                             {"ipam", ipam}};
    nlohmann::json list = {{"cniVersion", "1.0.0"},
                           {"name", network_name_},
                           {"plugins", nlohmann::json::array({plugin})}};
    IT_ASSERT_OK(WriteFileAtomic(dir_ / "cni" / "10-berth-rec.conflist", list.dump(2)));
  }

  std::vector<std::string> LeasedAddresses() const {
    std::vector<std::string> out;
    for (const std::string& f : DirEntries(dir_ / "ipam" / network_name_)) {
      if (f.starts_with(prefix_)) out.push_back(f);
    }
    return out;
  }

  // Builds the domain as RunDaemon does; the runc probe starts in the background.
  void OpenDomain(DomainSet& d) {
    d.handlers = std::make_unique<oci::HandlerRegistry>(
        std::vector<oci::HandlerState>{{"runc", kRunc, false, {}}}, "runc");
    d.events = std::make_unique<container::LifecycleEventBus>(1024);
    if (before_recovery_) before_recovery_(d);
    const fs::path root = dir_ / "root", state = dir_ / "state";
    IT_ASSERT_OK_AND_ASSIGN(d.db, store::MetadataStore::Open(root / "meta.db"));
    image::ImageServiceOptions image_opts;
    image_opts.root = root;
    image_opts.registry.hosts_dir = dir_ / "certs.d";
    IT_ASSERT_OK_AND_ASSIGN(d.images, image::ImageService::Open(image_opts, d.db.get()));
    network::CniOptions cni_opts;
    cni_opts.conf_dir = dir_ / "cni";
    cni_opts.bin_dirs = {kCniBinDir};
    cni_opts.cache_dir = root / "cni";
    d.cni = std::make_unique<network::CniManager>(cni_opts);
    const fs::path runtime_root = state / "runtimes" / "runc";
    IT_ASSERT_OK(MakeDirs(runtime_root, 0700));
    d.runtimes["runc"] = oci::NewCliRuntime("runc", kRunc, runtime_root.string());
    sandbox::SandboxManagerOptions sb_opts;
    sb_opts.state_dir = state / "sandboxes";
    sb_opts.netns_dir = state / "netns";
    sb_opts.pause_binary = BERTH_PAUSE_BINARY;
    IT_ASSERT_OK_AND_ASSIGN(d.sandboxes,
                            sandbox::SandboxManager::Open(sb_opts, d.db.get(), d.cni.get()));
    container::ContainerManagerOptions ct_opts;
    ct_opts.root_dir = root / "containers";
    ct_opts.state_dir = state / "containers";
    ct_opts.monitor_binary = BERTH_MONITOR_BINARY;
    ct_opts.host.cgroup_v2 = Exists("/sys/fs/cgroup/cgroup.controllers");
    ct_opts.handlers = d.handlers.get();
    ct_opts.events = d.events.get();
    ct_opts.native_exec = std::make_shared<oci::NativeExecutor>();
    IT_ASSERT_OK_AND_ASSIGN(
        d.containers,
        container::ContainerManager::Open(ct_opts, d.db.get(), d.images.get(), d.sandboxes.get(),
                                          {{"runc", d.runtimes["runc"].get()}}));
    d.images->SetInUseCheck([containers = d.containers.get()](const std::string& image_id) {
      return containers->ImageUser(image_id);
    });
    stats::StatsOptions stats_opts;
    stats_opts.collect_period = std::chrono::milliseconds(200);
    stats_opts.min_sample_interval = std::chrono::milliseconds(50);
    stats_opts.writable_layer_mountpoint = (root / "containers").string();
    IT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<stats::CgroupReader> reader,
                            stats::NewHostCgroupReader());
    d.stats = stats::StatsService::Start(stats_opts, d.containers.get(), d.sandboxes.get(),
                                         std::move(reader));
    // Serve first, probe later (server/daemon.cc): calls that need the handler wait for it.
    d.prober = std::thread([registry = d.handlers.get(), work = (state / "probe").string()] {
      oci::ProbeOptions opts;
      opts.binary = kRunc;
      opts.probe_binary = BERTH_PAUSE_BINARY;
      opts.work_dir = work;
      registry->SetProbeResult("runc", oci::ProbeRuntime(opts));
    });
  }

  sandbox::SandboxConfig PodConfig(const std::string& name, bool shared_pid) {
    sandbox::SandboxConfig c;
    c.name = name;
    c.uid = StrCat("uid-", name, "-", RandomHex(4));
    c.namespace_ = "berth-rec";
    c.attempt = 1;
    c.hostname = name;
    c.log_directory = (dir_ / "pod-logs" / name).string();
    c.cgroup_parent = "/" + cgroup_parent_;
    c.labels = {{"app", name}};
    c.network_mode = oci::NamespaceMode::kPod;
    c.pid_mode = shared_pid ? oci::NamespaceMode::kPod : oci::NamespaceMode::kContainer;
    c.ipc_mode = oci::NamespaceMode::kPod;
    return c;
  }

  container::CreateRequest CtrRequest(const std::string& sandbox_id, const std::string& name,
                                      std::vector<std::string> command) {
    container::CreateRequest req;
    req.sandbox_id = sandbox_id;
    req.image = image_;
    req.log_path = name + ".log";
    req.config.name = name;
    req.config.command = std::move(command);
    req.config.labels = {{"ctr", name}};
    return req;
  }

  // RunPodSandbox as the handler does it: wait for the handler's probe, then run.
  StatusOr<sandbox::SandboxRecord> RunPod(DomainSet& d, const sandbox::SandboxConfig& c) {
    ASSIGN_OR_RETURN(oci::HandlerState h, d.handlers->WaitFor("runc", std::chrono::seconds(60)));
    if (!h.probe.works) return FailedPreconditionError(StrCat("runc probe: ", h.probe.error));
    return d.sandboxes->Run(c, h.name);
  }

  StatusOr<ContainerRecord> CreateAndStart(DomainSet& d, const container::CreateRequest& req) {
    ASSIGN_OR_RETURN(ContainerRecord r, d.containers->Create(req));
    RETURN_IF_ERROR(d.containers->Start(r.id));
    return d.containers->Get(r.id);
  }

  // Polls Get until the container is in `state`.
  StatusOr<ContainerRecord> WaitForState(DomainSet& d, const std::string& id,
                                         ContainerState state) {
    const auto until = Clock::now() + std::chrono::seconds(20);
    for (;;) {
      ASSIGN_OR_RETURN(ContainerRecord r, d.containers->Get(id));
      if (r.state == state) return r;
      if (Clock::now() > until) {
        return DeadlineExceededError(
            StrCat("container ", id, " is in state ", static_cast<int>(r.state), " after 20 s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // Processes of the test's containers and pods: a monitor or runtime naming an id, or a
  // process in one of the containers' PID namespaces.
  std::vector<std::string> LeftoverProcesses(const std::set<std::string>& ids,
                                             const std::set<std::string>& pid_namespaces) {
    std::vector<std::string> leaked;
    const auto until = Clock::now() + std::chrono::seconds(5);
    do {
      leaked.clear();
      for (int pid : LivePids()) {
        if (pid == ::getpid()) continue;
        const std::string cmdline = CmdlineOf(pid);
        const std::string ns = PidNamespaceOf(pid);
        bool hit = cmdline.find(dir_.string()) != std::string::npos ||
                   (!ns.empty() && pid_namespaces.contains(ns));
        for (const std::string& id : ids) hit |= cmdline.find(id) != std::string::npos;
        if (hit) leaked.push_back(StrCat(pid, " [", ns, "] ", cmdline));
      }
      if (leaked.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (Clock::now() < until);
    return leaked;
  }

  static RegistryServer* registry_;
  static std::string image_id_;
  static std::string suite_error_;

  fs::path dir_;
  std::string image_;
  std::string cgroup_parent_;
  std::string bridge_, prefix_, network_name_;
  // Runs in OpenDomain once the event bus exists, before anything is recovered.
  std::function<void(DomainSet&)> before_recovery_;
  DomainSet domain_;
};

RegistryServer* RecoveryConcurrencyIT::registry_ = nullptr;
std::string RecoveryConcurrencyIT::image_id_;
std::string RecoveryConcurrencyIT::suite_error_;

// Events for one container id, by type, as a subscriber saw them.
struct EventLog {
  std::mutex mu;
  std::map<std::string, std::multiset<LifecycleEventType>> by_id;
  int Count(const std::string& id, LifecycleEventType t) {
    std::lock_guard lock(mu);
    auto it = by_id.find(id);
    return it == by_id.end() ? 0 : static_cast<int>(it->second.count(t));
  }
};

TEST_F(RecoveryConcurrencyIT, RecoveredDomainServesConcurrentCallsAndLeavesNothing) {
  constexpr int kPods = 4;
  ASSERT_NO_FATAL_FAILURE(OpenDomain(domain_));
  IT_ASSERT_OK_AND_ASSIGN(image::ImageRecord img, domain_.images->Pull(image_, std::nullopt));
  ASSERT_EQ(img.id, image_id_);

  // First life: pods (half with a shared PID namespace, so with berth-pause) made at once,
  // each with a long sleeper and a container that exits with 3 once /go exists in its rootfs.
  std::vector<sandbox::SandboxRecord> pods(kPods);
  std::vector<ContainerRecord> sleepers(kPods), waiters(kPods);
  {
    std::vector<Status> errors(kPods);
    std::vector<std::jthread> threads;
    for (int i = 0; i < kPods; ++i) {
      threads.emplace_back([&, i]() {
        errors[i] = [&]() -> Status {
          ASSIGN_OR_RETURN(pods[i], RunPod(domain_, PodConfig(StrCat("pod-", i), i % 2 == 0)));
          ASSIGN_OR_RETURN(sleepers[i], CreateAndStart(domain_, CtrRequest(pods[i].id, "sleeper",
                                                                           {"sleep", "300"})));
          ASSIGN_OR_RETURN(
              waiters[i],
              CreateAndStart(
                  domain_,
                  CtrRequest(pods[i].id, "waiter",
                             {"sh", "-c", "while [ ! -e /go ]; do sleep 0.1; done; exit 3"})));
          return OkStatus();
        }();
      });
    }
    threads.clear();
    for (int i = 0; i < kPods; ++i) ASSERT_TRUE(errors[i].ok()) << "pod " << i << ": " << errors[i];
  }
  // One container created but never started.
  IT_ASSERT_OK_AND_ASSIGN(ContainerRecord idle, domain_.containers->Create(CtrRequest(
                                                    pods[0].id, "idle", {"sleep", "300"})));
  std::set<std::string> all_ids, pid_namespaces;
  for (int i = 0; i < kPods; ++i) {
    all_ids.insert({pods[i].id, sleepers[i].id, waiters[i].id});
    EXPECT_TRUE(pods[i].ip.starts_with(prefix_)) << pods[i].ip;
    for (const ContainerRecord* r : {&sleepers[i], &waiters[i]}) {
      ASSERT_EQ(r->state, ContainerState::kRunning) << r->id;
      pid_namespaces.insert(PidNamespaceOf(r->pid));
    }
  }
  all_ids.insert(idle.id);
  pid_namespaces.erase(PidNamespaceOf(::getpid()));

  // berthd exits: the domain goes, the monitors keep the containers.
  domain_.Close();
  for (int i = 0; i < kPods; ++i) {
    EXPECT_TRUE(Alive(sleepers[i].pid)) << "the sleeper of pod " << i << " died with the domain";
  }
  // While it is down, every waiter exits with 3, and pod 1's sleeper is killed.
  for (int i = 0; i < kPods; ++i) {
    IT_ASSERT_OK(WriteFileAtomic(fs::path(waiters[i].rootfs) / "go", ""));
  }
  ASSERT_EQ(::kill(sleepers[1].pid, SIGKILL), 0);
  const auto until = Clock::now() + std::chrono::seconds(20);
  auto exit_files = [&] {
    int n = Exists(fs::path(sleepers[1].bundle) / "exit") ? 1 : 0;
    for (int i = 0; i < kPods; ++i) n += Exists(fs::path(waiters[i].bundle) / "exit") ? 1 : 0;
    return n;
  };
  while (exit_files() < kPods + 1 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(exit_files(), kPods + 1) << "the monitors did not record the exits";

  // Second life: recovery, with a subscriber from the start (GetContainerEvents is served
  // during recovery) and calls from several threads as soon as the managers exist.
  EventLog events;
  std::jthread event_reader;
  before_recovery_ = [&](DomainSet& d) {
    std::shared_ptr<container::LifecycleEventBus::Subscription> sub = d.events->Subscribe();
    // Until the bus closes with the domain.
    event_reader = std::jthread([&events, sub] {
      for (;;) {
        auto e = sub->Next(std::chrono::milliseconds(50));
        if (!e) {
          if (sub->closed()) break;
          continue;
        }
        std::lock_guard lock(events.mu);
        events.by_id[e->id].insert(e->type);
      }
    });
  };
  ASSERT_NO_FATAL_FAILURE(OpenDomain(domain_));
  before_recovery_ = nullptr;

  std::atomic<bool> writers_done{false};
  std::mutex failures_mu;
  std::vector<std::string> failures;
  auto fail = [&](std::string what) {
    std::lock_guard lock(failures_mu);
    failures.push_back(std::move(what));
  };
  // Ids the writers remove: readers may find them gone.
  const std::set<std::string> removed_by_writers = {pods[3].id, sleepers[3].id, waiters[3].id,
                                                    sleepers[2].id};
  std::string late_id;
  {
    std::vector<std::jthread> threads;
    // Readers: what the status and list handlers and the kubelet's stats calls do.
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&] {
        while (!writers_done.load()) {
          for (const std::string& id : all_ids) {
            if (removed_by_writers.contains(id)) continue;
            const bool is_pod =
                std::any_of(pods.begin(), pods.end(), [&](const auto& p) { return p.id == id; });
            Status s =
                is_pod ? domain_.sandboxes->Get(id).status() : domain_.containers->Get(id).status();
            if (!s.ok()) fail(StrCat("Get(", id, ") during recovery: ", s.ToString()));
          }
          (void)domain_.containers->List();
          domain_.containers->Visit(nullptr, [](const ContainerRecord&) {});
          (void)domain_.sandboxes->List();
          for (const auto& p : pods) (void)domain_.containers->ListInSandbox(p.id);
          (void)domain_.stats->ListContainers({});
          (void)domain_.stats->ListPods({});
          (void)domain_.containers->CountByState();
          (void)domain_.containers->LiveMonitors();
          (void)domain_.images->List();
        }
      });
    }
    // Two threads exec into pod 0's sleeper, again and again.
    for (int e = 0; e < 2; ++e) {
      threads.emplace_back([&, e] {
        for (int round = 0; round < 3; ++round) {
          const std::string word = StrCat("exec-", e, "-", round);
          StatusOr<ProcessResult> r = domain_.containers->ExecSync(sleepers[0].id, {"echo", word},
                                                                   std::chrono::seconds(20));
          if (!r.ok() || r->exit_code != 0 || r->out != word + "\n") {
            fail(StrCat("ExecSync in ", sleepers[0].id, ": ",
                        r.ok() ? StrCat("exit ", r->exit_code, " out ", r->out, " err ", r->err)
                               : r.status().ToString()));
          }
        }
      });
    }
    // A new container in a recovered pod: waits for the probe, runs, is stopped and removed.
    threads.emplace_back([&] {
      StatusOr<ContainerRecord> late =
          CreateAndStart(domain_, CtrRequest(pods[0].id, "late", {"sleep", "300"}));
      if (!late.ok()) return fail(StrCat("late container: ", late.status().ToString()));
      late_id = late->id;
      StatusOr<ProcessResult> r = domain_.containers->ExecSync(late->id, {"cat", "/etc/hostname"},
                                                               std::chrono::seconds(20));
      if (!r.ok() || r->out != "pod-0\n") {
        fail(StrCat("exec in the late container: ",
                    r.ok() ? r->out + r->err : r.status().ToString()));
      }
      if (Status s = domain_.containers->Stop(late->id, std::chrono::seconds(2)); !s.ok()) {
        fail(StrCat("Stop(late): ", s.ToString()));
      }
      if (Status s = domain_.containers->Remove(late->id); !s.ok()) {
        fail(StrCat("Remove(late): ", s.ToString()));
      }
    });
    // Stop and remove one surviving sleeper, and a whole pod with its containers.
    threads.emplace_back([&] {
      if (Status s = domain_.containers->Stop(sleepers[2].id, std::chrono::seconds(2)); !s.ok()) {
        fail(StrCat("Stop(sleeper 2): ", s.ToString()));
      }
      if (Status s = domain_.containers->Remove(sleepers[2].id); !s.ok()) {
        fail(StrCat("Remove(sleeper 2): ", s.ToString()));
      }
    });
    threads.emplace_back([&] {
      if (Status s = domain_.containers->StopPod(pods[3].id); !s.ok()) {
        fail(StrCat("StopPod(3): ", s.ToString()));
      }
      if (Status s = domain_.containers->RemovePod(pods[3].id); !s.ok()) {
        fail(StrCat("RemovePod(3): ", s.ToString()));
      }
    });
    // The container created before the restart starts now.
    threads.emplace_back([&] {
      if (Status s = domain_.containers->Start(idle.id); !s.ok()) {
        fail(StrCat("Start(idle) after recovery: ", s.ToString()));
      }
    });
    // Wait for the writers (every thread after the two readers), then stop the readers.
    for (size_t t = 2; t < threads.size(); ++t) threads[t].join();
    writers_done = true;
  }
  EXPECT_THAT(failures, IsEmpty());

  // State after recovery: every exit that happened while down is recorded, and published once.
  for (int i = 0; i < 3; ++i) {
    StatusOr<ContainerRecord> w = domain_.containers->Get(waiters[i].id);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ(w->state, ContainerState::kExited) << w->id;
    EXPECT_EQ(w->exit_code, 3) << w->id;
    EXPECT_NE(w->finished_at_ns, 0) << w->id;
    EXPECT_EQ(events.Count(w->id, LifecycleEventType::kStopped), 1) << w->id;
  }
  StatusOr<ContainerRecord> killed = domain_.containers->Get(sleepers[1].id);
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  EXPECT_EQ(killed->state, ContainerState::kExited);
  EXPECT_EQ(killed->exit_code, 128 + SIGKILL);
  EXPECT_EQ(events.Count(sleepers[1].id, LifecycleEventType::kStopped), 1);
  StatusOr<ContainerRecord> kept = domain_.containers->Get(sleepers[0].id);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->state, ContainerState::kRunning);
  EXPECT_EQ(kept->pid, sleepers[0].pid) << "the recovered record names another process";
  EXPECT_EQ(kept->created_at_ns, sleepers[0].created_at_ns);
  EXPECT_EQ(kept->labels, sleepers[0].labels);
  EXPECT_TRUE(Alive(kept->pid));
  StatusOr<ContainerRecord> started = WaitForState(domain_, idle.id, ContainerState::kRunning);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  pid_namespaces.insert(PidNamespaceOf(started->pid));
  EXPECT_EQ(domain_.containers->Get(sleepers[2].id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(domain_.containers->Get(late_id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(domain_.sandboxes->Get(pods[3].id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(domain_.containers->Get(waiters[3].id).status().code(), StatusCode::kNotFound);
  for (int i = 0; i < 3; ++i) {
    StatusOr<sandbox::SandboxRecord> p = domain_.sandboxes->Get(pods[i].id);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->state, sandbox::SandboxState::kReady);
    EXPECT_EQ(p->ip, pods[i].ip) << "pod " << i << " changed its address";
  }
  EXPECT_EQ(domain_.images->Remove(image_).code(), StatusCode::kFailedPrecondition)
      << "an image containers use was removable after recovery";
  if (!late_id.empty()) all_ids.insert(late_id);

  // Third life: another restart, then every pod removed from its own thread.
  domain_.Close();
  event_reader = {};
  ASSERT_NO_FATAL_FAILURE(OpenDomain(domain_));
  {
    std::vector<Status> removed(3);
    std::vector<std::jthread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] { removed[i] = domain_.containers->RemovePod(pods[i].id); });
    }
    threads.emplace_back([&] {
      for (int k = 0; k < 20; ++k) {
        (void)domain_.containers->List();
        (void)domain_.sandboxes->List();
        (void)domain_.stats->ListPods({});
      }
    });
    threads.clear();
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(removed[i].ok()) << removed[i].ToString();
  }
  EXPECT_THAT(domain_.containers->List(), IsEmpty());
  EXPECT_THAT(domain_.sandboxes->List(), IsEmpty());
  IT_ASSERT_OK(domain_.images->Remove(image_));
  EXPECT_THAT(domain_.images->List(), IsEmpty());

  // Nothing is left on the host.
  EXPECT_THAT(LeftoverProcesses(all_ids, pid_namespaces), IsEmpty());
  EXPECT_THAT(LeasedAddresses(), IsEmpty()) << "IP addresses leaked";
  EXPECT_THAT(DirEntries(fs::path("/sys/class/net") / bridge_ / "brif"), IsEmpty())
      << "veths left on " << bridge_;
  EXPECT_THAT(CgroupsBelow(cgroup_parent_), IsEmpty()) << "container cgroups left";
  const fs::path state = dir_ / "state";
  std::vector<std::string> mounts;
  for (const std::string& m : MountsUnder(dir_)) {
    if (m != (state / "netns").string()) mounts.push_back(m);
  }
  EXPECT_THAT(mounts, IsEmpty());
  EXPECT_THAT(DirEntries(state / "runtimes" / "runc"), IsEmpty()) << "runc state left";
  EXPECT_THAT(DirEntries(state / "containers"), IsEmpty()) << "bundles left";
  EXPECT_THAT(DirEntries(dir_ / "root" / "containers"), IsEmpty()) << "writable layers left";
  EXPECT_THAT(DirEntries(state / "sandboxes"), IsEmpty()) << "sandbox dirs left";
  EXPECT_THAT(DirEntries(state / "netns"), IsEmpty()) << "pinned network namespaces left";
}

}  // namespace
}  // namespace berth::testing
