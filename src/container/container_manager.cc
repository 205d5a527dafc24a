#include "container/container_manager.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <ranges>
#include <set>
#include <thread>

#include "cdi/cdi_registry.h"
#include "common/fs.h"
#include "common/proc.h"
#include "common/safe_path.h"
#include "container/checkpoint.h"
#include "container/container_create.h"
#include "container/container_plan.h"
#include "container/image_volume.h"
#include "container/process_identity.h"
#include "container/userns.h"
#include "monitor/client.h"
#include "monitor/protocol.h"

namespace berth::container {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kBucket = "containers";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* StateName(ContainerState s) {
  switch (s) {
    case ContainerState::kCreated:
      return "CREATED";
    case ContainerState::kRunning:
      return "RUNNING";
    case ContainerState::kExited:
      return "EXITED";
    case ContainerState::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

// Where a call's time goes, logged at debug level: " phase_ms=1.23" for
// each phase since the previous mark.
class PhaseTiming {
 public:
  void Mark(const char* phase) {
    auto now = std::chrono::steady_clock::now();
    text_ += fmt::format(" {}_ms={:.2f}", phase,
                         std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }
  const std::string& text() const { return text_; }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::string text_;
};

std::string ReservedName(const oci::ContainerConfig& c, const sandbox::SandboxRecord& s) {
  return StrCat(c.name, "_", s.config.name, "_", s.config.namespace_, "_", s.config.uid, "_",
                c.attempt);
}

}  // namespace

std::vector<LifecycleEventType> ContainerTransitionEvents(const ContainerRecord* before,
                                                          const ContainerRecord* after) {
  using T = LifecycleEventType;
  if (before == nullptr) return after == nullptr ? std::vector<T>{} : std::vector<T>{T::kCreated};
  if (after == nullptr) return {T::kDeleted};
  const ContainerState from = before->state, to = after->state;
  if (from == to) return {};
  switch (to) {
    case ContainerState::kRunning:
      return from == ContainerState::kCreated ? std::vector<T>{T::kStarted} : std::vector<T>{};
    case ContainerState::kExited:
      // Exited before anyone saw it run: it did start unless the start failed.
      if (from == ContainerState::kCreated && after->started_at_ns != 0 &&
          after->reason != "StartError") {
        return {T::kStarted, T::kStopped};
      }
      return {T::kStopped};
    case ContainerState::kCreated:
    case ContainerState::kUnknown:
      return {};
  }
  return {};
}

ContainerManager::ContainerManager(ContainerManagerOptions options, store::MetadataStore* db,
                                   image::ImageService* images, sandbox::SandboxManager* sandboxes,
                                   std::map<std::string, oci::OciRuntime*> runtimes)
    : options_(std::move(options)),
      db_(db),
      images_(images),
      sandboxes_(sandboxes),
      runtimes_(std::move(runtimes)) {}

StatusOr<std::unique_ptr<ContainerManager>> ContainerManager::Open(
    ContainerManagerOptions options, store::MetadataStore* db, image::ImageService* images,
    sandbox::SandboxManager* sandboxes, std::map<std::string, oci::OciRuntime*> runtimes) {
  std::unique_ptr<ContainerManager> m(
      new ContainerManager(std::move(options), db, images, sandboxes, std::move(runtimes)));
  RETURN_IF_ERROR(MakeDirs(m->options_.root_dir, 0711));
  RETURN_IF_ERROR(MakeDirs(m->options_.state_dir, 0711));
  m->trash_ = std::make_unique<DeferredRemover>(std::vector<fs::path>{
      m->options_.root_dir.parent_path() / "trash", m->options_.state_dir.parent_path() / "trash"});
  ASSIGN_OR_RETURN(auto rows, db->List(kBucket));
  std::vector<ContainerRecord> changed;
  for (const auto& [key, value] : rows) {
    ASSIGN_OR_RETURN(ContainerRecord r, ContainerRecord::FromJson(value));
    auto sb = sandboxes->Get(r.sandbox_id);
    if (sb.ok()) {
      m->names_[StrCat(r.name, "_", sb->config.name, "_", sb->config.namespace_, "_",
                       sb->config.uid, "_", r.attempt)] = r.id;
    }
    m->containers_[r.id] = r;  // as recorded; what changed since goes through Commit
    // Exits and OOM kills that happened while berthd was down are in the
    // monitors' files.
    if (auto kills = monitor::ReadOomFile(fs::path(r.bundle) / monitor::kDefaultOomFile);
        kills.ok() && *kills > r.oom_kills) {
      r.oom_kills = *kills;
    }
    m->RefreshLocked(r);
    if (r.state == ContainerState::kCreated || r.state == ContainerState::kRunning) {
      if (!fs::exists(r.bundle)) {
        // State directory lost (reboot): the container is gone.
        r.state = ContainerState::kExited;
        r.exit_code = 255;
        r.reason = "Unknown";
        r.message = "container state was lost (host rebooted?)";
        r.finished_at_ns = NowNs();
      }
    }
    changed.push_back(std::move(r));
  }
  {
    // Publishes STOPPED for exits that happened while berthd was down, to
    // clients that subscribed while it recovers.
    std::lock_guard lock(m->mu_);
    for (auto& r : changed) {
      const std::string id = r.id;  // not r.id: the record is moved into the call
      if (r.ToJson() != m->containers_[id].ToJson())
        RETURN_IF_ERROR(m->CommitLocked(id, std::move(r)));
    }
  }
  m->CollectOrphans();
  m->SettleInterruptedStarts();

  BundleWatcher::Callbacks callbacks;
  ContainerManager* self = m.get();
  callbacks.on_file = [self](const std::string& id, const std::string& file) {
    self->OnBundleFile(id, file);
  };
  callbacks.on_overflow = [self] {
    std::vector<std::string> ids;
    {
      std::lock_guard lock(self->mu_);
      for (const auto& [id, r] : self->containers_) ids.push_back(id);
    }
    for (const auto& id : ids) self->OnBundleFile(id, monitor::kDefaultExitFile);
  };
  ASSIGN_OR_RETURN(m->watcher_, BundleWatcher::Start(std::move(callbacks)));
  std::vector<ContainerRecord> live;
  {
    std::lock_guard lock(m->mu_);
    for (const auto& [id, r] : m->containers_) live.push_back(r);
  }
  for (const auto& r : live) m->WatchBundle(r);
  sandboxes->SetObserver(
      [self](const sandbox::SandboxRecord& record, sandbox::SandboxChange change) {
        self->OnSandboxChange(record, change);
      });
  return m;
}

ContainerManager::~ContainerManager() {
  watcher_.reset();  // joins its thread: no callback runs after this
  sandboxes_->SetObserver({});
}

void ContainerManager::WatchBundle(const ContainerRecord& r) {
  if (r.state != ContainerState::kCreated && r.state != ContainerState::kRunning) return;
  Status s = watcher_->Watch(r.id, r.bundle);
  if (!s.ok()) {
    // Exits are still found whenever the container is looked at.
    spdlog::warn("event=bundle_watch_failed id={} error=\"{}\"", r.id, s.message());
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (containers_.contains(r.id)) exit_watched_.insert(r.id);
  }
  // What the monitor wrote before the watch began.
  OnBundleFile(r.id, monitor::kDefaultExitFile);
}

void ContainerManager::OnBundleFile(const std::string& id, const std::string& file) {
  SyncOomKills(id);
  if (file == monitor::kDefaultExitFile) (void)GetImpl(id, true);  // records the exit, if any
}

void ContainerManager::SyncOomKills(const std::string& id) {
  std::string bundle;
  {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return;
    bundle = it->second.bundle;
  }
  auto kills = monitor::ReadOomFile(fs::path(bundle) / monitor::kDefaultOomFile);
  if (!kills.ok()) return;
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end() || *kills <= it->second.oom_kills) return;
  ContainerRecord next = it->second;
  next.oom_kills = *kills;
  Status s = CommitLocked(id, std::move(next));
  if (!s.ok()) spdlog::warn("event=container_save_failed id={} error=\"{}\"", id, s.message());
}

Status ContainerManager::CommitLocked(const std::string& id, std::optional<ContainerRecord> next) {
  // Callers must not pass `id` from the record they move in.
  if (next && next->id != id) {
    return InternalError(StrCat("container record ", next->id, " committed as \"", id, "\""));
  }
  auto it = containers_.find(id);
  const ContainerRecord* before = it == containers_.end() ? nullptr : &it->second;
  if (next && before) {
    if (before->state == ContainerState::kExited && next->state != ContainerState::kExited) {
      // A copy taken before the exit was noticed (e.g. by the watcher while
      // StartContainer ran) must not bring the container back to life.
      spdlog::debug("event=stale_container_save_ignored id={}", id);
      return OkStatus();
    }
    next->oom_kills = std::max(next->oom_kills, before->oom_kills);
  }
  // Under mu_, so that the database and the map see one order of changes.
  if (next) RETURN_IF_ERROR(db_->Put(kBucket, id, next->ToJson()));
  const int64_t kills_before = before ? before->oom_kills : 0;
  if (next && next->oom_kills > kills_before) {
    const int64_t delta = next->oom_kills - kills_before;
    oom_kills_noticed_ += static_cast<uint64_t>(delta);
    spdlog::warn("event=container_oom_killed id={} kills={} new={}", id, next->oom_kills, delta);
  }
  std::vector<LifecycleEventType> events =
      ContainerTransitionEvents(before, next ? &*next : nullptr);
  const std::string sandbox_id = next ? next->sandbox_id : before ? before->sandbox_id : "";
  const bool gone = !next || next->state == ContainerState::kExited;
  if (next) {
    containers_[id] = std::move(*next);
  } else if (before) {
    containers_.erase(it);
  }
  if (gone) {
    exit_watched_.erase(id);
    if (watcher_) watcher_->Unwatch(id);
    if (options_.native_exec) options_.native_exec->Forget(id);
  }
  if (!events.empty() && options_.events != nullptr) {
    std::optional<sandbox::SandboxRecord> sb;
    if (auto got = sandboxes_->Get(sandbox_id); got.ok()) sb = std::move(*got);
    for (LifecycleEventType t : events) PublishLocked(id, sandbox_id, t, sb);
  }
  return OkStatus();
}

void ContainerManager::PublishLocked(const std::string& id, const std::string& sandbox_id,
                                     LifecycleEventType type,
                                     const std::optional<sandbox::SandboxRecord>& sandbox) {
  if (options_.events == nullptr) return;
  auto e = std::make_shared<LifecycleEvent>();
  e->id = id;
  e->sandbox_id = sandbox_id;
  e->type = type;
  e->at_ns = NowNs();
  e->sandbox = sandbox;
  for (const auto& [cid, r] : containers_) {
    if (r.sandbox_id == sandbox_id) e->containers.push_back(r);
  }
  options_.events->Publish(std::move(e));
}

void ContainerManager::OnSandboxChange(const sandbox::SandboxRecord& record,
                                       sandbox::SandboxChange change) {
  std::lock_guard lock(mu_);
  switch (change) {
    case sandbox::SandboxChange::kReady:
      // As containerd does: a pod that runs was created and started.
      PublishLocked(record.id, record.id, LifecycleEventType::kCreated, record);
      PublishLocked(record.id, record.id, LifecycleEventType::kStarted, record);
      break;
    case sandbox::SandboxChange::kStopped:
      PublishLocked(record.id, record.id, LifecycleEventType::kStopped, record);
      break;
    case sandbox::SandboxChange::kRemoved:
      // With the pod's last status: the kubelet drops events without one.
      PublishLocked(record.id, record.id, LifecycleEventType::kDeleted, record);
      break;
  }
}

namespace {
// A create interrupted inside the runtime's create may leave the container's
// cgroups without any runtime state, so the runtime's delete cannot remove
// them: remove them by the cgroupsPath of its config.json (cgroupfs paths;
// rmdir only removes empty cgroups).
void RemoveOrphanCgroups(const fs::path& bundle) {
  auto text = ReadFile(bundle / "config.json");
  if (!text.ok()) return;
  json spec = json::parse(*text, nullptr, false);
  if (spec.is_discarded()) return;
  const std::string path = spec["linux"].value("cgroupsPath", "");
  if (path.empty() || path[0] != '/' || path == "/" || path.find("..") != std::string::npos ||
      path.find(':') != std::string::npos) {
    return;
  }
  std::error_code ec;
  std::vector<fs::path> dirs = {fs::path("/sys/fs/cgroup") / path.substr(1)};
  for (const auto& e : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) dirs.push_back(e.path() / path.substr(1));
  }
  for (int attempt = 0; attempt < 20; ++attempt) {
    bool left = false;
    for (const fs::path& d : dirs) {
      if (::rmdir(d.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) left = true;
    }
    if (!left) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  spdlog::warn("event=orphan_cgroup_left bundle={} cgroup={}", bundle.string(), path);
}
}  // namespace

void ContainerManager::CollectOrphans() {
  std::error_code ec;
  std::set<std::string> orphans;
  for (const fs::path& dir : {options_.state_dir, options_.root_dir}) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string id = e.path().filename().string();
      if (!containers_.contains(id)) orphans.insert(id);
    }
  }
  if (orphans.empty()) return;
  // An interrupted create may still be running: its monitor (a session
  // leader, see monitor/main.cc) and the runtime's create under it. Kill
  // that whole session before the runtime deletes what it created.
  for (const ProcessInfo& p : ListProcesses()) {
    if (p.cmdline.find("berth-monitor") == std::string::npos) continue;
    for (const std::string& id : orphans) {
      if (p.cmdline.find(CmdlineOf({"--id", id})) != std::string::npos) {
        ::kill(-p.pid, SIGKILL);
        ::kill(p.pid, SIGKILL);
      }
    }
  }
  for (const std::string& id : orphans) {
    for (const auto& [name, runtime] : runtimes_) {
      Status s = runtime->Delete(id, true);
      if (!s.ok())
        spdlog::warn("event=orphan_container_delete id={} error=\"{}\"", id, s.message());
    }
    const fs::path bundle = options_.state_dir / id;
    RemoveOrphanCgroups(bundle);
    ::umount2((bundle / "rootfs").c_str(), MNT_DETACH);
    (void)UnmountEntriesAndRemove(bundle / "volumes");
    (void)UnmountEntriesAndRemove(bundle / "idmap" / "rootfs");
    (void)UnmountEntriesAndRemove(bundle / "idmap" / "mounts");
    Status a = RemoveAll(bundle);
    Status b = RemoveAll(options_.root_dir / id);
    spdlog::info("event=orphan_container_removed id={} ok={}", id, a.ok() && b.ok());
  }
}

void ContainerManager::SettleInterruptedStarts() {
  std::lock_guard lock(mu_);  // start-up: nothing else runs yet
  std::vector<ContainerRecord> settled;
  for (const auto& [id, rec] : containers_) {
    if (rec.state != ContainerState::kCreated || rec.started_at_ns == 0) continue;
    // Start stamps started_at before it asks the runtime, so a CREATED
    // record with that stamp had its start interrupted: the runtime knows
    // whether it happened.
    auto runtime = RuntimeFor(rec.runtime_handler);
    if (!runtime.ok()) continue;
    ContainerRecord r = rec;
    auto state = (*runtime)->State(r.id);
    if (state.ok() && state->status == "created") {
      r.started_at_ns = 0;  // it did not: it can still be started
    } else {
      r.state = ContainerState::kRunning;
      RefreshLocked(r);
    }
    settled.push_back(std::move(r));
  }
  for (auto& r : settled) {
    std::string id = r.id;
    Status s = CommitLocked(id, std::move(r));
    if (!s.ok()) spdlog::warn("event=container_save_failed id={} error=\"{}\"", id, s.message());
  }
}

Status ContainerManager::Save(const ContainerRecord& r) {
  std::lock_guard lock(mu_);
  return CommitLocked(r.id, r);
}

StatusOr<oci::OciRuntime*> ContainerManager::RuntimeFor(const std::string& handler) {
  // Records always name their handler; "" (older records) means the default.
  const std::string h =
      !handler.empty() || options_.handlers == nullptr ? handler : options_.handlers->DefaultName();
  auto it = runtimes_.find(h);
  if (it == runtimes_.end()) {
    return InvalidArgumentError(StrCat("unknown runtime handler \"", h, "\""));
  }
  return it->second;
}

StatusOr<ContainerRecord> ContainerManager::Create(const CreateRequest& req) {
  if (req.config.name.empty()) return InvalidArgumentError("container metadata needs a name");
  if (req.image.empty()) return InvalidArgumentError("container config needs an image");
  if (!req.config.stop_signal.empty()) {
    RETURN_IF_ERROR(Annotate(ParseSignal(req.config.stop_signal).status(), "stop_signal"));
  }
  ASSIGN_OR_RETURN(sandbox::SandboxRecord sb, sandboxes_->Get(req.sandbox_id));
  if (sb.state != sandbox::SandboxState::kReady) {
    return FailedPreconditionError(StrCat("pod sandbox ", sb.id, " is not ready"));
  }
  const std::string reserved = ReservedName(req.config, sb);
  // A kubelet retry of a create still in flight waits for it and gets its
  // result; a later create with a taken name is ALREADY_EXISTS.
  bool waited = false;
  auto name_held = name_locks_.Acquire(reserved, &waited);
  {
    std::lock_guard lock(mu_);
    if (auto it = names_.find(reserved); it != names_.end()) {
      if (waited) return containers_.at(it->second);
      return AlreadyExistsError(
          StrCat("container name ", reserved, " is reserved by ", it->second));
    }
  }
  return CreateLocked(req, sb);
}

StatusOr<ContainerRecord> ContainerManager::CreateLocked(const CreateRequest& req,
                                                         const sandbox::SandboxRecord& sb) {
  ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(sb.runtime_handler));
  // Right after berthd started, the handler's probe may still be running.
  oci::HandlerFeatures features;
  if (options_.handlers != nullptr) {
    ASSIGN_OR_RETURN(oci::HandlerState handler,
                     options_.handlers->WaitFor(runtime->handler_name(), std::chrono::seconds(60)));
    features = handler.probe.features;
  }
  PhaseTiming timing;
  // Held until the record is saved (where ImageUser sees it), and declared
  // before the rootfs so that a failed create unmounts first: a concurrent
  // RemoveImage never deletes layers this create mounts.
  image::ImageHold rootfs_hold;
  std::vector<image::ImageHold> volume_holds;
  auto found = images_->Use(req.image, &rootfs_hold);
  if (!found.ok()) {
    return NotFoundError(StrCat("image \"", req.image, "\" is not present; pull it first"));
  }
  const image::ImageRecord& img = *found;
  ASSIGN_OR_RETURN(image::ImageConfig img_config, images_->Config(img));

