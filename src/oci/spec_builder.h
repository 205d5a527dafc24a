// The OCI runtime spec (config.json, runtime-spec 1.0.2 as runc 1.1 reads it)
// of a CRI container, as a pure function of domain structs. It follows
// containerd's CRI plugin (1.6) so that workloads behave the same under Berth;
// where Berth deviates on purpose, the comment at the field says so.
//
// Purity: nothing here touches the filesystem, /proc or the clock. Whatever
// needs the host or the image's rootfs (its /etc/passwd and /etc/group, a
// Localhost seccomp profile, device numbers, the host's capability mask) is
// read by the caller and passed in. Hence the functions are thread-safe and
// deterministic: the same inputs give the same JSON.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "oci/container_config.h"
#include "oci/seccomp_default.h"

namespace berth::oci {

enum class CgroupDriver {
  kCgroupfs,  // cgroupsPath = <cgroup_parent>/<container id>
  kSystemd,   // cgroupsPath = <basename of cgroup_parent slice>:berth:<container id>
};

// Facts about the host, probed once by the caller.
struct HostCaps {
  // False where the daemon lacks CAP_SYS_RESOURCE: a wanted oom_score_adj
  // below current_oom_score_adj is then raised to it (runc would fail with
  // "can't get final child's PID from pipe: EOF"). SpecNotes says when.
  bool can_lower_oom_score_adj = true;
  int current_oom_score_adj = 0;
  // /proc/sys/kernel/cap_last_cap; "ALL" and privileged mean caps 0..last_cap.
  int last_cap = 40;
  // Bit mask of the capabilities the daemon holds (CapBnd & CapPrm). When set,
  // "ALL" and privileged are limited to it, like containerd's "all current
  // capabilities": the runtime cannot grant what its caller lacks.
  std::optional<uint64_t> current_caps;
  bool cgroup_v2 = false;  // pure (unified) cgroup v2: private cgroup namespace, unified allowed
  bool swap_controller_available = true;  // memory.memsw / memory.swap.max exist
  bool hugetlb_available = true;          // hugetlb controller usable: limits are passed on
  bool seccomp_enabled = true;
  std::string arch = "amd64";  // Go architecture name of the host (seccomp arches)
  KernelVersion kernel;        // for seccomp rules with a minimum kernel; 0.0 = new enough
};

// Everything BuildSpec needs.
struct SpecInputs {
  std::string container_id;
  std::string rootfs_path;  // absolute path of the container's mounted rootfs
  std::string image_name;   // for the io.kubernetes.cri.image-name annotation
  ContainerConfig container;
  ImageConfig image;
  SandboxInfo sandbox;
  HostCaps host;
  CgroupDriver cgroup_driver = CgroupDriver::kCgroupfs;
  // Content of the rootfs's /etc/passwd and /etc/group; empty when absent.
  std::string etc_passwd;
  std::string etc_group;
  // Content of the Localhost seccomp profile (see SeccompLocalhostPath), an
  // OCI LinuxSeccomp JSON object. Required when such a profile is selected.
  std::optional<std::string> seccomp_localhost_content;
  // Privileged containers only: the host's device nodes (as the caller found
  // them under /dev), added to linux.devices like containerd's WithHostDevices.
  std::vector<Device> host_devices;
  // The runtime handler honours the "rro" mount option (see runtime_probe.h).
  bool runtime_supports_rro = false;
};

// Side information for the caller to log (BuildSpec itself logs nothing).
struct SpecNotes {
  // Set when oom_score_adj was raised because the host cannot lower it.
  struct OomClamp {
    int64_t requested = 0;
    int64_t applied = 0;
  };
  std::optional<OomClamp> oom_score_adj_clamped;
  // A non-unconfined AppArmor profile was requested and ignored (no AppArmor).
  bool apparmor_ignored = false;
  // The seccomp profile applied: "unconfined", "runtime/default" or "localhost/<path>".
  std::string seccomp;
};

// Builds config.json. INVALID_ARGUMENT (naming the field and value) for bad
// or contradictory inputs: no command, unknown user/group or capability,
// relative mount paths, net.* sysctls on host network, privileged container
// in an unprivileged pod, ... FAILED_PRECONDITION when the pod lacks what the
// container needs to join (a namespace path, a TARGET container's pid ns).
// Checks a pod's cgroup parent before anything is made for the pod, so that a
// bad one is INVALID_ARGUMENT at RunPodSandbox rather than a runtime error at
// CreateContainer: no "..", no control characters, components of at most 255
// bytes; with the systemd driver it must name a slice ("x.slice").
Status ValidateCgroupParent(const std::string& parent, CgroupDriver driver);

// Where runc puts a pod's and a container's cgroup, as a path below the root
// of every hierarchy (what stats readers open): the pod's own cgroup is its
// cgroup parent (a lone slice name expanded as systemd nests it), "" when the
// pod has none; a container's is what its config.json's cgroupsPath means to
// runc: <pod cgroup>/<id> with cgroupfs, <expanded slice>/berth-<id>.scope
// with systemd.
StatusOr<std::string> PodCgroupDir(const std::string& cgroup_parent, CgroupDriver driver);
StatusOr<std::string> ContainerCgroupDir(const std::string& cgroup_parent, CgroupDriver driver,
                                         const std::string& container_id);

StatusOr<nlohmann::json> BuildSpec(const SpecInputs& in, SpecNotes* notes = nullptr);

// linux.resources of a container's spec without its device rules (cpu,
// memory, hugepageLimits, unified): what `runc update` takes, and what
// UpdateContainerResources merges into config.json. The same function
// BuildSpec uses, so an update and a create agree. `container_name` names
// the container in errors; INVALID_ARGUMENT as BuildSpec.
StatusOr<nlohmann::json> BuildResourcesUpdate(const Resources& resources,
                                              const std::string& container_name,
                                              const HostCaps& host);

// BuildSpec serialized, ready to be written as <bundle>/config.json.
StatusOr<std::string> BuildSpecJson(const SpecInputs& in, SpecNotes* notes = nullptr);

// process.args by containerd's rule: a CRI command replaces the image's
// entrypoint and cmd (command + args); else CRI args replace only the cmd
// (entrypoint + args); else entrypoint + cmd. An entrypoint of [""] counts as
// none. INVALID_ARGUMENT "no command specified" when the result is empty.
StatusOr<std::vector<std::string>> ProcessArgs(const ContainerConfig& c, const ImageConfig& image);

// The user string to resolve: run_as_username or run_as_user, with
// ":<run_as_group>" when given; else the image's User. Empty means root.
// INVALID_ARGUMENT for a group without a user or negative ids.
StatusOr<std::string> EffectiveUserString(const SecurityContext& sc, const ImageConfig& image);

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // The primary gid, then the gids of the /etc/group entries that list the
  // user's name as a member (unless !merge_image_groups: policy Strict), then
  // supplemental_groups; without duplicates.
  std::vector<uint32_t> additional_gids;
};

// Resolves "uid", "uid:gid", "name", "name:group" (or "" = root) against the
// CONTENTS of the image's /etc/passwd and /etc/group (empty = file absent).
// A numeric uid without a group takes the gid of its passwd entry, else 0.
// INVALID_ARGUMENT naming the user or group when a name is not found or a
// number is out of range.
StatusOr<ResolvedUser> ResolveUser(std::string_view passwd_content, std::string_view group_content,
                                   std::string_view user,
                                   const std::vector<int64_t>& supplemental_groups = {},
                                   bool merge_image_groups = true);

// The file a Localhost seccomp profile must be read from (structured field or
// "localhost/<path>"), or nullopt when the container selects none or is
// privileged. The caller reads it into SpecInputs::seccomp_localhost_content.
std::optional<std::string> SeccompLocalhostPath(const SecurityContext& sc);

// containerd's default capability set, with the "CAP_" prefix.
const std::vector<std::string>& DefaultCapabilities();

// The OCI default masked and readonly paths (used when the CRI gives none).
const std::vector<std::string>& DefaultMaskedPaths();
const std::vector<std::string>& DefaultReadonlyPaths();

}  // namespace berth::oci
