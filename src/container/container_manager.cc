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
#include <set>
#include <thread>

#include "cdi/cdi_registry.h"
#include "common/fs.h"
#include "common/proc.h"
#include "common/safe_path.h"
#include "container/checkpoint.h"
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

ContainerState StateFromName(const std::string& s) {
  if (s == "CREATED") return ContainerState::kCreated;
  if (s == "RUNNING") return ContainerState::kRunning;
  if (s == "EXITED") return ContainerState::kExited;
  return ContainerState::kUnknown;
}

json ResourcesJson(const oci::Resources& r) {
  json h = json::array();
  for (const auto& l : r.hugepage_limits)
    h.push_back({{"page_size", l.page_size}, {"limit", l.limit}});
  json j{{"cpu_period", r.cpu_period},
         {"cpu_quota", r.cpu_quota},
         {"cpu_shares", r.cpu_shares},
         {"memory_limit_in_bytes", r.memory_limit_in_bytes},
         {"cpuset_cpus", r.cpuset_cpus},
         {"cpuset_mems", r.cpuset_mems},
         {"hugepage_limits", h},
         {"unified", r.unified},
         {"memory_swap_limit_in_bytes", r.memory_swap_limit_in_bytes}};
  if (r.oom_score_adj) j["oom_score_adj"] = *r.oom_score_adj;
  return j;
}

oci::Resources ResourcesFromJson(const json& j) {
  oci::Resources r;
  r.cpu_period = j.value("cpu_period", int64_t{0});
  r.cpu_quota = j.value("cpu_quota", int64_t{0});
  r.cpu_shares = j.value("cpu_shares", int64_t{0});
  r.memory_limit_in_bytes = j.value("memory_limit_in_bytes", int64_t{0});
  r.cpuset_cpus = j.value("cpuset_cpus", "");
  r.cpuset_mems = j.value("cpuset_mems", "");
  for (const auto& h : j.value("hugepage_limits", json::array())) {
    r.hugepage_limits.push_back({h.at("page_size"), h.at("limit")});
  }
  r.unified = j.value("unified", std::map<std::string, std::string>{});
  r.memory_swap_limit_in_bytes = j.value("memory_swap_limit_in_bytes", int64_t{0});
  if (j.contains("oom_score_adj")) r.oom_score_adj = j["oom_score_adj"].get<int64_t>();
  return r;
}

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

std::string ContainerRecord::ToJson() const {
  json mj = json::array();
  for (const auto& m : mounts) {
    json e{{"container_path", m.container_path},
           {"host_path", m.host_path},
           {"readonly", m.readonly},
           {"propagation", m.propagation}};
    if (!m.image.empty()) {
      e["image"] = m.image;
      e["image_id"] = m.image_id;
      e["image_sub_path"] = m.image_sub_path;
    }
    mj.push_back(std::move(e));
  }
  return json{{"id", id},
              {"sandbox_id", sandbox_id},
              {"name", name},
              {"attempt", attempt},
              {"labels", labels},
              {"annotations", annotations},
              {"image", image},
              {"image_id", image_id},
              {"image_ref", image_ref},
              {"log_path", log_path},
              {"runtime_handler", runtime_handler},
              {"stop_signal", stop_signal},
              {"mounts", mj},
              {"resources", ResourcesJson(resources)},
              {"tty", tty},
              {"stdin_open", stdin_open},
              {"stdin_once", stdin_once},
              {"state", StateName(state)},
              {"created_at_ns", created_at_ns},
              {"started_at_ns", started_at_ns},
              {"finished_at_ns", finished_at_ns},
              {"exit_code", exit_code},
              {"reason", reason},
              {"message", message},
              {"pid", pid},
              {"monitor_pid", monitor_pid},
              {"own_pid_ns", own_pid_ns},
              {"bundle", bundle},
              {"rootfs", rootfs},
              {"layer_dir", layer_dir},
              {"uid", uid},
              {"username", username},
              {"gid", gid},
              {"supplemental_groups", supplemental_groups},
              {"oom_kills", oom_kills},
              {"runtime_deleted", runtime_deleted}}
      .dump();
}