  // Plan (container/container_plan.h): every decision from plain values.
  ContainerPlanInputs in = PlanInputsFor(req, sb, img, img_config, images_->layers(),
                                         runtime->handler_name(), features, options_);
  ASSIGN_OR_RETURN(ContainerPlan plan, PlanContainer(in));
  ContainerRecord& r = plan.record;
  // CDI devices are resolved before anything is made, so that an unknown
  // device costs nothing; their edits go onto the spec once it is built.
  ASSIGN_OR_RETURN(
      cdi::ContainerEdits cdi_edits,
      cdi::Resolve(options_.cdi_spec_dirs,
                   cdi::RequestedDevices(plan.config.cdi_devices, plan.config.annotations)));

  // Execute (container/container_create.h): each step undoes itself if a
  // later one fails, in reverse order.
  ContainerRootfs rootfs(r, plan);
  RETURN_IF_ERROR(rootfs.Mount(img, images_->layers(), sb.userns_path));
  timing.Mark("rootfs");
  ContainerRootfsFacts facts;
  RETURN_IF_ERROR(rootfs.MountVolumes(*images_, sb.userns_path, facts, &volume_holds));
  if (plan.needs_target_pid_ns) {
    ASSIGN_OR_RETURN(facts.target_pid_ns_path,
                     TargetPidNamespace(plan.namespaces.target_id, sb.id));
  }
  RETURN_IF_ERROR(rootfs.ReadFacts(req.config, facts));
  timing.Mark("volumes");
  ASSIGN_OR_RETURN(ContainerSpecPlan spec_plan, PlanContainerSpec(plan, in, facts));
  if (const auto& clamp = spec_plan.notes.oom_score_adj_clamped) {
    spdlog::info("event=oom_score_adj_clamped container={} requested={} applied={}", r.id,
                 clamp->requested, clamp->applied);
  }
  if (Status s = cdi::ApplyEdits(cdi_edits, spec_plan.spec); !s.ok()) {
    return Annotate(s, StrCat("CDI devices of container ", r.name));
  }
  RETURN_IF_ERROR(WriteFileAtomic(fs::path(r.bundle) / "config.json", spec_plan.spec.dump(), 0600));
  if (!r.log_path.empty()) RETURN_IF_ERROR(MakeDirs(fs::path(r.log_path).parent_path(), 0755));
  timing.Mark("spec");

