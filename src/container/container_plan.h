// What creating a container will make, decided from plain values: the pure
// half of ContainerManager::Create. The manager gathers the facts (the pod's
// record, the image's record and config, resolved bind mount sources, the
// handler's features), asks PlanContainer, does what the plan says (dirs,
// rootfs overlay, image volumes, ID-mapped binds) with a scope guard per
// resource, reads what only the mounted rootfs can tell (/etc/passwd,
// /etc/group) and asks PlanContainerSpec for the OCI spec and the record's
// user fields. Keeping the decisions here lets every combination of
// namespace modes, mounts and security settings be tested without root
// (tests/unit/container_plan_test.cc).
//
// Free functions, no state: thread-safe.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "container/container_manager.h"
#include "image/image_store.h"
#include "oci/container_config.h"
#include "oci/runtime_probe.h"
#include "oci/spec_builder.h"
#include "sandbox/sandbox_manager.h"

namespace berth::container {

// Everything PlanContainer decides from, read by the caller.
struct ContainerPlanInputs {
  CreateRequest request;           // as Create validated it (name, image, stop signal)
  sandbox::SandboxRecord sandbox;  // the pod, READY
  image::ImageRecord image;        // the image the request names
  oci::ImageConfig image_config;   // its config's defaults (user, env, cmd, stop signal)
  std::string runtime_handler;     // the handler's name, as the record keeps it
  oci::HandlerFeatures features;   // what the handler supports (its probe)
  oci::HostCaps host;              // what the host supports
  oci::CgroupDriver cgroup_driver = oci::CgroupDriver::kCgroupfs;
  std::string id;                   // the new container's id
  int64_t now_ns = 0;               // its creation time
  std::filesystem::path state_dir;  // <state>/containers: bundles
  std::filesystem::path root_dir;   // <root>/containers: writable layers
  // The unpacked layer directories of the image, top-most first.
  std::vector<std::filesystem::path> layer_dirs_top_first;
  // Resolves a bind mount's absolute host path (symlinks followed), so that
  // the runtime mounts what the path points at; NOT_FOUND when it does not
  // exist. Asked once per bind mount, in order, after its path was checked.
  std::function<StatusOr<std::string>(const std::string& host_path)> resolve_host_path;
};

struct ContainerPlan {
  // The record as it will be saved once the runtime created the container;
  // its mounts, pid, user fields and state are filled in later.
  ContainerRecord record;
  // The container's config with bind mount sources resolved; image volumes'
  // sources are set when they are mounted.
  oci::ContainerConfig config;
  // Rootfs: an overlay of the image's layers with a writable layer in
  // record.layer_dir; `overlay_options` for a plain overlay mount, or, for a
  // pod with its own user namespace, ID-mapped lower layers owned by the
  // host IDs of the container's root (`rootfs_uid`/`rootfs_gid`).
  std::string overlay_options;
  std::vector<std::filesystem::path> lowers_top_first;
  bool idmapped_rootfs = false;
  uid_t rootfs_uid = 0;
  gid_t rootfs_gid = 0;
  // Image volumes to mount below volumes_dir, and (user namespace) whether
  // bind mounts are ID-mapped below idmap_mounts_dir.
  bool has_image_volumes = false;
  bool idmap_bind_mounts = false;
  std::filesystem::path volumes_dir;
  std::filesystem::path idmap_rootfs_dir;
  std::filesystem::path idmap_mounts_dir;
  // The namespaces the container gets, after the pod's say: network and IPC
  // are the pod's; a pod PID namespace the pod lacks becomes the container's
  // own (or the node's on a host-PID pod).
  oci::NamespaceOptions namespaces;
  // pid mode TARGET: the caller looks up the PID namespace of
  // namespaces.target_id (a running container of the pod).
  bool needs_target_pid_ns = false;
  // Where berth-monitor writes the container's output: the CRI log path,
  // else <bundle>/console.log.
  std::string monitor_log_path;
};

// INVALID_ARGUMENT for a relative bind mount source, a bad image volume sub
// path, a log path without the pod's log directory, a pod user namespace
// that does not map ID 0, TARGET without a target; FAILED_PRECONDITION for
// an image without layers; the resolver's error for a missing bind source.
StatusOr<ContainerPlan> PlanContainer(const ContainerPlanInputs& in);

// What only the created rootfs and mounts can tell, read by the caller.
struct ContainerRootfsFacts {
  // The config's mounts after image volumes and ID-mapped binds were
  // mounted (their host paths point at what berthd mounted).
  std::vector<oci::Mount> mounts;
  // The image id of each mount (empty for bind mounts).
  std::vector<std::string> volume_image_ids;
  std::string etc_passwd, etc_group;  // of the rootfs; empty when absent
  // The Localhost seccomp profile's content, when one is selected.
  std::optional<std::string> seccomp_localhost_content;
  // pid mode TARGET: the target's PID namespace file.
  std::string target_pid_ns_path;
};

struct ContainerSpecPlan {
  nlohmann::json spec;  // config.json
  oci::SpecNotes notes;
};

// Builds the OCI spec for `plan` and fills in the record's mounts, uid, gid,
// supplemental groups and own_pid_ns from it. INVALID_ARGUMENT or
// FAILED_PRECONDITION as oci::BuildSpec (unknown user, bad capability,
// privileged container in an unprivileged pod, ...).
StatusOr<ContainerSpecPlan> PlanContainerSpec(ContainerPlan& plan, const ContainerPlanInputs& in,
                                              const ContainerRootfsFacts& facts);

}  // namespace berth::container
