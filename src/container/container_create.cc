#include "container/container_create.h"

#include <sys/mount.h>

#include <algorithm>

#include "common/fs.h"
#include "common/safe_path.h"
#include "container/image_volume.h"
#include "container/userns.h"

namespace berth::container {

namespace fs = std::filesystem;

ContainerPlanInputs PlanInputsFor(const CreateRequest& req, const sandbox::SandboxRecord& sb,
                                  const image::ImageRecord& img,
                                  const image::ImageConfig& img_config,
                                  const snapshot::LayerStore& layers, const std::string& handler,
                                  const oci::HandlerFeatures& features,
                                  const ContainerManagerOptions& options) {
  ContainerPlanInputs in;
  in.request = req;
  in.sandbox = sb;
  in.image = img;
  in.image_config = {.user = img_config.config.user,
                     .env = img_config.config.env,
                     .entrypoint = img_config.config.entrypoint,
                     .cmd = img_config.config.cmd,
                     .working_dir = img_config.config.working_dir,
                     .stop_signal = img_config.config.stop_signal};
  in.runtime_handler = handler;
  in.features = features;
  in.host = options.host;
  in.cgroup_driver = options.cgroup_driver;
  in.id = RandomHex(32);
  in.now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  in.state_dir = options.state_dir;
  in.root_dir = options.root_dir;
  // Not std::views::reverse: clang 14 (the sanitizer build) rejects it on libstdc++ 12's ranges.
  for (const auto& diff_id : img.diff_ids)
    in.layer_dirs_top_first.push_back(layers.LayerDir(diff_id));
  std::reverse(in.layer_dirs_top_first.begin(), in.layer_dirs_top_first.end());
  in.resolve_host_path = [](const std::string& path) -> StatusOr<std::string> {
    std::error_code ec;
    fs::path real = fs::canonical(path, ec);
    if (ec) return NotFoundError(ec.message());
    return real.string();
  };
  return in;
}

ContainerRootfs::~ContainerRootfs() {
  if (keep_) return;
  if (mounted_volumes_) {
    (void)UnmountEntriesAndRemove(plan_.volumes_dir);
    (void)UnmountEntriesAndRemove(plan_.idmap_mounts_dir);
  }
  if (mounted_rootfs_) ::umount2(record_.rootfs.c_str(), MNT_DETACH);
  if (made_dirs_) {
    (void)RemoveAll(record_.bundle);
    (void)RemoveAll(record_.layer_dir);
  }
}

Status ContainerRootfs::Mount(const image::ImageRecord& img, const snapshot::LayerStore& layers,
                              const std::string& userns_path) {
  const ContainerRecord& r = record_;
  made_dirs_ = true;  // also what a failing MakeDirs made
  RETURN_IF_ERROR(MakeDirs(fs::path(r.layer_dir) / "upper", 0755));
  RETURN_IF_ERROR(MakeDirs(fs::path(r.layer_dir) / "work", 0700));
  RETURN_IF_ERROR(MakeDirs(r.rootfs, 0755));
  for (const auto& d : img.diff_ids) {
    if (!layers.Has(d)) {
      return FailedPreconditionError(
          StrCat("layer ", d.str(), " of image ", img.id, " is missing; pull the image again"));
    }
  }
  if (plan_.idmapped_rootfs) {
    Status mounted =
        MountIdmappedOverlay(plan_.lowers_top_first, r.layer_dir, plan_.rootfs_uid,
                             plan_.rootfs_gid, r.rootfs, 0, userns_path, plan_.idmap_rootfs_dir);
    if (!mounted.ok()) return Annotate(mounted, StrCat("rootfs of container ", r.id));
  } else if (::mount("overlay", r.rootfs.c_str(), "overlay", 0, plan_.overlay_options.c_str()) !=
             0) {
    return ErrnoStatus(errno, StrCat("mount rootfs of container ", r.id));
  }
  mounted_rootfs_ = true;
  return OkStatus();
}

Status ContainerRootfs::MountVolumes(image::ImageService& images, const std::string& userns_path,
                                     ContainerRootfsFacts& facts,
                                     std::vector<image::ImageHold>* holds) {
  // Before the first mount: a failure halfway leaves some for the destructor.
  mounted_volumes_ = true;
  facts.mounts = plan_.config.mounts;
  ASSIGN_OR_RETURN(facts.volume_image_ids,
                   MountImageVolumes(images, facts.mounts, plan_.volumes_dir, userns_path, holds));
  if (plan_.idmap_bind_mounts) {
    RETURN_IF_ERROR(IdmapBindMounts(facts.mounts, userns_path, plan_.idmap_mounts_dir));
  }
  return OkStatus();
}

Status ContainerRootfs::ReadFacts(const oci::ContainerConfig& config,
                                  ContainerRootfsFacts& facts) const {
  // An image without these files gets numeric users only (the spec says so).
  auto passwd = ReadFileInRoot(record_.rootfs, "etc/passwd");
  if (passwd.ok()) facts.etc_passwd = *passwd;
  auto group = ReadFileInRoot(record_.rootfs, "etc/group");
  if (group.ok()) facts.etc_group = *group;
  if (auto path = oci::SeccompLocalhostPath(config.security_context)) {
    auto content = ReadFile(*path);
    if (!content.ok()) {
      return Annotate(content.status(), StrCat("seccomp profile of container ", record_.name));
    }
    facts.seccomp_localhost_content = *content;
  }
  return OkStatus();
}

monitor::MonitorSpec MonitorSpecFor(const ContainerRecord& record, const ContainerPlan& plan,
                                    const oci::OciRuntime& runtime,
                                    const std::filesystem::path& monitor_binary) {
  monitor::MonitorSpec ms;
  ms.monitor_binary = monitor_binary;
  ms.container_id = record.id;
  ms.bundle = record.bundle;
  ms.runtime = runtime.binary();
  ms.runtime_root = runtime.state_root();
  ms.runtime_args = runtime.global_args();
  ms.log_path = plan.monitor_log_path;
  ms.terminal = record.tty;
  ms.stdin_open = record.stdin_open;
  ms.stdin_once = record.stdin_once;
  ms.monitor_log = fs::path(record.bundle) / "monitor.log";
  ms.delete_on_exit = true;  // RemoveContainer then runs no runtime
  return ms;
}

}  // namespace berth::container
