// Containers on top of the OCI runtime driver, the monitor and the image
// layers: create (rootfs overlay, OCI spec, monitor + runtime create), start,
// stop (signal, grace period, SIGKILL), remove, status, exec. Records are kept
// in the metadata store; a container's exit is read from the monitor's exit
// file, so exits that happen while berthd is down are not lost.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/keyed_mutex.h"
#include "common/status.h"
#include "container/bundle_watcher.h"
#include "container/deferred_remover.h"
#include "events/event_bus.h"
#include "image/image_service.h"
#include "monitor/client.h"
#include "oci/container_config.h"
#include "oci/exec_process.h"
#include "oci/handler_registry.h"
#include "oci/native_exec.h"
#include "oci/oci_runtime.h"
#include "oci/runtime_probe.h"
#include "oci/spec_builder.h"
#include "sandbox/sandbox_manager.h"
#include "store/metadata_store.h"

namespace berth::container {

enum class ContainerState { kCreated, kRunning, kExited, kUnknown };

struct MountInfo {
  std::string container_path, host_path;
  bool readonly = false;
  int propagation = 0;  // 0 private, 1 host-to-container, 2 bidirectional (CRI numbering)
  // Image volumes: the image as asked for, its id, and the sub path.
  std::string image{}, image_id{}, image_sub_path{};
};

struct ContainerRecord {
  std::string id, sandbox_id;
  std::string name;  // metadata.name
  uint32_t attempt = 0;
  std::map<std::string, std::string> labels, annotations;
  std::string image;      // as the user asked for it (ImageSpec.image)
  std::string image_id;   // sha256:<config digest>
  std::string image_ref;  // a repo digest, or the id
  std::string log_path;   // absolute
  std::string runtime_handler;
  std::string stop_signal;  // from the image config; the CRI's own comes per request
  std::vector<MountInfo> mounts;
  oci::Resources resources;
  bool tty = false, stdin_open = false, stdin_once = false;
  ContainerState state = ContainerState::kCreated;
  int64_t created_at_ns = 0, started_at_ns = 0, finished_at_ns = 0;
  int exit_code = 0;
  std::string reason, message;
  int pid = 0;
  int monitor_pid = 0;
  // The container's init is the init of a PID namespace of its own: killing
  // it kills every process of the container.
  bool own_pid_ns = false;
  std::string bundle;     // <state>/containers/<id>: config.json, rootfs/, exit, attach
  std::string rootfs;     // overlay mount point
  std::string layer_dir;  // <root>/containers/<id>: upper/, work/
  uint32_t uid = 0;
  std::string username;
  // The gid and supplementary groups the init runs with: from the spec at
  // create, from /proc/<pid>/status once it started (ContainerStatus.user).
  uint32_t gid = 0;
  std::vector<uint32_t> supplemental_groups;
  // OOM kills in the container's memory cgroup so far, as berthd last read
  // them from the monitor's OOM file.
  int64_t oom_kills = 0;
  // berth-monitor had the runtime delete its state (cgroups, state dir) when
  // the container exited, so RemoveContainer runs no runtime (the exit file's
  // runtime_deleted).
  bool runtime_deleted = false;

  std::string ToJson() const;
  static StatusOr<ContainerRecord> FromJson(std::string_view text);
};

// A container or pod lifecycle event (CRI GetContainerEvents), with the pod
// as it was right after the event: what the kubelet's Evented PLEG keeps as
// the pod's status.
enum class LifecycleEventType { kCreated, kStarted, kStopped, kDeleted };
struct LifecycleEvent {
  std::string id;  // the container, or the pod sandbox for the pod's own events
  std::string sandbox_id;
  LifecycleEventType type = LifecycleEventType::kCreated;
  int64_t at_ns = 0;                              // when it was published
  std::optional<sandbox::SandboxRecord> sandbox;  // the pod; nullopt if it was not found
  std::vector<ContainerRecord> containers;        // the pod's containers
};
using LifecycleEventBus = events::EventBus<LifecycleEvent>;

// The events that a container record's change from `before` to `after`
// means (null: absent). A container that started and exited between two
// looks gets both STARTED and STOPPED.
std::vector<LifecycleEventType> ContainerTransitionEvents(const ContainerRecord* before,
                                                          const ContainerRecord* after);

struct CreateRequest {
  std::string sandbox_id;
  oci::ContainerConfig config;
  std::string image;     // ImageSpec.image
  std::string log_path;  // relative to the pod's log directory
};

// A command to run in a running container (exec).
struct ExecSpec {
  std::vector<std::string> cmd;
  oci::ExecIo io;
};

struct ContainerManagerOptions {
  std::filesystem::path root_dir;   // <root>/containers (writable layers)
  std::filesystem::path state_dir;  // <state>/containers (bundles)
  std::filesystem::path monitor_binary;
  // libberth-criu-compat.so, preloaded into CRIU 3.17 on Linux 6.13+
  // (container/checkpoint.h); empty when not found.
  std::string criu_compat_library;
  oci::CgroupDriver cgroup_driver = oci::CgroupDriver::kCgroupfs;
  oci::HostCaps host;
  // CDI spec directories, in rising priority (cdi.spec_dirs).
  std::vector<std::string> cdi_spec_dirs;
  // The runtime handlers and what each supports, from its start-up probe,
  // which may still run when a create comes (it then waits). Not owned.
  const oci::HandlerRegistry* handlers = nullptr;
  // Where container and pod lifecycle events go; may be null. Must outlive
  // the manager.
  LifecycleEventBus* events = nullptr;
  // runtime.exec_mode "native": exec without a runtime process (falls back
  // to `runc exec` for what it cannot apply); null: always the runtime's exec.
  std::shared_ptr<oci::NativeExecutor> native_exec;
};

// Thread-safe; operations on one container are serialised.
//
// Every change of a container's record goes through one place (Commit),
// which publishes the lifecycle events the change means, in the order the
// changes happen. Exits and OOM kills are noticed without any call: a
// BundleWatcher sees the monitor rename its exit and OOM files into the
// bundle. The manager also publishes the pods' own events (it registers as
// the SandboxManager's observer), since an event carries the statuses of the
// pod's containers.
class ContainerManager {
 public:
  ~ContainerManager();
  static StatusOr<std::unique_ptr<ContainerManager>> Open(
      ContainerManagerOptions options, store::MetadataStore* db, image::ImageService* images,
      sandbox::SandboxManager* sandboxes, std::map<std::string, oci::OciRuntime*> runtimes);

