// Domain view of a container to be created: what the CRI (runtime.v1
// ContainerConfig + its sandbox) says, in plain structs without protobuf.
// server/ maps CRI messages onto these; oci/spec_builder turns them into an
// OCI runtime spec. Field names follow the CRI's so the mapping stays obvious.
//
// Zero values mean "not set" exactly where the CRI's zero values do (cpu
// period/quota/shares, memory limits); where the CRI distinguishes "absent"
// from "empty/zero" (Int64Value wrappers, nil message fields, masked paths),
// the field is a std::optional.
//
// Plain values: copyable, no invariants beyond the comments, no thread-safety
// concerns of their own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/userns.h"

namespace berth::oci {

// runtime.v1 MountPropagation.
enum class MountPropagation {
  kPrivate,          // PROPAGATION_PRIVATE → "rprivate"
  kHostToContainer,  // PROPAGATION_HOST_TO_CONTAINER → "rslave"
  kBidirectional,    // PROPAGATION_BIDIRECTIONAL → "rshared"
};

struct Mount {
  std::string container_path;  // absolute
  std::string host_path;       // absolute; the caller has resolved symlinks and checked
                               // the host mount's propagation for rslave/rshared
  bool readonly = false;
  MountPropagation propagation = MountPropagation::kPrivate;
  bool selinux_relabel = false;  // ignored: SELinux is not supported by Berth
  // Read-only all the way down, submounts included ("rro"); needs readonly,
  // private propagation and a runtime handler with the feature.
  bool recursive_read_only = false;
  // An image volume: the image (a reference or id) whose content is mounted
  // read-only instead of host_path, or one sub path of it. The container
  // manager mounts it and fills in host_path before the spec is built.
  std::string image{};
  std::string image_sub_path{};
};

// A device node to create in the container. The CRI gives only paths and
// permissions; the caller stats host_path and fills type/major/minor/mode.
struct Device {
  std::string container_path;
  std::string host_path;
  std::string permissions = "rwm";  // cgroup access, subset of "rwm"; empty means "rwm"
  char type = 'c';                  // 'c' (char) or 'b' (block)
  int64_t major = 0;
  int64_t minor = 0;
  uint32_t file_mode = 0666;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct HugepageLimit {
  std::string page_size;  // "2MB", "1GB"
  uint64_t limit = 0;     // bytes
};

// runtime.v1 LinuxContainerResources. 0 = not set, as in the CRI.
struct Resources {
  int64_t cpu_period = 0;
  int64_t cpu_quota = 0;
  int64_t cpu_shares = 0;
  int64_t memory_limit_in_bytes = 0;
  // The CRI always carries a value when resources are given; nullopt leaves
  // process.oomScoreAdj out of the spec (the runtime keeps the inherited one).
  std::optional<int64_t> oom_score_adj;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, std::string> unified;  // cgroup v2 only
  int64_t memory_swap_limit_in_bytes = 0;
};

struct Capabilities {
  // Names with or without the "CAP_" prefix, any case; "ALL" means every
  // capability the kernel knows.
  std::vector<std::string> add_capabilities;
  std::vector<std::string> drop_capabilities;
};

// runtime.v1 NamespaceMode. The CRI's zero value is POD.
enum class NamespaceMode { kPod, kContainer, kNode, kTarget };

struct NamespaceOptions {
  NamespaceMode network = NamespaceMode::kPod;  // POD or NODE (UTS follows network)
  NamespaceMode pid = NamespaceMode::kPod;      // POD, CONTAINER, NODE or TARGET
  NamespaceMode ipc = NamespaceMode::kPod;      // POD or NODE
  std::string target_id;                        // container id for pid == TARGET
};

// runtime.v1 SecurityProfile.ProfileType (the CRI's zero value is RuntimeDefault).
enum class ProfileType { kRuntimeDefault, kUnconfined, kLocalhost };

struct SecurityProfile {
  ProfileType profile_type = ProfileType::kRuntimeDefault;
  std::string localhost_ref;  // absolute path (seccomp) or profile name (AppArmor)
};

// runtime.v1 SupplementalGroupsPolicy.
enum class SupplementalGroupsPolicy {
  kMerge,   // the groups the image's /etc/group gives the user, plus supplemental_groups
  kStrict,  // only the primary group and supplemental_groups
};

// runtime.v1 LinuxContainerSecurityContext.
struct SecurityContext {
  Capabilities capabilities;
  bool privileged = false;
  NamespaceOptions namespace_options;
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  std::string run_as_username;
  bool readonly_rootfs = false;
  std::vector<int64_t> supplemental_groups;
  SupplementalGroupsPolicy supplemental_groups_policy = SupplementalGroupsPolicy::kMerge;
  bool no_new_privs = false;
  // nullopt → the runtime's default list; an empty vector → nothing masked.
  std::optional<std::vector<std::string>> masked_paths;
  std::optional<std::vector<std::string>> readonly_paths;
  // The structured field wins when present; otherwise the deprecated string:
  // "" or "unconfined", "runtime/default", "docker/default", "localhost/<path>".
  std::optional<SecurityProfile> seccomp;
  std::string seccomp_profile_path;
  // Recorded but not applied: AppArmor is not enabled on Berth's hosts.
  std::optional<SecurityProfile> apparmor;
  std::string apparmor_profile;
};

// runtime.v1 ContainerConfig (the parts that shape the OCI spec).
struct ContainerConfig {
  std::string name;  // metadata.name
  uint32_t attempt = 0;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<std::pair<std::string, std::string>> envs;  // in CRI order
  std::vector<Mount> mounts;
  std::vector<Device> devices;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  bool tty = false;
  bool stdin = false;
  bool stdin_once = false;
  Resources resources;
  SecurityContext security_context;
  // ContainerConfig.stop_signal as a name ("SIGUSR1", "SIGRTMIN+3"); empty:
  // the image's StopSignal, else SIGTERM. Not part of the spec.
  std::string stop_signal;
  // ContainerConfig.CDI_devices: fully qualified CDI device names.
  std::vector<std::string> cdi_devices;
};

// The parts of an image's config (OCI image-spec "config") that are defaults
// for a container.
struct ImageConfig {
  std::string user;              // "uid", "uid:gid", "name", "name:group"
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string stop_signal;  // not part of the spec; kept for the container record
};

// What the pod sandbox provides to its containers. Namespace paths are files
// that can be opened to join the namespace: /proc/<infra pid>/ns/<type> or a
// bind-mounted namespace file.
// Pod-level resources the kubelet reports in PodSandboxConfig (the sum of the
// containers' limits, and the RuntimeClass overhead): informational for runc
// and crun (the kubelet sizes the pod cgroup itself), used by VM runtimes.
struct PodResources {
  int64_t cpu_period = 0;
  int64_t cpu_quota = 0;
  int64_t cpu_shares = 0;
  int64_t memory_limit_in_bytes = 0;
};

struct SandboxInfo {
  std::string id;
  std::string name;        // metadata.name (annotation only)
  std::string namespace_;  // metadata.namespace (annotation only)
  std::string hostname;    // for HOSTNAME= and spec.hostname; the node's name on host network
  std::string netns_path;  // empty when the pod uses the node's network
  std::string ipc_ns_path;
  std::string uts_ns_path;
  std::string pid_ns_path;
  // pid namespace paths of the pod's other containers, for pid == TARGET.
  std::map<std::string, std::string> target_pid_ns_paths;
  std::string cgroup_parent;
  std::string resolv_conf_path;  // each of these four: empty → no mount
  std::string hosts_path;
  std::string hostname_path;
  std::string shm_path;  // the pod's /dev/shm tmpfs directory
  std::map<std::string, std::string> sysctls;
  bool privileged = false;  // the pod's security context allows privileged containers
  // A pod in a user namespace of its own: the pinned namespace, and its
  // mappings (the runtime wants them even when it joins by path).
  std::string userns_path;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  // Set when the kubelet gave pod resources: become the sandbox-cpu-*/sandbox-memory
  // annotations VM runtimes size the pod with.
  std::optional<PodResources> resources;
};

}  // namespace berth::oci
