#include "container/container_plan.h"

#include "common/userns.h"
#include "container/image_volume.h"

namespace berth::container {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Network and IPC belong to the pod: a container cannot choose differently
// (crictl leaves the container's options at their POD default even in a
// host-network pod). A container asking for the pod's PID namespace in a pod
// that has none gets its own, as in CRI-O (or the node's in a host-PID pod).
oci::NamespaceOptions EffectiveNamespaces(const oci::NamespaceOptions& asked,
                                          const sandbox::SandboxRecord& sb) {
  using oci::NamespaceMode;
  oci::NamespaceOptions ns = asked;
  ns.network =
      sb.config.network_mode == NamespaceMode::kNode ? NamespaceMode::kNode : NamespaceMode::kPod;
  ns.ipc = sb.config.ipc_mode == NamespaceMode::kNode ? NamespaceMode::kNode : NamespaceMode::kPod;
  if (ns.pid == NamespaceMode::kPod && sb.pid_ns_path.empty()) {
    ns.pid = sb.config.pid_mode == NamespaceMode::kNode ? NamespaceMode::kNode
                                                        : NamespaceMode::kContainer;
  }
  return ns;
}

}  // namespace

StatusOr<ContainerPlan> PlanContainer(const ContainerPlanInputs& in) {
  const CreateRequest& req = in.request;
  const sandbox::SandboxRecord& sb = in.sandbox;
  ContainerPlan plan;
  plan.config = req.config;

  // Bind mount sources must be absolute and exist; image volumes need a
  // clean sub path (they are mounted by the executor).
  for (auto& m : plan.config.mounts) {
    if (!m.image.empty()) {
      RETURN_IF_ERROR(Annotate(ValidateImageSubPath(m.image_sub_path),
                               StrCat("image volume ", m.container_path)));
      plan.has_image_volumes = true;
      continue;
    }
    if (m.host_path.empty() || m.host_path[0] != '/') {
      return InvalidArgumentError(
          StrCat("mount ", m.container_path, ": host path \"", m.host_path, "\" is not absolute"));
    }
    if (in.resolve_host_path) {
      auto real = in.resolve_host_path(m.host_path);
      if (!real.ok()) {
        return Status(real.status().code(),
                      StrCat("mount ", m.container_path, ": host path ", m.host_path,
                             " does not exist or cannot be resolved: ", real.status().message()));
      }
      m.host_path = *real;
    }
  }

  ContainerRecord& r = plan.record;
  r.id = in.id;
  r.sandbox_id = sb.id;
  r.name = req.config.name;
  r.attempt = req.config.attempt;
  r.labels = req.config.labels;
  r.annotations = req.config.annotations;
  r.image = req.image;
  r.image_id = in.image.id;
  r.image_ref = in.image.repo_digests.empty() ? in.image.id : in.image.repo_digests.front();
  r.runtime_handler = in.runtime_handler;
  r.stop_signal = EffectiveStopSignal(req.config.stop_signal, in.image_config.stop_signal);
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
  r.created_at_ns = in.now_ns;
  r.bundle = (in.state_dir / r.id).string();
  r.rootfs = (fs::path(r.bundle) / "rootfs").string();
  r.layer_dir = (in.root_dir / r.id).string();
  plan.monitor_log_path =
      r.log_path.empty() ? (fs::path(r.bundle) / "console.log").string() : r.log_path;

  // The rootfs.
  if (in.image.diff_ids.empty()) {
    return FailedPreconditionError(StrCat("image ", in.image.id, " has no layers"));
  }
  plan.lowers_top_first = in.layer_dirs_top_first;
  std::string lowerdir;
  for (const auto& d : in.layer_dirs_top_first) {
    if (!lowerdir.empty()) lowerdir += ':';
    lowerdir += d.string();
  }
  plan.overlay_options = StrCat("lowerdir=", lowerdir, ",upperdir=", r.layer_dir,
                                "/upper,workdir=", r.layer_dir, "/work");
  plan.volumes_dir = fs::path(r.bundle) / "volumes";
  plan.idmap_rootfs_dir = fs::path(r.bundle) / "idmap" / "rootfs";
  plan.idmap_mounts_dir = fs::path(r.bundle) / "idmap" / "mounts";
  if (!sb.userns_path.empty()) {
    // A pod with its own user namespace: ID-mapped layers (container/userns.h)
    // whose writable layer belongs to the host IDs of the container's root.
    const oci::SandboxInfo info = sb.Info();
    const int64_t root_uid = MapToHost(info.uid_mappings, 0);
    const int64_t root_gid = MapToHost(info.gid_mappings, 0);
    if (root_uid < 0 || root_gid < 0) {
      return InvalidArgumentError(
          StrCat("the user namespace of pod sandbox ", sb.id, " does not map container ID 0"));
    }
    plan.idmapped_rootfs = true;
    plan.idmap_bind_mounts = true;
    plan.rootfs_uid = static_cast<uid_t>(root_uid);
    plan.rootfs_gid = static_cast<gid_t>(root_gid);
  }

  plan.namespaces = EffectiveNamespaces(req.config.security_context.namespace_options, sb);
  if (plan.namespaces.pid == oci::NamespaceMode::kTarget) {
    if (plan.namespaces.target_id.empty()) {
      return InvalidArgumentError("pid namespace mode TARGET needs target_id (a container id)");
    }
    plan.needs_target_pid_ns = true;
  }
  return plan;
}