  StatusOr<ContainerRecord> Create(const CreateRequest& req);
  Status Start(const std::string& id);
  // Idempotent, also for an unknown id. `signal_name` empty: the
  // container's stop signal (its config's, else its image's), else SIGTERM.
  Status Stop(const std::string& id, std::chrono::seconds timeout, std::string signal_name = "");
  // Idempotent; a running container is killed first.
  Status Remove(const std::string& id);
  // The pod sandbox `sandbox_id` (id or unique prefix) with its containers:
  // StopPod stops every container of the pod without a grace period, then
  // the pod; RemovePod removes them (running ones are killed), then the pod.
  // Both idempotent (CRI spec), also for an unknown pod. (pod_cascade.cc)
  Status StopPod(const std::string& sandbox_id);
  Status RemovePod(const std::string& sandbox_id);
  // From memory: the exit of a container whose bundle is watched arrives by
  // itself (BundleWatcher), so only containers without a watch have their
  // exit file read here.
  StatusOr<ContainerRecord> Get(const std::string& id_or_prefix);
  // All containers, or those `keep` accepts (called with the manager's lock
  // held: it must not call back into the manager). From memory, as Get.
  std::vector<ContainerRecord> List(
      const std::function<bool(const ContainerRecord&)>& keep = nullptr);
  // As List, without copying: `visit` sees each record `keep` accepts, most
  // with the manager's lock held (it must be quick and must not call back
  // into the manager); the few whose exit file must be read are visited
  // after the lock is released, refreshed. For ListContainers, whose cost
  // with a thousand containers was mostly these copies.
  void Visit(const std::function<bool(const ContainerRecord&)>& keep,
             const std::function<void(const ContainerRecord&)>& visit);
  // The container, FAILED_PRECONDITION unless it is running.
  StatusOr<ContainerRecord> GetRunning(const std::string& id_or_prefix);
  // Starts exec.cmd in the running container, with the container's user,
  // environment (plus TERM=xterm with a terminal, as containerd does),
  // working directory and security settings. The caller owns the process:
  // dropping it kills the process.
  StatusOr<std::unique_ptr<oci::ExecProcess>> Exec(const std::string& id, const ExecSpec& exec);
  // Exec without stdin or terminal, output collected (each stream capped at
  // 16 MiB); at `timeout` (0: none) the process is SIGKILLed and the result
  // says timed_out.
  StatusOr<ProcessResult> ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                   std::chrono::seconds timeout);
  // Joins the running container's stdio through its monitor's attach
  // socket: output from now on, stdin if asked (FAILED_PRECONDITION if the
  // container has no open stdin, or another session holds it).
  StatusOr<monitor::AttachConnection> Attach(const std::string& id, bool stdin, bool stdout,
                                             bool stderr);
  Status UpdateResources(const std::string& id, const oci::Resources& resources);
  Status ReopenLog(const std::string& id);
  // Writes a checkpoint archive of the running container to `location`
  // (container/checkpoint.h); the container keeps running.
  // FAILED_PRECONDITION when it is not running or CRIU cannot work here.
  Status Checkpoint(const std::string& id, const std::string& location);
  // The id of a container (any state) whose rootfs or an image volume of
  // which uses the image `image_id`; empty when none does. The image
  // service asks this before it removes an image.
  std::string ImageUser(const std::string& image_id);
  // The OCI spec the container runs with (verbose status).
  StatusOr<std::string> SpecJson(const std::string& id);

  // --- events and metrics ----------------------------------------------------
  // The containers of one pod sandbox (full id), refreshed like Get.
  std::vector<ContainerRecord> ListInSandbox(const std::string& sandbox_id);
  // Records by state, as stored (no refresh).
  std::map<ContainerState, int> CountByState();
  // CREATED and RUNNING containers whose berth-monitor process is alive.
  int LiveMonitors();
  // OOM kills noticed since this berthd started (counted once each, also
  // those that happened while berthd was down).
  uint64_t oom_kills_noticed() const { return oom_kills_noticed_.load(); }