  ScopeGuard delete_runtime([&] { (void)runtime->Delete(r.id, true); });
  auto handle = monitor::SpawnMonitor(MonitorSpecFor(r, plan, *runtime, options_.monitor_binary));
  timing.Mark("monitor_and_runtime_create");
  if (!handle.ok()) {
    delete_runtime.Cancel();
    Status undo = runtime->Delete(r.id, true);
    if (undo.ok()) return Annotate(handle.status(), StrCat("create container ", r.name));
    if (KeepAsUnknown(r, ReservedName(req.config, sb), handle.status(), undo)) rootfs.Keep();
    return Status(handle.status().code(),
                  StrCat("create container ", r.name, ": ", handle.status().message(),
                         "; cleaning up failed too (", undo.message(), "): container ", r.id,
                         " is kept in state UNKNOWN until it is removed"));
  }
  r.pid = handle->container_pid;
  r.monitor_pid = handle->monitor_pid;
  r.state = ContainerState::kCreated;
  RETURN_IF_ERROR(Save(r));
  {
    std::lock_guard lock(mu_);
    names_[ReservedName(req.config, sb)] = r.id;
  }
  WatchBundle(r);
  timing.Mark("save");
  spdlog::debug("event=container_create_timing id={}{}", r.id, timing.text());
  delete_runtime.Cancel();
  rootfs.Keep();
  spdlog::info("event=container_created id={} name={} sandbox={} image={}", r.id, r.name, sb.id,
               img.id);
  return r;
}

