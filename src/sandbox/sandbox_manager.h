// Pod sandboxes: the namespaces, network, DNS/hosts/hostname files and
// /dev/shm that a pod's containers share. Network, IPC and UTS namespaces are
// pinned by bind mounts of their nsfs files (as `ip netns add` does), so most
// pods hold no process at all; only a pod whose containers share one PID
// namespace (pid mode POD) runs berth-pause as that namespace's init.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/keyed_mutex.h"
#include "common/status.h"
#include "common/userns.h"
#include "network/cni.h"
#include "network/netns.h"
#include "oci/container_config.h"
#include "oci/spec_builder.h"
#include "store/metadata_store.h"

namespace berth::sandbox {

// The domain form of the CRI PodSandboxConfig.
struct SandboxConfig {
  std::string name, uid, namespace_;
  uint32_t attempt = 0;
  std::string hostname;
  std::string log_directory;
  std::vector<std::string> dns_servers, dns_searches, dns_options;
  std::vector<network::PortMapping> port_mappings;
  std::map<std::string, std::string> labels, annotations;
  std::string cgroup_parent;
  std::map<std::string, std::string> sysctls;
  std::optional<oci::PodResources> resources, overhead;
  oci::NamespaceMode network_mode = oci::NamespaceMode::kPod;
  oci::NamespaceMode pid_mode = oci::NamespaceMode::kContainer;
  oci::NamespaceMode ipc_mode = oci::NamespaceMode::kPod;
  bool privileged = false;
  // NamespaceOption.userns_options with mode POD: the pod runs in a user
  // namespace of its own with these mappings (nullopt: the node's).
  struct UserNamespace {
    std::vector<IdMapping> uids, gids;
  };
  std::optional<UserNamespace> userns;
};

enum class SandboxState { kReady, kNotReady };

struct SandboxRecord {
  std::string id;
  SandboxConfig config;
  std::string runtime_handler;
  SandboxState state = SandboxState::kReady;
  int64_t created_at_ns = 0;
  std::string dir;  // <state>/sandboxes/<id>: resolv.conf, hosts, hostname, shm/, ns files
  std::string netns_path, ipc_ns_path, uts_ns_path;  // empty when NODE
  std::string pid_ns_path;  // pinned PID namespace of berth-pause (pid mode POD)
  std::string userns_path;  // pinned user namespace (config.userns); owns the pod's others
  int pause_pid = 0;
  std::string ip;
  std::vector<std::string> additional_ips;
  bool network_ready = false;  // CNI ADD done and not yet torn down

  std::string ToJson() const;
  static StatusOr<SandboxRecord> FromJson(std::string_view text);
  // What the OCI spec builder needs to put a container into this pod.
  oci::SandboxInfo Info() const;
};

// What happened to a pod sandbox, for lifecycle events (GetContainerEvents).
enum class SandboxChange {
  kReady,    // RunPodSandbox made it
  kStopped,  // READY -> NOTREADY
  kRemoved,  // gone; the record is its last state
};
using SandboxObserver = std::function<void(const SandboxRecord& record, SandboxChange change)>;

struct SandboxManagerOptions {
  std::filesystem::path state_dir;                      // <state>/sandboxes
  std::filesystem::path netns_dir;                      // <state>/netns
  std::string resolv_conf_source = "/etc/resolv.conf";  // used when the pod gives no DNS config
  std::string pause_binary;  // berth-pause, for pods that share one PID namespace
};

// Thread-safe. Operations on one sandbox are serialised by a per-sandbox
// lock; different sandboxes proceed in parallel.
class SandboxManager {
 public:
  static StatusOr<std::unique_ptr<SandboxManager>> Open(SandboxManagerOptions options,
                                                        store::MetadataStore* db,
                                                        network::CniManager* cni);

  // Creates and starts a pod sandbox; rolls back everything on failure. A
  // second call with the same name while the first is in flight waits for it
  // and returns its result (kubelet retries do that).
  StatusOr<SandboxRecord> Run(const SandboxConfig& config, const std::string& runtime_handler);
  // Tears down the network and unmounts namespaces; the record stays
  // (NOTREADY). Idempotent, per the CRI spec.
  Status Stop(const std::string& id);
  // Stop, then forget the sandbox. The caller removes its containers first.
  // Idempotent: an unknown id is success.
  Status Remove(const std::string& id);

  StatusOr<SandboxRecord> Get(const std::string& id_or_prefix) const;
  // A TCP connection to `port` on the loopback of the pod's network
  // namespace (the host's for host-network pods), for port-forward.
  // NOT_FOUND for an unknown pod, FAILED_PRECONDITION for one that is not
  // ready, UNAVAILABLE when nothing listens on the port.
  StatusOr<UniqueFd> ConnectToPort(const std::string& id, uint16_t port);
  std::vector<SandboxRecord> List() const;
  // Each record, without copying, with the manager's lock held: `visit` must
  // be quick and must not call back into the manager (ListPodSandbox).
  void Visit(const std::function<void(const SandboxRecord&)>& visit) const;
  // In-place pod resize (pod_resize.cc): records the pod's new resources
  // and overhead (nullopt: unchanged) and writes their sums into the pod's
  // cgroup (its cgroup parent). Returns that cgroup, "" for a pod without
  // one, whose containers are sized one by one. FAILED_PRECONDITION for a
  // pod that is not ready.
  StatusOr<std::string> UpdateResources(const std::string& id,
                                        const std::optional<oci::PodResources>& resources,
                                        const std::optional<oci::PodResources>& overhead,
                                        oci::CgroupDriver driver);

  // Tells `observer` of every change from now on, on the thread that made
  // it, right after the change is saved, with that sandbox's operation lock
  // held but none of the manager's other locks. Set before calls are served
  // (not thread-safe against operations in progress); an empty function
  // stops the notifications.
  void SetObserver(SandboxObserver observer) { observer_ = std::move(observer); }

 private:
  SandboxManager(SandboxManagerOptions options, store::MetadataStore* db, network::CniManager* cni);
  StatusOr<SandboxRecord> RunLocked(const SandboxConfig& config, const std::string& handler);
  Status StopLocked(SandboxRecord& record);
  Status Save(const SandboxRecord& record);
  // Tears down what interrupted runs left without a record (start-up only).
  void CollectOrphans();

  SandboxManagerOptions options_;
  store::MetadataStore* db_;
  network::CniManager* cni_;
  network::NetworkNamespaces netns_;

  mutable std::mutex mu_;
  std::map<std::string, SandboxRecord> sandboxes_;  // by id
  std::map<std::string, std::string> names_;        // reserved name -> id
  KeyedMutex locks_;                                // per id: one operation on an object at a time
  KeyedMutex name_locks_;  // per reserved name: creates of one name in turn
  SandboxObserver observer_;
};

// INVALID_ARGUMENT for a user namespace the pod cannot have (bad mappings,
// or together with the node's network, IPC or PID namespace). Pure.
Status ValidateUserNamespace(const SandboxConfig& config);

// "<name>_<namespace>_<uid>_<attempt>": the unique key kubelet's retries reuse.
std::string ReservedName(const SandboxConfig& c);

}  // namespace berth::sandbox
