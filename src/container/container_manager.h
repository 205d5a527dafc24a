// Containers on top of the OCI runtime driver, the monitor and the image
// layers: create (rootfs overlay, OCI spec, monitor + runtime create), start,
// stop (signal, grace period, SIGKILL), remove, status, exec. Records are kept
// in the metadata store; a container's exit is read from the monitor's exit
// file, so exits that happen while berthd is down are not lost.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/keyed_mutex.h"
#include "common/status.h"
#include "image/image_service.h"
#include "oci/container_config.h"
#include "oci/handler_registry.h"
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

  std::string ToJson() const;
  static StatusOr<ContainerRecord> FromJson(std::string_view text);
};

struct CreateRequest {
  std::string sandbox_id;
  oci::ContainerConfig config;
  std::string image;     // ImageSpec.image
  std::string log_path;  // relative to the pod's log directory
};

struct ContainerManagerOptions {
  std::filesystem::path root_dir;   // <root>/containers (writable layers)
  std::filesystem::path state_dir;  // <state>/containers (bundles)
  std::filesystem::path monitor_binary;
  oci::CgroupDriver cgroup_driver = oci::CgroupDriver::kCgroupfs;
  oci::HostCaps host;
  // The runtime handlers and what each supports, from its start-up probe,
  // which may still run when a create comes (it then waits). Not owned.
  const oci::HandlerRegistry* handlers = nullptr;
};

// Thread-safe; operations on one container are serialised.
class ContainerManager {
 public:
  static StatusOr<std::unique_ptr<ContainerManager>> Open(
      ContainerManagerOptions options, store::MetadataStore* db, image::ImageService* images,
      sandbox::SandboxManager* sandboxes, std::map<std::string, oci::OciRuntime*> runtimes);

  StatusOr<ContainerRecord> Create(const CreateRequest& req);
  Status Start(const std::string& id);
  // Idempotent. `signal_name` empty: the image's StopSignal, else SIGTERM.
  Status Stop(const std::string& id, std::chrono::seconds timeout, std::string signal_name = "");
  // Idempotent; a running container is killed first.
  Status Remove(const std::string& id);
  StatusOr<ContainerRecord> Get(const std::string& id_or_prefix);
  std::vector<ContainerRecord> List();
  StatusOr<ProcessResult> ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                   std::chrono::seconds timeout);
  Status UpdateResources(const std::string& id, const oci::Resources& resources);
  Status ReopenLog(const std::string& id);
  // The OCI spec the container runs with (verbose status).
  StatusOr<std::string> SpecJson(const std::string& id);

 private:
  ContainerManager(ContainerManagerOptions options, store::MetadataStore* db,
                   image::ImageService* images, sandbox::SandboxManager* sandboxes,
                   std::map<std::string, oci::OciRuntime*> runtimes);
  StatusOr<ContainerRecord> CreateLocked(const CreateRequest& req,
                                         const sandbox::SandboxRecord& sb);
  // Reads the exit file of a CREATED/RUNNING container and records the exit.
  void RefreshLocked(ContainerRecord& r);
  Status Save(const ContainerRecord& r);
  StatusOr<oci::OciRuntime*> RuntimeFor(const std::string& handler);
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
  KeyedMutex locks_;                          // per id: one operation on an object at a time
  KeyedMutex name_locks_;                     // per reserved name: creates of one name in turn
};

// Signal number for "SIGTERM", "TERM", "15"; INVALID_ARGUMENT otherwise.
StatusOr<int> ParseSignal(std::string_view name);

}  // namespace berth::container