// The runtime may still hold a process, a cgroup and state of a container
// whose create failed and whose runtime delete failed too. Keeping
// everything and listing it as UNKNOWN lets a RemoveContainer (the
// kubelet's, or berthctl rm) finish the cleanup instead of it leaking
// silently.
bool ContainerManager::KeepAsUnknown(ContainerRecord& r, const std::string& reserved_name,
                                     const Status& create_error, const Status& undo_error) {
  r.state = ContainerState::kUnknown;
  r.reason = "CreateError";
  r.message = StrCat(create_error.message(), "; cleanup failed: ", undo_error.message());
  r.finished_at_ns = NowNs();
  spdlog::error("event=container_create_rollback_failed id={} error=\"{}\"", r.id, r.message);
  if (!Save(r).ok()) return false;
  std::lock_guard lock(mu_);
  names_[reserved_name] = r.id;
  return true;
}

void ContainerManager::RefreshLocked(ContainerRecord& r) {
  if (r.state != ContainerState::kCreated && r.state != ContainerState::kRunning) return;
  auto exit = monitor::ReadExitFile(fs::path(r.bundle) / "exit");
  if (!exit.ok()) return;
  r.state = ContainerState::kExited;
  r.exit_code = exit->exit_code;
  r.finished_at_ns = exit->exit_time_ns;
  r.runtime_deleted = exit->runtime_deleted;
  if (exit->oom_killed) {
    // Monitors older than the OOM file only say so at exit.
    r.oom_kills = std::max<int64_t>(r.oom_kills, 1);
    r.reason = "OOMKilled";
  } else {
    r.reason = exit->exit_code == 0 ? "Completed" : "Error";
  }
}