StatusOr<ContainerRecord> ContainerRecord::FromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ContainerRecord r;
    r.id = j.at("id");
    r.sandbox_id = j.at("sandbox_id");
    r.name = j.at("name");
    r.attempt = j.at("attempt");
    r.labels = j.at("labels").get<std::map<std::string, std::string>>();
    r.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
    r.image = j.at("image");
    r.image_id = j.at("image_id");
    r.image_ref = j.at("image_ref");
    r.log_path = j.at("log_path");
    r.runtime_handler = j.at("runtime_handler");
    r.stop_signal = j.at("stop_signal");
    for (const auto& m : j.at("mounts")) {
      r.mounts.push_back({m.at("container_path"), m.at("host_path"), m.at("readonly"),
                          m.at("propagation"), m.value("image", ""), m.value("image_id", ""),
                          m.value("image_sub_path", "")});
    }
    r.resources = ResourcesFromJson(j.at("resources"));
    r.tty = j.at("tty");
    r.stdin_open = j.at("stdin_open");
    r.stdin_once = j.at("stdin_once");
    r.state = StateFromName(j.at("state"));
    r.created_at_ns = j.at("created_at_ns");
    r.started_at_ns = j.at("started_at_ns");
    r.finished_at_ns = j.at("finished_at_ns");
    r.exit_code = j.at("exit_code");
    r.reason = j.at("reason");
    r.message = j.at("message");
    r.pid = j.at("pid");
    r.monitor_pid = j.at("monitor_pid");
    r.own_pid_ns = j.value("own_pid_ns", false);  // absent in records of berth 0.1.0
    r.bundle = j.at("bundle");
    r.rootfs = j.at("rootfs");
    r.layer_dir = j.at("layer_dir");
    r.uid = j.at("uid");
    r.username = j.at("username");
    // Absent in records of berth 0.1.0.
    r.gid = j.value("gid", 0u);
    r.supplemental_groups = j.value("supplemental_groups", std::vector<uint32_t>{});
    r.oom_kills = j.value("oom_kills", int64_t{0});         // absent in records of berth 0.1.0
    r.runtime_deleted = j.value("runtime_deleted", false);  // absent in older records
    return r;
  } catch (const json::exception& e) {
    return DataLossError(StrCat("corrupt container record: ", e.what()));
  }
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
  // Where create time goes, logged at debug level.
  auto last = std::chrono::steady_clock::now();
  std::string timing;
  auto mark = [&](const char* phase) {
    auto now = std::chrono::steady_clock::now();
    timing += fmt::format(" {}_ms={:.2f}", phase,
                          std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  };
  auto found = images_->Find(req.image);
  if (!found.ok()) {
    return NotFoundError(StrCat("image \"", req.image, "\" is not present; pull it first"));
  }
  const image::ImageRecord& img = *found;
  ASSIGN_OR_RETURN(image::ImageConfig img_config, images_->Config(img));

  // Bind mount sources must exist; a symlinked source is resolved here so the
  // runtime mounts what the path points at on the host.
  oci::ContainerConfig config = req.config;
  for (auto& m : config.mounts) {
    if (!m.image.empty()) continue;  // an image volume, mounted below
    if (m.host_path.empty() || m.host_path[0] != '/') {
      return InvalidArgumentError(
          StrCat("mount ", m.container_path, ": host path \"", m.host_path, "\" is not absolute"));
    }
    std::error_code ec;
    fs::path real = fs::canonical(m.host_path, ec);
    if (ec) {
      return NotFoundError(StrCat("mount ", m.container_path, ": host path ", m.host_path,
                                  " does not exist or cannot be resolved: ", ec.message()));
    }
    m.host_path = real.string();
  }

  // CDI devices are resolved before anything is made, so that an unknown
  // device costs nothing; their edits go onto the spec once it is built.
  ASSIGN_OR_RETURN(cdi::ContainerEdits cdi_edits,
                   cdi::Resolve(options_.cdi_spec_dirs,
                                cdi::RequestedDevices(config.cdi_devices, config.annotations)));

  ContainerRecord r;
  r.id = RandomHex(32);
  r.sandbox_id = sb.id;
  r.name = req.config.name;
  r.attempt = req.config.attempt;
  r.labels = req.config.labels;
  r.annotations = req.config.annotations;
  r.image = req.image;
  r.image_id = img.id;
  r.image_ref = img.repo_digests.empty() ? img.id : img.repo_digests.front();
  r.runtime_handler = runtime->handler_name();
  r.stop_signal = EffectiveStopSignal(config.stop_signal, img_config.config.stop_signal);
  r.resources = req.config.resources;
  r.tty = req.config.tty;
  r.stdin_open = req.config.stdin;
  r.stdin_once = req.config.stdin_once;
  if (!req.log_path.empty()) {
    if (sb.config.log_directory.empty()) {
      return InvalidArgumentError("log_path is set but the pod sandbox has no log_directory");
    }
    r.log_path = (fs::path(sb.config.log_directory) / req.log_path).lexically_normal().string();
  }
  r.created_at_ns = NowNs();
  r.bundle = (options_.state_dir / r.id).string();
  r.rootfs = (fs::path(r.bundle) / "rootfs").string();
  r.layer_dir = (options_.root_dir / r.id).string();

  // Rollback, in reverse order of acquisition; cancelled at the end.
  ScopeGuard remove_dirs([&] {
    (void)RemoveAll(r.bundle);
    (void)RemoveAll(r.layer_dir);
  });
  RETURN_IF_ERROR(MakeDirs(fs::path(r.layer_dir) / "upper", 0755));
  RETURN_IF_ERROR(MakeDirs(fs::path(r.layer_dir) / "work", 0700));
  RETURN_IF_ERROR(MakeDirs(r.rootfs, 0755));
  for (const auto& d : img.diff_ids) {
    if (!images_->layers().Has(d)) {
      return FailedPreconditionError(
          StrCat("layer ", d.str(), " of image ", img.id, " is missing; pull the image again"));
    }
  }
  std::string opts = StrCat("lowerdir=", images_->layers().LowerDirOption(img.diff_ids),
                            ",upperdir=", r.layer_dir, "/upper,workdir=", r.layer_dir, "/work");
  if (img.diff_ids.empty())
    return FailedPreconditionError(StrCat("image ", img.id, " has no layers"));
  mark("image");
  if (!sb.userns_path.empty()) {
    // A pod with its own user namespace: ID-mapped layers (container/userns.h).
    std::vector<fs::path> lowers;
    for (auto it = img.diff_ids.rbegin(); it != img.diff_ids.rend(); ++it) {
      lowers.push_back(images_->layers().LayerDir(*it));
    }
    const oci::SandboxInfo info = sb.Info();
    const int64_t root_uid = MapToHost(info.uid_mappings, 0);
    const int64_t root_gid = MapToHost(info.gid_mappings, 0);
    if (root_uid < 0 || root_gid < 0) {
      return InvalidArgumentError(
          StrCat("the user namespace of pod sandbox ", sb.id, " does not map container ID 0"));
    }
    Status mounted = MountIdmappedOverlay(lowers, r.layer_dir, static_cast<uid_t>(root_uid),
                                          static_cast<gid_t>(root_gid), r.rootfs, 0, sb.userns_path,
                                          fs::path(r.bundle) / "idmap" / "rootfs");
    if (!mounted.ok()) return Annotate(mounted, StrCat("rootfs of container ", r.id));
  } else if (::mount("overlay", r.rootfs.c_str(), "overlay", 0, opts.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("mount rootfs of container ", r.id));
  }
  ScopeGuard umount_rootfs([&] { ::umount2(r.rootfs.c_str(), MNT_DETACH); });
  ScopeGuard umount_volumes([&] {
    (void)UnmountEntriesAndRemove(fs::path(r.bundle) / "volumes");
    (void)UnmountEntriesAndRemove(fs::path(r.bundle) / "idmap" / "mounts");
  });
  ASSIGN_OR_RETURN(
      std::vector<std::string> volume_images,
      MountImageVolumes(*images_, config.mounts, fs::path(r.bundle) / "volumes", sb.userns_path));
  if (!sb.userns_path.empty()) {
    RETURN_IF_ERROR(
        IdmapBindMounts(config.mounts, sb.userns_path, fs::path(r.bundle) / "idmap" / "mounts"));
  }
  for (size_t i = 0; i < config.mounts.size(); ++i) {
    const oci::Mount& m = config.mounts[i];
    // Bind mounts as the CRI gave them; image volumes with what berthd mounted.
    const std::string& host_path = m.image.empty() ? req.config.mounts[i].host_path : m.host_path;
    r.mounts.push_back({m.container_path, host_path, m.readonly, static_cast<int>(m.propagation),
                        m.image, volume_images[i], m.image_sub_path});
  }

  oci::SpecInputs in;
  in.container_id = r.id;
  in.rootfs_path = r.rootfs;
  in.image_name = req.image;
  in.container = config;
  // Network and IPC belong to the pod: a container cannot choose differently
  // (crictl leaves the container's options at their POD default even in a
  // host-network pod). A container asking for the pod's PID namespace in a
  // pod that has none gets its own, as in CRI-O.
  auto& ns = in.container.security_context.namespace_options;
  ns.network = sb.config.network_mode == oci::NamespaceMode::kNode ? oci::NamespaceMode::kNode
                                                                   : oci::NamespaceMode::kPod;
  ns.ipc = sb.config.ipc_mode == oci::NamespaceMode::kNode ? oci::NamespaceMode::kNode
                                                           : oci::NamespaceMode::kPod;
  if (ns.pid == oci::NamespaceMode::kPod && sb.pid_ns_path.empty()) {
    ns.pid = sb.config.pid_mode == oci::NamespaceMode::kNode ? oci::NamespaceMode::kNode
                                                             : oci::NamespaceMode::kContainer;
  }
  // Before the TARGET lookup below, which adds to the pod's info.
  in.sandbox = sb.Info();
  if (ns.pid == oci::NamespaceMode::kTarget) {
    ASSIGN_OR_RETURN(in.sandbox.target_pid_ns_paths[ns.target_id],
                     TargetPidNamespace(ns.target_id, sb.id));
  }
  in.image.user = img_config.config.user;
  in.image.env = img_config.config.env;
  in.image.entrypoint = img_config.config.entrypoint;
  in.image.cmd = img_config.config.cmd;
  in.image.working_dir = img_config.config.working_dir;
  in.image.stop_signal = img_config.config.stop_signal;
  in.host = options_.host;
  in.cgroup_driver = options_.cgroup_driver;
  in.runtime_supports_rro = features.recursive_read_only_mounts;
  mark("rootfs");
  auto passwd = ReadFileInRoot(r.rootfs, "etc/passwd");
  if (passwd.ok()) in.etc_passwd = *passwd;
  auto group = ReadFileInRoot(r.rootfs, "etc/group");
  if (group.ok()) in.etc_group = *group;
  if (auto path = oci::SeccompLocalhostPath(req.config.security_context)) {
    auto content = ReadFile(*path);
    if (!content.ok()) {
      return Annotate(content.status(), StrCat("seccomp profile of container ", r.name));
    }
    in.seccomp_localhost_content = *content;
  }
  oci::SpecNotes notes;
  ASSIGN_OR_RETURN(nlohmann::json spec, oci::BuildSpec(in, &notes));
  if (notes.oom_score_adj_clamped) {
    spdlog::info("event=oom_score_adj_clamped container={} requested={} applied={}", r.id,
                 notes.oom_score_adj_clamped->requested, notes.oom_score_adj_clamped->applied);
  }
  if (Status s = cdi::ApplyEdits(cdi_edits, spec); !s.ok()) {
    return Annotate(s, StrCat("CDI devices of container ", r.name));
  }
  r.uid = spec["process"]["user"].value("uid", 0u);
  r.gid = spec["process"]["user"].value("gid", 0u);
  r.supplemental_groups = spec["process"]["user"].value("additionalGids", std::vector<uint32_t>{});
  for (const auto& ns : spec["linux"].value("namespaces", json::array())) {
    if (ns.value("type", "") == "pid" && !ns.contains("path")) r.own_pid_ns = true;
  }
  RETURN_IF_ERROR(WriteFileAtomic(fs::path(r.bundle) / "config.json", spec.dump(), 0600));
  if (!r.log_path.empty()) RETURN_IF_ERROR(MakeDirs(fs::path(r.log_path).parent_path(), 0755));

  monitor::MonitorSpec ms;
  ms.monitor_binary = options_.monitor_binary;
  ms.container_id = r.id;
  ms.bundle = r.bundle;
  ms.runtime = runtime->binary();
  ms.runtime_root = runtime->state_root();
  ms.runtime_args = runtime->global_args();
  ms.log_path = r.log_path.empty() ? (fs::path(r.bundle) / "console.log").string() : r.log_path;
  ms.terminal = r.tty;
  ms.stdin_open = r.stdin_open;
  ms.stdin_once = r.stdin_once;
  ms.monitor_log = fs::path(r.bundle) / "monitor.log";
  ms.delete_on_exit = true;  // RemoveContainer then runs no runtime
  ScopeGuard delete_runtime([&] { (void)runtime->Delete(r.id, true); });
  mark("spec");
  auto handle = monitor::SpawnMonitor(ms);
  mark("monitor_and_runtime_create");
  if (!handle.ok()) {
    delete_runtime.Cancel();
    Status undo = runtime->Delete(r.id, true);
    if (undo.ok()) return Annotate(handle.status(), StrCat("create container ", r.name));
    // The runtime may still hold a process, a cgroup and state of this
    // container. Keep everything and list it as UNKNOWN, so that a
    // RemoveContainer (the kubelet's, or berthctl rm) finishes the cleanup
    // instead of it leaking silently.
    r.state = ContainerState::kUnknown;
    r.reason = "CreateError";
    r.message = StrCat(handle.status().message(), "; cleanup failed: ", undo.message());
    r.finished_at_ns = NowNs();
    if (Save(r).ok()) {
      std::lock_guard lock(mu_);
      names_[ReservedName(req.config, sb)] = r.id;
      umount_volumes.Cancel();
      umount_rootfs.Cancel();
      remove_dirs.Cancel();
    }
    spdlog::error("event=container_create_rollback_failed id={} error=\"{}\"", r.id, r.message);
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
  mark("save");
  spdlog::debug("event=container_create_timing id={}{}", r.id, timing);
  delete_runtime.Cancel();
  umount_volumes.Cancel();
  umount_rootfs.Cancel();
  remove_dirs.Cancel();
  spdlog::info("event=container_created id={} name={} sandbox={} image={}", r.id, r.name, sb.id,
               img.id);
  return r;
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
  auto got = Get(id);
  if (!got.ok()) {
    if (got.status().code() == StatusCode::kNotFound) return OkStatus();  // idempotent
    return got.status();
  }
  ContainerRecord r = *got;
  if (r.state == ContainerState::kRunning || r.state == ContainerState::kCreated) {
    RETURN_IF_ERROR(Stop(r.id, std::chrono::seconds(0)));
  }
  auto held = locks_.Acquire(r.id);
  auto last = std::chrono::steady_clock::now();
  std::string timing;
  auto mark = [&](const char* phase) {
    auto t = std::chrono::steady_clock::now();
    timing += fmt::format(" {}_ms={:.2f}", phase,
                          std::chrono::duration<double, std::milli>(t - last).count());
    last = t;
  };
  auto now = GetImpl(r.id, true);
  if (!now.ok()) {
    // Removed by a concurrent call while this one waited for the lock.
    if (now.status().code() == StatusCode::kNotFound) return OkStatus();
    return now.status();
  }
  r = std::move(*now);
  // The monitor deleted the runtime's state when the container exited;
  // only containers it could not do that for (its delete failed, it was
  // killed, the create failed half way) need the runtime here.
  if (r.state != ContainerState::kExited || !r.runtime_deleted) {
    ASSIGN_OR_RETURN(oci::OciRuntime * runtime, RuntimeFor(r.runtime_handler));
    RETURN_IF_ERROR(runtime->Delete(r.id, true));
    mark("runtime_delete");
  }
  if (::umount2(r.rootfs.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return ErrnoStatus(errno, StrCat("unmount rootfs of container ", r.id));
  }
  RETURN_IF_ERROR(UnmountEntriesAndRemove(fs::path(r.bundle) / "volumes"));
  RETURN_IF_ERROR(UnmountEntriesAndRemove(fs::path(r.bundle) / "idmap" / "mounts"));
  mark("unmount");
  // Renamed away and deleted in the background: one rename each, whatever
  // the container wrote.
  RETURN_IF_ERROR(trash_->Discard(r.bundle));
  RETURN_IF_ERROR(trash_->Discard(r.layer_dir));
  mark("remove_dirs");
  RETURN_IF_ERROR(db_->Delete(kBucket, r.id));
  mark("record");
  {
    std::lock_guard l(mu_);
    (void)CommitLocked(r.id, std::nullopt);  // publishes DELETED
    for (auto it = names_.begin(); it != names_.end();) {
      it = it->second == r.id ? names_.erase(it) : std::next(it);
    }
  }
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
    if (native.ok() || native.status().code() != StatusCode::kUnimplemented) return native;
    spdlog::info("event=exec_native_fallback id={} reason=\"{} needs runc exec\"", r.id,
                 native.status().message());
  }
  return runtime->Exec(r.id, process.dump(), exec.io);
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