StatusOr<ContainerSpecPlan> PlanContainerSpec(ContainerPlan& plan, const ContainerPlanInputs& in,
                                              const ContainerRootfsFacts& facts) {
  ContainerRecord& r = plan.record;
  const CreateRequest& req = in.request;
  if (facts.mounts.size() != plan.config.mounts.size() ||
      facts.volume_image_ids.size() != facts.mounts.size()) {
    return InternalError("container plan: mounts changed in number while mounting");
  }
  plan.config.mounts = facts.mounts;
  r.mounts.clear();
  for (size_t i = 0; i < plan.config.mounts.size(); ++i) {
    const oci::Mount& m = plan.config.mounts[i];
    // Bind mounts as the CRI gave them; image volumes with what berthd mounted.
    const std::string& host_path = m.image.empty() ? req.config.mounts[i].host_path : m.host_path;
    r.mounts.push_back({m.container_path, host_path, m.readonly, static_cast<int>(m.propagation),
                        m.image, facts.volume_image_ids[i], m.image_sub_path});
  }

  oci::SpecInputs spec_in;
  spec_in.container_id = r.id;
  spec_in.rootfs_path = r.rootfs;
  spec_in.image_name = req.image;
  spec_in.container = plan.config;
  spec_in.container.security_context.namespace_options = plan.namespaces;
  spec_in.sandbox = in.sandbox.Info();
  if (plan.needs_target_pid_ns) {
    spec_in.sandbox.target_pid_ns_paths[plan.namespaces.target_id] = facts.target_pid_ns_path;
  }
  spec_in.image = in.image_config;
  spec_in.host = in.host;
  spec_in.cgroup_driver = in.cgroup_driver;
  spec_in.runtime_supports_rro = in.features.recursive_read_only_mounts;
  spec_in.etc_passwd = facts.etc_passwd;
  spec_in.etc_group = facts.etc_group;
  spec_in.seccomp_localhost_content = facts.seccomp_localhost_content;

  ContainerSpecPlan out;
  ASSIGN_OR_RETURN(out.spec, oci::BuildSpec(spec_in, &out.notes));
  const json& user = out.spec["process"]["user"];
  r.uid = user.value("uid", 0u);
  r.gid = user.value("gid", 0u);
  r.supplemental_groups = user.value("additionalGids", std::vector<uint32_t>{});
  r.own_pid_ns = false;
  for (const auto& ns : out.spec["linux"].value("namespaces", json::array())) {
    if (ns.value("type", "") == "pid" && !ns.contains("path")) r.own_pid_ns = true;
  }
  return out;
}

}  // namespace berth::container