Status ContainerManager::Start(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord r, Get(id));
  auto held = locks_.Acquire(r.id);
  ASSIGN_OR_RETURN(r, Get(r.id));
  if (r.state != ContainerState::kCreated) {
    return FailedPreconditionError(
        StrCat("container ", r.id, " is ", StateName(r.state), ", not CREATED"));
  }
  ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(r.runtime_handler));
  // Stamped before `start`: a short-lived container can exit (and the monitor
  // stamp its exit) before the runtime returns.
  const int64_t started_at = NowNs();
  // Persisted first, so that recovery can tell an interrupted start.
  r.started_at_ns = started_at;
  RETURN_IF_ERROR(Save(r));
  // A container that exits at once has its runtime state deleted by its
  // monitor, which takes this lock first: not while `start` still reads it.
  UniqueFd start_lock(::open((fs::path(r.bundle) / monitor::kRuntimeLockFile).c_str(),
                             O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (start_lock.get() >= 0) {
    while (::flock(start_lock.get(), LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  Status s = runtime->Start(r.id);
  start_lock.Reset();
  if (!s.ok()) {
    // The init still waits in the runtime's create, or (when `start` failed
    // late) already runs: either way it must not outlive the failed start.
    (void)runtime->Kill(r.id, SIGKILL, true);
    (void)WaitForExit(r, std::chrono::seconds(10));
    r.state = ContainerState::kExited;
    r.started_at_ns = 0;
    r.exit_code = 128;
    r.reason = "StartError";
    r.message = s.message();
    r.finished_at_ns = NowNs();
    (void)Save(r);
    return s;
  }
  r.state = ContainerState::kRunning;
  r.started_at_ns = started_at;
  RecordProcessIdentity(r);
  RefreshLocked(r);  // it may already have exited
  RETURN_IF_ERROR(Save(r));
  spdlog::info("event=container_started id={}", r.id);
  return OkStatus();
}

Status ContainerManager::WaitForExit(ContainerRecord& r, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // A killed container is usually gone within a few milliseconds: poll the
  // exit file often at first, then back off.
  auto pause = std::chrono::microseconds(500);
  for (;;) {
    RefreshLocked(r);
    if (r.state == ContainerState::kExited) return OkStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError(StrCat("container ", r.id, " did not exit in time"));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
}

// A signal straight to the init of a container with its own PID namespace
// (what `runtime kill` without --all does; after SIGKILL the kernel kills the
// rest of the namespace). Saves starting the runtime, a Go program, on
// every stop. The pidfd pins the process, and the
// exit file (written once the monitor has reaped the init) is checked after
// it is opened, so a recycled PID is never signalled.
bool ContainerManager::SignalInitDirectly(ContainerRecord& r, int signal) {
  if (!r.own_pid_ns || r.pid <= 0 || r.state != ContainerState::kRunning) return false;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, r.pid, 0));
  if (pidfd < 0) return false;
  UniqueFd hold(pidfd);
  RefreshLocked(r);
  if (r.state != ContainerState::kRunning) return true;  // already gone
  return ::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) == 0;
}

Status ContainerManager::Stop(const std::string& id, std::chrono::seconds timeout,
                              std::string signal_name) {
  auto got = Get(id);
  if (!got.ok()) {
    // CRI: "This call is idempotent, and must not return an error if the
    // container has already been stopped" -- also when it is gone (as
    // containerd 2 and CRI-O answer): the kubelet retries stops.
    if (got.status().code() == StatusCode::kNotFound) return OkStatus();
    return got.status();
  }
  ContainerRecord r = *got;
  auto held = locks_.Acquire(r.id);
  ASSIGN_OR_RETURN(r, Get(r.id));
  // Idempotent per the CRI spec: stopping a stopped container succeeds.
  if (r.state != ContainerState::kRunning && r.state != ContainerState::kCreated) return OkStatus();
  ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(r.runtime_handler));
  if (r.state == ContainerState::kCreated) {
    // Never started: its init waits in the runtime's create; kill it.
    (void)runtime->Kill(r.id, SIGKILL, false);
  } else if (timeout.count() > 0) {
    if (signal_name.empty()) signal_name = r.stop_signal.empty() ? "SIGTERM" : r.stop_signal;
    ASSIGN_OR_RETURN(int sig, ParseSignal(signal_name));
    Status s = SignalInitDirectly(r, sig) ? OkStatus() : runtime->Kill(r.id, sig, false);
    if (s.ok() || s.code() == StatusCode::kNotFound) {
      if (WaitForExit(r, timeout).ok()) return Save(r);
    }
  }
  if (SignalInitDirectly(r, SIGKILL)) {
    RETURN_IF_ERROR(WaitForExit(r, std::chrono::seconds(30)));
    RETURN_IF_ERROR(Save(r));
    spdlog::info("event=container_stopped id={} exit_code={}", r.id, r.exit_code);
    return OkStatus();
  }
  Status k = runtime->Kill(r.id, SIGKILL, true);
  if (!k.ok() && k.code() != StatusCode::kNotFound)
    spdlog::warn("event=kill_failed id={} error=\"{}\"", r.id, k.message());
  RETURN_IF_ERROR(WaitForExit(r, std::chrono::seconds(30)));
  RETURN_IF_ERROR(Save(r));
  spdlog::info("event=container_stopped id={} exit_code={}", r.id, r.exit_code);
  return OkStatus();
}

Status ContainerManager::Remove(const std::string& id) {
  auto last = std::chrono::steady_clock::now();
  std::string timing;
  auto mark = [&](const char* phase) {
    auto t = std::chrono::steady_clock::now();
    timing += fmt::format(" {}_ms={:.2f}", phase,
                          std::chrono::duration<double, std::milli>(t - last).count());
    last = t;
  };
  auto got = Get(id);
  if (!got.ok()) {
    if (got.status().code() == StatusCode::kNotFound) return OkStatus();  // idempotent
    return got.status();
  }
  ContainerRecord r = *got;
  mark("lookup");
  if (r.state == ContainerState::kRunning || r.state == ContainerState::kCreated) {
    RETURN_IF_ERROR(Stop(r.id, std::chrono::seconds(0)));
    mark("stop");
  }
  auto held = locks_.Acquire(r.id);
  mark("lock");
  auto now = GetImpl(r.id, true);
  if (!now.ok()) {
    // Removed by a concurrent call while this one waited for the lock.
    if (now.status().code() == StatusCode::kNotFound) return OkStatus();
    return now.status();
  }
  r = std::move(*now);
  mark("exit_file");
  // The monitor deleted the runtime's state when the container exited;
  // only containers it could not do that for (its delete failed, it was
  // killed, the create failed half way) need the runtime here.
  if (r.state != ContainerState::kExited || !r.runtime_deleted) {
    ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(r.runtime_handler));
    RETURN_IF_ERROR(runtime->Delete(r.id, true));
    mark("runtime_delete");
  }
  // Out of the mount table now; the overlay's teardown (a sync of the host
  // file system under its upper directory) runs on the trash worker.
  if (Status s = trash_->DetachMount(r.rootfs); !s.ok()) {
    return Annotate(s, StrCat("unmount rootfs of container ", r.id));
  }
  mark("unmount");
  RETURN_IF_ERROR(UnmountEntriesAndRemove(fs::path(r.bundle) / "volumes"));
  RETURN_IF_ERROR(UnmountEntriesAndRemove(fs::path(r.bundle) / "idmap" / "mounts"));
  mark("unmount_volumes");
  // Renamed away and deleted in the background: one rename each, whatever
  // the container wrote.
  RETURN_IF_ERROR(trash_->Discard(r.bundle));
  RETURN_IF_ERROR(trash_->Discard(r.layer_dir));
  mark("remove_dirs");
  // Not waited onto the disk: a record that a power loss brings back names an
  // exited container without a bundle, which Remove clears again at no harm
  // (as the kubelet's next garbage collection would).
  RETURN_IF_ERROR(db_->DeleteUnsynced(kBucket, r.id));
  mark("record");
  {
    std::lock_guard l(mu_);
    (void)CommitLocked(r.id, std::nullopt);  // publishes DELETED
    for (auto it = names_.begin(); it != names_.end();) {
      it = it->second == r.id ? names_.erase(it) : std::next(it);
    }
  }
  mark("forget");
  spdlog::debug("event=container_remove_timing id={}{}", r.id, timing);
  spdlog::info("event=container_removed id={}", r.id);
  return OkStatus();
}