 private:
  ContainerManager(ContainerManagerOptions options, store::MetadataStore* db,
                   image::ImageService* images, sandbox::SandboxManager* sandboxes,
                   std::map<std::string, oci::OciRuntime*> runtimes);
  StatusOr<ContainerRecord> CreateLocked(const CreateRequest& req,
                                         const sandbox::SandboxRecord& sb);
  // Records a container whose create failed and whose runtime state could
  // not be deleted as UNKNOWN with both errors; false when saving failed.
  bool KeepAsUnknown(ContainerRecord& r, const std::string& reserved_name,
                     const Status& create_error, const Status& undo_error);
  // Reads the exit file of a CREATED/RUNNING container and records the exit.
  void RefreshLocked(ContainerRecord& r);
  // Whether `r` (RUNNING when it was read) still runs: its record after the
  // exit file is read, and its init.
  bool StillRunning(const ContainerRecord& r);
  // FAILED_PRECONDITION for an exec whose container ended while it started.
  static Status ExitedDuringExec(const std::string& id);
  // Get; with `read_exit_file` the exit file is read even when the bundle
  // is watched (the watcher's own callbacks).
  StatusOr<ContainerRecord> GetImpl(const std::string& id_or_prefix, bool read_exit_file);
  // With mu_ held: whether Get must read the exit file of `r` (a live
  // container whose bundle has no watch).
  bool NeedsExitFileReadLocked(const ContainerRecord& r) const;
  // Writes `next` to the database and the map and publishes what changed.
  Status Save(const ContainerRecord& r);
  // With mu_ held: stores `next` as the record of `id` in the database and
  // the map (nullopt: drops it from the map; the caller deleted it from the
  // database), publishing the events of the change. A record never goes
  // back from EXITED: a stale copy saved after an exit was noticed elsewhere
  // is ignored. OOM kill counts only grow.
  Status CommitLocked(const std::string& id, std::optional<ContainerRecord> next);
  void PublishLocked(const std::string& id, const std::string& sandbox_id, LifecycleEventType type,
                     const std::optional<sandbox::SandboxRecord>& sandbox);
  void OnSandboxChange(const sandbox::SandboxRecord& record, sandbox::SandboxChange change);
  // The watcher saw `file` ("exit" or "oom") appear in the bundle of `id`.
  void OnBundleFile(const std::string& id, const std::string& file);
  // Reads the OOM file of `id` and counts new kills.
  void SyncOomKills(const std::string& id);
  void WatchBundle(const ContainerRecord& r);
  StatusOr<oci::OciRuntime*> RuntimeFor(const std::string& handler);
  // The PID namespace file of `target_id`, a running container of pod
  // `sandbox_id` (pid mode TARGET: kubectl debug --target).
  StatusOr<std::string> TargetPidNamespace(const std::string& target_id,
                                           const std::string& sandbox_id);
  Status WaitForExit(ContainerRecord& r, std::chrono::milliseconds timeout);
  bool SignalInitDirectly(ContainerRecord& r, int signal);
  // Start-up only: removes containers that interrupted creates left without
  // a record, and settles CREATED records whose start was interrupted.
  void CollectOrphans();
  void SettleInterruptedStarts();

  ContainerManagerOptions options_;
  store::MetadataStore* db_;
  image::ImageService* images_;
  sandbox::SandboxManager* sandboxes_;
  std::map<std::string, oci::OciRuntime*> runtimes_;

  std::mutex mu_;
  std::map<std::string, ContainerRecord> containers_;
  std::map<std::string, std::string> names_;  // reserved name -> id
  // Live containers whose bundle the watcher watches: their exits arrive by
  // themselves, so Get and List read no exit file for them.
  std::set<std::string> exit_watched_;
  KeyedMutex locks_;       // per id: one operation on an object at a time
  KeyedMutex name_locks_;  // per reserved name: creates of one name in turn
  std::atomic<uint64_t> oom_kills_noticed_{0};
  // Bundles and writable layers of removed containers, deleted off the RPC's
  // path in <root>/trash and <state>/trash.
  std::unique_ptr<DeferredRemover> trash_;
  // Last: stopped first on destruction, before anything its callbacks use.
  std::unique_ptr<BundleWatcher> watcher_;
};

// Signal number for "SIGTERM", "TERM", "15", "SIGRTMIN+3", "RTMAX-1";
// INVALID_ARGUMENT otherwise. (stop_signal.cc)
StatusOr<int> ParseSignal(std::string_view name);
// The canonical name of a signal number: "SIGUSR1", "SIGRTMIN+3"; "" when
// it has none.
std::string SignalName(int signal);
// The signal a container is stopped with, as a canonical name: the
// container config's (`configured`, already valid), else the image's
// StopSignal when it names a signal, else SIGTERM.
std::string EffectiveStopSignal(const std::string& configured, const std::string& image);

}  // namespace berth::container
