#include "sandbox/sandbox_manager.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/fs.h"
#include "common/proc.h"
#include "sandbox/sandbox_plan.h"

namespace berth::sandbox {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kBucket = "sandboxes";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NodeHostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// Pins new IPC and UTS namespaces at `ipc_path` and `uts_path` (bind mounts of
// their nsfs files), made on a short-lived thread so that berthd itself never
// changes namespace.
Status PinIpcUts(const fs::path& ipc_path, const fs::path& uts_path, const std::string& hostname) {
  Status result;
  std::thread t([&] {
    if (::unshare(CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
      result = ErrnoStatus(errno, "unshare IPC and UTS namespaces");
      return;
    }
    if (!hostname.empty() && ::sethostname(hostname.data(), hostname.size()) != 0) {
      result = ErrnoStatus(errno, StrCat("set hostname ", hostname));
      return;
    }
    for (const auto& [ns, path] : {std::pair{"ipc", ipc_path}, std::pair{"uts", uts_path}}) {
      std::string src = StrCat("/proc/thread-self/ns/", ns);
      UniqueFd f(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
      if (!f.valid()) {
        result = ErrnoStatus(errno, StrCat("create ", path.string()));
        return;
      }
      if (::mount(src.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        result = ErrnoStatus(errno, StrCat("bind ", src, " to ", path.string()));
        return;
      }
    }
  });
  t.join();
  return result;
}

// PinIpcUts for a pod with a user namespace: the IPC and UTS namespaces
// belong to it, so that its containers may mount mqueue and set the hostname.
Status PinIpcUtsInUserns(const fs::path& userns_path, const fs::path& ipc_path,
                         const fs::path& uts_path, const std::string& hostname) {
  for (const fs::path& p : {ipc_path, uts_path}) {
    UniqueFd f(::open(p.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!f.valid()) return ErrnoStatus(errno, StrCat("create ", p.string()));
  }
  return PinNamespacesInUserNamespace(
      userns_path, {{CLONE_NEWIPC, ipc_path}, {CLONE_NEWUTS, uts_path}}, hostname);
}

// Starts berth-pause as PID 1 of a new PID namespace, inside the pod's other
// namespaces, detached from berthd (its own session; reparented to init) so
// it outlives a daemon restart. Returns its host pid.
// `sandbox_dir` goes on berth-pause's command line (it ignores it), so that
// start-up recovery can find the pause process of a pod whose RunPodSandbox
// was interrupted before its PID namespace was pinned.
StatusOr<pid_t> SpawnPause(const std::string& binary, const std::vector<std::string>& ns_paths,
                           const std::string& sandbox_dir) {
  if (binary.empty() || ::access(binary.c_str(), X_OK) != 0) {
    return FailedPreconditionError(
        "berth-pause not found beside berthd or in PATH: pods with a shared PID namespace need it");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe for berth-pause");
  UniqueFd rd(fds[0]), wr(fds[1]);
  pid_t child = ::fork();
  if (child < 0) return ErrnoStatus(errno, "fork for berth-pause");
  if (child == 0) {
    ::setsid();
    for (const auto& p : ns_paths) {
      int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, 0) != 0) ::_exit(1);
      ::close(fd);
    }
    if (::unshare(CLONE_NEWPID) != 0) ::_exit(2);
    pid_t pause = ::fork();
    if (pause < 0) ::_exit(3);
    if (pause == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(binary.c_str(), "berth-pause", sandbox_dir.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    (void)!::write(wr.get(), &pause, sizeof pause);
    ::_exit(0);
  }
  wr.Reset();
  pid_t pause = 0;
  ssize_t n = ::read(rd.get(), &pause, sizeof pause);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (n != sizeof pause || pause <= 0) {
    return InternalError(StrCat("starting berth-pause failed (helper exit status ", status, ")"));
  }
  return pause;
}

// Kills berth-pause only if `pid` still is the init of the pinned namespace
// (after a restart the pid may belong to someone else).
void KillPause(int pid, const std::string& pinned) {
  if (pid <= 0 || pinned.empty()) return;
  struct stat a, b;
  std::string live = StrCat("/proc/", pid, "/ns/pid");
  if (::stat(live.c_str(), &a) != 0 || ::stat(pinned.c_str(), &b) != 0) return;
  if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) return;
  ::kill(pid, SIGKILL);
}

// SIGKILLs the processes of the pod whose directory is `dir`: every process
// in its pinned PID namespace, and the berth-pause started for it (found by
// its command line when the run stopped before the namespace was pinned).
void KillPodProcesses(const std::vector<ProcessInfo>& processes, const fs::path& dir) {
  const std::string pause_cmdline = CmdlineOf({"berth-pause", dir.string()});
  struct stat ns;
  const bool pinned = ::stat((dir / "pidns").c_str(), &ns) == 0;
  for (const ProcessInfo& p : processes) {
    struct stat st;
    std::string live = StrCat("/proc/", p.pid, "/ns/pid");
    bool in_pod = pinned && ::stat(live.c_str(), &st) == 0 && st.st_ino == ns.st_ino &&
                  st.st_dev == ns.st_dev;
    if (in_pod || p.cmdline == pause_cmdline) ::kill(p.pid, SIGKILL);
  }
}

void UnpinNamespace(const std::string& path) {
  if (path.empty()) return;
  ::umount2(path.c_str(), MNT_DETACH);
  ::unlink(path.c_str());
}

}  // namespace

Status ValidateUserNamespace(const SandboxConfig& config) {
  if (!config.userns) return OkStatus();
  // As Kubernetes validates hostUsers: false: the node's namespaces belong
  // to the node's user namespace, where the pod has no rights.
  if (config.network_mode == oci::NamespaceMode::kNode ||
      config.ipc_mode == oci::NamespaceMode::kNode ||
      config.pid_mode == oci::NamespaceMode::kNode) {
    return InvalidArgumentError(
        "a pod with its own user namespace cannot use the node's network, IPC or PID namespace");
  }
  RETURN_IF_ERROR(ValidateIdMappings(config.userns->uids, "uid"));
  return ValidateIdMappings(config.userns->gids, "gid");
}

std::string ReservedName(const SandboxConfig& c) {
  return StrCat(c.name, "_", c.namespace_, "_", c.uid, "_", c.attempt);
}

oci::SandboxInfo SandboxRecord::Info() const {
  oci::SandboxInfo s;
  s.id = id;
  s.name = config.name;
  s.namespace_ = config.namespace_;
  s.hostname = config.hostname.empty() ? NodeHostname() : config.hostname;
  s.netns_path = netns_path;
  s.ipc_ns_path = ipc_ns_path;
  s.uts_ns_path = uts_ns_path;
  s.pid_ns_path = pid_ns_path;
  s.cgroup_parent = config.cgroup_parent;
  s.resolv_conf_path = (fs::path(dir) / "resolv.conf").string();
  s.hosts_path = (fs::path(dir) / "hosts").string();
  s.hostname_path = (fs::path(dir) / "hostname").string();
  if (config.ipc_mode != oci::NamespaceMode::kNode) s.shm_path = (fs::path(dir) / "shm").string();
  s.sysctls = config.sysctls;
  s.resources = config.resources;
  s.privileged = config.privileged;
  s.userns_path = userns_path;
  if (config.userns) {
    s.uid_mappings = config.userns->uids;
    s.gid_mappings = config.userns->gids;
  }
  return s;
}

SandboxManager::SandboxManager(SandboxManagerOptions options, store::MetadataStore* db,
                               network::CniManager* cni)
    : options_(std::move(options)), db_(db), cni_(cni), netns_(options_.netns_dir) {}

StatusOr<std::unique_ptr<SandboxManager>> SandboxManager::Open(SandboxManagerOptions options,
                                                               store::MetadataStore* db,
                                                               network::CniManager* cni) {
  std::unique_ptr<SandboxManager> m(new SandboxManager(std::move(options), db, cni));
  RETURN_IF_ERROR(MakeDirs(m->options_.state_dir, 0711));
  ASSIGN_OR_RETURN(auto rows, db->List(kBucket));
  for (const auto& [key, value] : rows) {
    ASSIGN_OR_RETURN(SandboxRecord r, SandboxRecord::FromJson(value));
    // After a reboot the state directory (a tmpfs) is gone with the
    // namespaces: such pods can no longer run containers.
    if (r.state == SandboxState::kReady && !r.netns_path.empty() && !fs::exists(r.netns_path)) {
      r.state = SandboxState::kNotReady;
      RETURN_IF_ERROR(m->Save(r));
    }
    m->names_[ReservedName(r.config)] = r.id;
    m->sandboxes_[r.id] = r;
  }
  m->CollectOrphans();
  return m;
}

// A RunPodSandbox interrupted by a crash leaves a directory (and maybe a
// network, namespaces, a pause process) but no record. Nobody can name such
// a pod any more, so it is torn down here; each step tolerates what the
// interrupted run never got to.
void SandboxManager::CollectOrphans() {
  std::error_code ec;
  std::set<std::string> orphans;
  for (const auto& e : fs::directory_iterator(options_.state_dir, ec)) {
    std::string id = e.path().filename().string();
    if (!sandboxes_.contains(id)) orphans.insert(id);
  }
  for (const auto& e : fs::directory_iterator(options_.netns_dir, ec)) {
    std::string id = e.path().filename().string();
    if (!sandboxes_.contains(id)) orphans.insert(id);
  }
  if (orphans.empty()) return;
  const std::vector<ProcessInfo> processes = ListProcesses();
  for (const std::string& id : orphans) {
    const fs::path dir = options_.state_dir / id;
    const fs::path netns = options_.netns_dir / id;
    network::PodNetworkRequest req;
    req.container_id = id;
    req.netns_path = fs::exists(netns) ? netns.string() : "";
    Status net = cni_->TearDownPod(req);
    if (!net.ok()) {
      spdlog::warn("event=orphan_sandbox_network id={} error=\"{}\"", id, net.message());
    }
    if (fs::exists(netns)) (void)network::RemoveNetworkNamespace(netns.string());
    KillPodProcesses(processes, dir);
    for (const char* pinned : {"pidns", "ipcns", "utsns", "userns"}) {
      UnpinNamespace((dir / pinned).string());
    }
    ::umount2((dir / "shm").c_str(), MNT_DETACH);
    Status rm = RemoveAll(dir);
    spdlog::info("event=orphan_sandbox_removed id={} ok={}", id, rm.ok());
  }
}

Status SandboxManager::Save(const SandboxRecord& r) {
  RETURN_IF_ERROR(db_->Put(kBucket, r.id, r.ToJson()));
  std::lock_guard lock(mu_);
  sandboxes_[r.id] = r;
  return OkStatus();
}

StatusOr<SandboxRecord> SandboxManager::Run(const SandboxConfig& config,
                                            const std::string& runtime_handler) {
  if (config.name.empty() || config.uid.empty() || config.namespace_.empty()) {
    return InvalidArgumentError("sandbox metadata needs name, uid and namespace");
  }
  if (config.pid_mode == oci::NamespaceMode::kTarget) {
    return InvalidArgumentError("a pod sandbox cannot use pid mode TARGET");
  }
  RETURN_IF_ERROR(ValidateUserNamespace(config));
  const std::string reserved = ReservedName(config);
  // A retry of an in-flight call waits here, then finds the sandbox made by
  // the first call and returns it.
  bool waited = false;
  auto name_held = name_locks_.Acquire(reserved, &waited);
  {
    std::lock_guard lock(mu_);
    if (auto it = names_.find(reserved); it != names_.end()) {
      const SandboxRecord& existing = sandboxes_.at(it->second);
      if (waited) return existing;
      return AlreadyExistsError(StrCat("pod sandbox name ", reserved, " is reserved by ",
                                       existing.id, "; remove it first"));
    }
  }
  return RunLocked(config, runtime_handler);
}

namespace {

// The steps of RunPodSandbox's execute half, in order. Each fills in the
// record as it goes; RunLocked's guards undo what the record says was made.

// The pod's /dev/shm: a tmpfs shared by its containers.
Status MountPodShm(const fs::path& shm, const std::string& id, bool& mounted) {
  RETURN_IF_ERROR(MakeDirs(shm, 01777));
  if (::mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=1777,size=65536k") != 0) {
    return ErrnoStatus(errno, StrCat("mount /dev/shm tmpfs of sandbox ", id));
  }
  mounted = true;
  return OkStatus();
}

// The pod's user, IPC and UTS namespaces, pinned in its directory.
Status PinPodNamespaces(SandboxRecord& r, const SandboxPlan& plan) {
  const fs::path dir = r.dir;
  if (plan.user_namespace) {
    // The pod's other namespaces are made inside it (see common/userns.h).
    r.userns_path = (dir / "userns").string();
    Status pinned =
        PinNewUserNamespace(r.userns_path, r.config.userns->uids, r.config.userns->gids);
    if (!pinned.ok()) {
      r.userns_path.clear();
      return Annotate(pinned, StrCat("user namespace of sandbox ", r.id));
    }
    // The pod's /etc files belong to its root, as in CRI-O: owned by the
    // host ID that root maps to (they would show as "nobody" otherwise).
    const int64_t root_uid = MapToHost(r.config.userns->uids, 0);
    const int64_t root_gid = MapToHost(r.config.userns->gids, 0);
    if (root_uid >= 0 && root_gid >= 0) {
      for (const char* f : {"hostname", "hosts", "resolv.conf"}) {
        if (::chown((dir / f).c_str(), static_cast<uid_t>(root_uid),
                    static_cast<gid_t>(root_gid)) != 0) {
          return ErrnoStatus(errno, StrCat("chown ", (dir / f).string()));
        }
      }
    }
  }
  if (plan.ipc_namespace || plan.uts_namespace) {
    // Both are made by one helper; the one the pod does not want goes again.
    r.ipc_ns_path = (dir / "ipcns").string();
    r.uts_ns_path = (dir / "utsns").string();
    Status pinned = plan.user_namespace ? PinIpcUtsInUserns(r.userns_path, r.ipc_ns_path,
                                                            r.uts_ns_path, plan.hostname)
                                        : PinIpcUts(r.ipc_ns_path, r.uts_ns_path, plan.hostname);
    if (!pinned.ok()) return Annotate(pinned, StrCat("sandbox ", r.id));
    if (!plan.ipc_namespace) {
      UnpinNamespace(r.ipc_ns_path);
      r.ipc_ns_path.clear();
    }
    if (!plan.uts_namespace) {
      UnpinNamespace(r.uts_ns_path);
      r.uts_ns_path.clear();
    }
  }
  return OkStatus();
}

// What CNI is told of a pod, for its set-up and its teardown alike.
network::PodNetworkRequest PodNetworkRequestFor(const SandboxRecord& r) {
  network::PodNetworkRequest req;
  req.container_id = r.id;
  req.netns_path = r.netns_path;
  req.pod_name = r.config.name;
  req.pod_namespace = r.config.namespace_;
  req.pod_uid = r.config.uid;
  req.port_mappings = r.config.port_mappings;
  return req;
}

// The pod's network namespace and its CNI set-up; `req` is what a teardown
// of it needs.
Status SetUpPodNetwork(SandboxRecord& r, network::NetworkNamespaces& netns,
                       network::CniManager& cni, network::PodNetworkRequest& req) {
  ASSIGN_OR_RETURN(fs::path ns, netns.Create(r.id, r.userns_path));
  r.netns_path = ns.string();
  req = PodNetworkRequestFor(r);
  auto result = cni.SetUpPod(req);
  if (!result.ok()) return Annotate(result.status(), StrCat("set up network of sandbox ", r.id));
  r.network_ready = true;
  r.ip = result->ip;
  r.additional_ips = result->additional_ips;
  return OkStatus();
}

// The pause process in the pod's namespaces, and its PID namespace pinned.
Status StartPodPause(SandboxRecord& r, const std::string& pause_binary) {
  std::vector<std::string> join;
  // The user namespace first: the others belong to it.
  for (const auto& p : {r.userns_path, r.ipc_ns_path, r.uts_ns_path, r.netns_path}) {
    if (!p.empty()) join.push_back(p);
  }
  ASSIGN_OR_RETURN(r.pause_pid, SpawnPause(pause_binary, join, r.dir));
  std::string pinned = (fs::path(r.dir) / "pidns").string();
  UniqueFd f(::open(pinned.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  std::string live = StrCat("/proc/", r.pause_pid, "/ns/pid");
  if (!f.valid() || ::mount(live.c_str(), pinned.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int err = errno;
    ::kill(r.pause_pid, SIGKILL);
    return ErrnoStatus(err, StrCat("pin PID namespace of sandbox ", r.id));
  }
  r.pid_ns_path = pinned;
  return OkStatus();
}

}  // namespace

StatusOr<SandboxRecord> SandboxManager::RunLocked(const SandboxConfig& config,
                                                  const std::string& runtime_handler) {
  SandboxRecord r;
  r.id = RandomHex(32);
  r.config = config;
  r.runtime_handler = runtime_handler;
  r.created_at_ns = NowNs();
  r.dir = (options_.state_dir / r.id).string();
  const fs::path dir = r.dir;
  RETURN_IF_ERROR(MakeDirs(dir, 0711));
  ScopeGuard remove_dir([&] { (void)RemoveAll(dir); });

  // Decide (sandbox_plan.h), then do it with a guard per resource, each
  // undoing what the record says its step made.
  SandboxHostFacts host;
  host.node_hostname = NodeHostname();
  if (auto h = ReadFile("/etc/hosts"); h.ok()) host.etc_hosts = std::move(*h);
  if (auto rc = ReadFile(options_.resolv_conf_source); rc.ok()) host.resolv_conf = std::move(*rc);
  const SandboxPlan plan = PlanSandbox(config, host);
  RETURN_IF_ERROR(WriteFileAtomic(dir / "hostname", plan.hostname + "\n"));
  RETURN_IF_ERROR(WriteFileAtomic(dir / "hosts", plan.hosts));
  RETURN_IF_ERROR(WriteFileAtomic(dir / "resolv.conf", plan.resolv_conf));

  const fs::path shm = dir / "shm";
  bool shm_mounted = false;
  ScopeGuard umount_shm([&] {
    if (shm_mounted) ::umount2(shm.c_str(), MNT_DETACH);
  });
  if (plan.shm_tmpfs) RETURN_IF_ERROR(MountPodShm(shm, r.id, shm_mounted));

  ScopeGuard unpin([&] {
    UnpinNamespace(r.ipc_ns_path);
    UnpinNamespace(r.uts_ns_path);
    UnpinNamespace(r.userns_path);
  });
  RETURN_IF_ERROR(PinPodNamespaces(r, plan));

  ScopeGuard remove_netns([&] {
    if (!r.netns_path.empty()) (void)network::RemoveNetworkNamespace(r.netns_path);
  });
  network::PodNetworkRequest net_req;
  ScopeGuard teardown([&] {
    if (r.network_ready) (void)cni_->TearDownPod(net_req);
  });
  if (plan.network_namespace) RETURN_IF_ERROR(SetUpPodNetwork(r, netns_, *cni_, net_req));

  ScopeGuard kill_pause([&] {
    KillPause(r.pause_pid, r.pid_ns_path);
    UnpinNamespace(r.pid_ns_path);
  });
  if (plan.pause) RETURN_IF_ERROR(StartPodPause(r, options_.pause_binary));

  r.state = SandboxState::kReady;
  RETURN_IF_ERROR(Save(r));
  {
    std::lock_guard lock(mu_);
    names_[ReservedName(config)] = r.id;
  }
  remove_dir.Cancel();
  umount_shm.Cancel();
  unpin.Cancel();
  remove_netns.Cancel();
  teardown.Cancel();
  kill_pause.Cancel();
  spdlog::info("event=sandbox_ready id={} pod={}/{} ip={}", r.id, config.namespace_, config.name,
               r.ip.empty() ? "host" : r.ip);
  if (observer_) observer_(r, SandboxChange::kReady);
  return r;
}

Status SandboxManager::StopLocked(SandboxRecord& r) {
  if (r.network_ready) {
    RETURN_IF_ERROR(Annotate(cni_->TearDownPod(PodNetworkRequestFor(r)),
                             StrCat("tear down network of sandbox ", r.id)));
    r.network_ready = false;
  }
  if (!r.netns_path.empty()) RETURN_IF_ERROR(network::RemoveNetworkNamespace(r.netns_path));
  KillPause(r.pause_pid, r.pid_ns_path);
  UnpinNamespace(r.pid_ns_path);
  UnpinNamespace(r.ipc_ns_path);
  UnpinNamespace(r.uts_ns_path);
  UnpinNamespace(r.userns_path);
  ::umount2((fs::path(r.dir) / "shm").c_str(), MNT_DETACH);
  const bool was_ready = r.state == SandboxState::kReady;
  r.state = SandboxState::kNotReady;
  RETURN_IF_ERROR(Save(r));
  if (was_ready && observer_) observer_(r, SandboxChange::kStopped);
  return OkStatus();
}

Status SandboxManager::Stop(const std::string& id) {
  auto held = locks_.Acquire(id);
  SandboxRecord r;
  {
    std::lock_guard l(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return OkStatus();  // idempotent
    r = it->second;
  }
  RETURN_IF_ERROR(StopLocked(r));
  spdlog::info("event=sandbox_stopped id={}", id);
  return OkStatus();
}

Status SandboxManager::Remove(const std::string& id) {
  auto held = locks_.Acquire(id);
  SandboxRecord r;
  {
    std::lock_guard l(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return OkStatus();  // idempotent
    r = it->second;
  }
  RETURN_IF_ERROR(StopLocked(r));
  RETURN_IF_ERROR(RemoveAll(r.dir));
  RETURN_IF_ERROR(db_->Delete(kBucket, id));
  {
    std::lock_guard l(mu_);
    sandboxes_.erase(id);
    names_.erase(ReservedName(r.config));
  }
  spdlog::info("event=sandbox_removed id={}", id);
  if (observer_) observer_(r, SandboxChange::kRemoved);
  return OkStatus();
}

StatusOr<SandboxRecord> SandboxManager::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  if (auto it = sandboxes_.find(id); it != sandboxes_.end()) return it->second;
  const SandboxRecord* found = nullptr;
  if (!id.empty()) {
    for (const auto& [k, r] : sandboxes_) {
      if (k.starts_with(id)) {
        if (found) return InvalidArgumentError(StrCat("sandbox id prefix ", id, " is ambiguous"));
        found = &r;
      }
    }
  }
  if (!found) return NotFoundError(StrCat("pod sandbox ", id, " not found"));
  return *found;
}

StatusOr<UniqueFd> SandboxManager::ConnectToPort(const std::string& id, uint16_t port) {
  ASSIGN_OR_RETURN(SandboxRecord r, Get(id));
  // Under the pod's lock, so that a concurrent StopPodSandbox does not take
  // the namespace away between the check and the connection.
  auto held = locks_.Acquire(r.id);
  ASSIGN_OR_RETURN(r, Get(r.id));
  if (r.state != SandboxState::kReady) {
    return FailedPreconditionError(StrCat("pod sandbox ", r.id, " is not ready"));
  }
  auto fd = network::ConnectLoopback(r.netns_path, port, std::chrono::seconds(5));
  if (!fd.ok()) {
    return Annotate(fd.status(), StrCat("port-forward to port ", port, " of pod sandbox ", r.id,
                                        r.netns_path.empty() ? " (host network)" : ""));
  }
  return fd;
}

std::vector<SandboxRecord> SandboxManager::List() const {
  std::lock_guard lock(mu_);
  std::vector<SandboxRecord> out;
  for (const auto& [k, r] : sandboxes_) out.push_back(r);
  return out;
}

void SandboxManager::Visit(const std::function<void(const SandboxRecord&)>& visit) const {
  std::lock_guard lock(mu_);
  for (const auto& [k, r] : sandboxes_) visit(r);
}

}  // namespace berth::sandbox