StatusOr<ContainerRecord> ContainerManager::Get(const std::string& id) {
  return GetImpl(id, false);
}

bool ContainerManager::NeedsExitFileReadLocked(const ContainerRecord& r) const {
  return (r.state == ContainerState::kCreated || r.state == ContainerState::kRunning) &&
         !exit_watched_.contains(r.id);
}

StatusOr<ContainerRecord> ContainerManager::GetImpl(const std::string& id, bool read_exit_file) {
  std::lock_guard lock(mu_);
  ContainerRecord* found = nullptr;
  if (auto it = containers_.find(id); it != containers_.end()) {
    found = &it->second;
  } else if (!id.empty()) {
    for (auto& [k, r] : containers_) {
      if (k.starts_with(id)) {
        if (found) return InvalidArgumentError(StrCat("container id prefix ", id, " is ambiguous"));
        found = &r;
      }
    }
  }
  if (!found) return NotFoundError(StrCat("container ", id, " not found"));
  if (!read_exit_file && !NeedsExitFileReadLocked(*found)) return *found;
  ContainerRecord now = *found;
  RefreshLocked(now);
  if (now.state == found->state) return now;
  const std::string full_id = now.id;
  Status s = CommitLocked(full_id, now);
  if (!s.ok()) spdlog::warn("event=container_save_failed id={} error=\"{}\"", full_id, s.message());
  return containers_.at(full_id);
}

std::vector<ContainerRecord> ContainerManager::List(
    const std::function<bool(const ContainerRecord&)>& keep) {
  std::vector<ContainerRecord> out;
  std::vector<size_t> unwatched;  // positions in `out` whose exit file must be read
  {
    std::lock_guard lock(mu_);
    out.reserve(containers_.size());
    for (const auto& [k, r] : containers_) {
      if (keep && !keep(r)) continue;
      if (NeedsExitFileReadLocked(r)) unwatched.push_back(out.size());
      out.push_back(r);
    }
  }
  if (unwatched.empty()) return out;
  std::vector<bool> drop(out.size(), false);
  for (size_t i : unwatched) {
    auto r = GetImpl(out[i].id, true);
    if (!r.ok()) {
      drop[i] = true;  // removed meanwhile
      continue;
    }
    out[i] = std::move(*r);
    drop[i] = keep && !keep(out[i]);  // its state changed: ask again
  }
  std::vector<ContainerRecord> kept;
  kept.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!drop[i]) kept.push_back(std::move(out[i]));
  }
  return kept;
}

StatusOr<ContainerRecord> ContainerManager::GetRunning(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord r, Get(id));
  if (r.state != ContainerState::kRunning) {
    return FailedPreconditionError(StrCat("container ", r.id, " is not running"));
  }
  return r;
}

StatusOr<std::unique_ptr<oci::ExecProcess>> ContainerManager::Exec(const std::string& id,
                                                                   const ExecSpec& exec) {
  if (exec.cmd.empty()) return InvalidArgumentError("exec needs a command");
  ASSIGN_OR_RETURN(ContainerRecord r, GetRunning(id));
  ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(r.runtime_handler));
  ASSIGN_OR_RETURN(std::string spec_text, ReadFile(fs::path(r.bundle) / "config.json"));
  json spec = json::parse(spec_text, nullptr, false);
  if (spec.is_discarded()) return DataLossError(StrCat("config.json of ", r.id, " is corrupt"));
  // The container's own process settings (user, env, cwd, capabilities,
  // rlimits, no_new_privileges...), with the command and stdio of the exec.
  json process = spec["process"];
  process["args"] = exec.cmd;
  process["terminal"] = exec.io.terminal;
  process.erase("consoleSize");
  if (exec.io.terminal) {
    json env = process.value("env", json::array());
    bool has_term = false;
    for (const auto& e : env)
      has_term |= e.is_string() && e.get<std::string>().starts_with("TERM=");
    if (!has_term) env.push_back("TERM=xterm");
    process["env"] = env;
    if (exec.io.rows != 0 && exec.io.cols != 0) {
      process["consoleSize"] = {{"height", exec.io.rows}, {"width", exec.io.cols}};
    }
  }
  if (options_.native_exec) {
    auto native =
        options_.native_exec->Exec({r.id, r.pid, r.monitor_pid}, spec_text, process, exec.io);
    if (native.ok()) return native;
    if (native.status().code() != StatusCode::kUnimplemented) {
      // A native exec into an init that just died fails wherever it notices
      // (its /proc files gone: NOT_FOUND; setns: the init is gone).
      if (!StillRunning(r)) return ExitedDuringExec(r.id);
      return native;
    }
    spdlog::info("event=exec_native_fallback id={} reason=\"{} needs runc exec\"", r.id,
                 native.status().message());
  }
  auto started = runtime->Exec(r.id, process.dump(), exec.io);
  // The container exited (or was stopped) after GetRunning: the runtime's own
  // error ("container does not exist") says nothing a caller can act on.
  if (!started.ok() && !StillRunning(r)) return ExitedDuringExec(r.id);
  return started;
}

Status ContainerManager::ExitedDuringExec(const std::string& id) {
  return FailedPreconditionError(
      StrCat("container ", id, " is not running: it exited during the exec"));
}

bool ContainerManager::StillRunning(const ContainerRecord& r) {
  auto now = GetImpl(r.id, /*read_exit_file=*/true);
  if (!now.ok() || now->state != ContainerState::kRunning) return false;
  // The monitor may not have written the exit file yet: the init itself. A
  // pid recycled meanwhile answers "running", which keeps the runtime's error.
  return r.pid <= 0 || ::kill(r.pid, 0) == 0 || errno != ESRCH;
}

StatusOr<ProcessResult> ContainerManager::ExecSync(const std::string& id,
                                                   const std::vector<std::string>& cmd,
                                                   std::chrono::seconds timeout) {
  ExecSpec exec;
  exec.cmd = cmd;
  ASSIGN_OR_RETURN(std::unique_ptr<oci::ExecProcess> process, Exec(id, exec));
  std::optional<std::chrono::milliseconds> limit;
  if (timeout.count() > 0) limit = timeout;
  return oci::RunToCompletion(*process, limit);
}

StatusOr<monitor::AttachConnection> ContainerManager::Attach(const std::string& id, bool stdin,
                                                             bool stdout, bool stderr) {
  ASSIGN_OR_RETURN(ContainerRecord r, GetRunning(id));
  if (stdin && !r.stdin_open) {
    return FailedPreconditionError(StrCat("container ", r.id,
                                          " was not created with stdin open "
                                          "(ContainerConfig.stdin); attach without stdin"));
  }
  uint8_t flags = 0;
  if (stdin) flags |= monitor::kAttachStdin;
  if (stdout) flags |= monitor::kAttachStdout;
  if (stderr) flags |= monitor::kAttachStderr;
  auto conn = monitor::AttachConnection::Attach(fs::path(r.bundle) / monitor::kDefaultAttachSocket,
                                                flags, std::chrono::seconds(5));
  if (!conn.ok()) return Annotate(conn.status(), StrCat("attach to container ", r.id));
  return conn;
}

Status ContainerManager::UpdateResources(const std::string& id, const oci::Resources& resources) {
  ASSIGN_OR_RETURN(ContainerRecord r, Get(id));
  auto held = locks_.Acquire(r.id);
  ASSIGN_OR_RETURN(std::string spec_text, ReadFile(fs::path(r.bundle) / "config.json"));
  ASSIGN_OR_RETURN(json res, oci::BuildResourcesUpdate(resources, r.name, options_.host));
  if (r.state == ContainerState::kRunning || r.state == ContainerState::kCreated) {
    ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(r.runtime_handler));
    RETURN_IF_ERROR(runtime->Update(r.id, res.dump()));
  }
  json spec = json::parse(spec_text, nullptr, false);
  if (!spec.is_discarded()) {
    for (auto& [k, v] : res.items()) spec["linux"]["resources"][k] = v;
    RETURN_IF_ERROR(WriteFileAtomic(fs::path(r.bundle) / "config.json", spec.dump(), 0600));
  }
  r.resources = resources;
  return Save(r);
}

Status ContainerManager::ReopenLog(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord r, Get(id));
  if (r.state != ContainerState::kRunning) {
    return FailedPreconditionError(StrCat("container ", r.id, " is not running"));
  }
  return monitor::ReopenContainerLog(fs::path(r.bundle) / "attach", std::chrono::seconds(5));
}

void ContainerManager::Visit(const std::function<bool(const ContainerRecord&)>& keep,
                             const std::function<void(const ContainerRecord&)>& visit) {
  std::vector<std::string> unwatched;  // whose exit file must be read first
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, r] : containers_) {
      if (keep && !keep(r)) continue;
      if (NeedsExitFileReadLocked(r)) {
        unwatched.push_back(k);
      } else {
        visit(r);
      }
    }
  }
  for (const std::string& id : unwatched) {
    auto r = GetImpl(id, true);
    if (!r.ok()) continue;            // removed meanwhile
    if (keep && !keep(*r)) continue;  // its state changed: ask again
    visit(*r);
  }
}

std::vector<ContainerRecord> ContainerManager::ListInSandbox(const std::string& sandbox_id) {
  return List([&](const ContainerRecord& r) { return r.sandbox_id == sandbox_id; });
}

std::map<ContainerState, int> ContainerManager::CountByState() {
  std::map<ContainerState, int> out;
  std::lock_guard lock(mu_);
  for (const auto& [k, r] : containers_) ++out[r.state];
  return out;
}

int ContainerManager::LiveMonitors() {
  std::vector<int> pids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, r] : containers_) {
      if ((r.state == ContainerState::kCreated || r.state == ContainerState::kRunning) &&
          r.monitor_pid > 0) {
        pids.push_back(r.monitor_pid);
      }
    }
  }
  int alive = 0;
  for (int pid : pids) alive += ::kill(pid, 0) == 0 ? 1 : 0;
  return alive;
}

Status ContainerManager::Checkpoint(const std::string& id, const std::string& location) {
  ASSIGN_OR_RETURN(ContainerRecord r, GetRunning(id));
  auto held = locks_.Acquire(r.id);
  ASSIGN_OR_RETURN(r, GetRunning(r.id));
  ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(r.runtime_handler));
  CheckpointRequest req;
  req.container_id = r.id;
  req.runtime_binary = runtime->binary();
  req.runtime_args = {"--root", runtime->state_root()};
  req.runtime_args.insert(req.runtime_args.end(), runtime->global_args().begin(),
                          runtime->global_args().end());
  req.bundle = r.bundle;
  req.record_json = r.ToJson();
  req.work_dir = fs::path(r.bundle) / "checkpoint-work";
  req.location = location;
  req.rootfs_upper = fs::path(r.layer_dir) / "upper";
  req.criu_compat_library = options_.criu_compat_library;
  RETURN_IF_ERROR(WriteCheckpoint(req));
  spdlog::info("event=container_checkpointed id={} location={}", r.id, location);
  return OkStatus();
}

std::string ContainerManager::ImageUser(const std::string& image_id) {
  std::lock_guard lock(mu_);
  for (const auto& [id, r] : containers_) {
    if (r.image_id == image_id) return id;
    for (const auto& m : r.mounts) {
      if (m.image_id == image_id) return id;
    }
  }
  return "";
}

StatusOr<std::string> ContainerManager::SpecJson(const std::string& id) {
  ASSIGN_OR_RETURN(ContainerRecord r, Get(id));
  return ReadFile(fs::path(r.bundle) / "config.json");
}

}  // namespace berth::container
