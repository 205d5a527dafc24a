#include "container/image_volume.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/fs.h"
#include "container/userns.h"

namespace berth::container {

namespace fs = std::filesystem;

Status ValidateImageSubPath(std::string_view sub_path) {
  if (sub_path.empty()) return OkStatus();
  if (sub_path.front() == '/') {
    return InvalidArgumentError(
        StrCat("image sub path \"", sub_path, "\" must be relative to the image's root"));
  }
  size_t start = 0;
  while (start <= sub_path.size()) {
    size_t end = sub_path.find('/', start);
    if (end == std::string_view::npos) end = sub_path.size();
    if (sub_path.substr(start, end - start) == "..") {
      return InvalidArgumentError(
          StrCat("image sub path \"", sub_path, "\" must not contain \"..\""));
    }
    start = end + 1;
  }
  if (sub_path.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("image sub path contains a NUL byte");
  }
  return OkStatus();
}

StatusOr<std::string> ResolveInRoot(const fs::path& root, std::string_view rel) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus(errno, StrCat("open ", root.string()));
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  // Symlinks inside the image are followed with the image as "/"; none can
  // lead out of it, nor onto another mount.
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  const std::string path(rel);
  int fd = static_cast<int>(::syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how));
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return NotFoundError(StrCat("\"", rel, "\" does not exist in the image"));
    }
    return ErrnoStatus(errno, StrCat("resolve \"", rel, "\" in ", root.string()));
  }
  UniqueFd target(fd);
  std::error_code ec;
  fs::path real = fs::read_symlink(StrCat("/proc/self/fd/", target.get()), ec);
  if (ec) return InternalError(StrCat("read /proc/self/fd of ", path, ": ", ec.message()));
  // The kernel resolved it in the root; a path outside it would be a bug.
  std::string r = real.string();
  const std::string base = root.string();
  if (r != base && !r.starts_with(base + "/")) {
    return InternalError(StrCat("\"", rel, "\" resolved outside the image to ", r));
  }
  return r;
}

StatusOr<std::string> MountImageVolume(const snapshot::LayerStore& layers,
                                       const image::ImageRecord& image, const fs::path& mount_point,
                                       std::string_view sub_path, const fs::path& userns_path) {
  RETURN_IF_ERROR(ValidateImageSubPath(sub_path));
  if (image.diff_ids.empty()) {
    return FailedPreconditionError(StrCat("image ", image.id, " has no layers"));
  }
  for (const auto& d : image.diff_ids) {
    if (!layers.Has(d)) {
      return FailedPreconditionError(
          StrCat("layer ", d.str(), " of image ", image.id, " is missing; pull the image again"));
    }
  }
  // overlayfs without an upper directory wants two lower directories at
  // least: an empty one at the bottom serves single-layer images, and hides
  // nothing (the layers' whiteouts have nothing below them to hide anyway).
  const fs::path empty = mount_point.parent_path() / ".empty";
  RETURN_IF_ERROR(MakeDirs(empty, 0755));
  RETURN_IF_ERROR(MakeDirs(mount_point, 0755));
  // Read-only, no set-user-ID and no device nodes, as containerd and CRI-O
  // mount image volumes: an image's setuid binary must not gain privilege
  // through a volume. The spec builder adds nosuid,nodev to the runtime's
  // bind of it, because in a pod with a user namespace the flags of a bind
  // source are locked and a read-only remount naming fewer is refused.
  const unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV;
  if (!userns_path.empty()) {
    std::vector<fs::path> lowers;
    for (const auto& d : image.diff_ids) lowers.push_back(layers.LayerDir(d));
    std::reverse(lowers.begin(), lowers.end());  // the top layer first
    lowers.push_back(empty);
    RETURN_IF_ERROR(MountIdmappedOverlay(
        lowers, {}, 0, 0, mount_point, flags, userns_path,
        mount_point.parent_path() / StrCat(".idmap-", mount_point.filename().string())));
  } else {
    const std::string opts =
        StrCat("lowerdir=", layers.LowerDirOption(image.diff_ids), ":", empty.string());
    if (::mount("overlay", mount_point.c_str(), "overlay", flags, opts.c_str()) != 0) {
      return ErrnoStatus(errno, StrCat("mount image ", image.id, " at ", mount_point.string()));
    }
  }
  ScopeGuard unmount([&] { ::umount2(mount_point.c_str(), MNT_DETACH); });
  std::string host_path = mount_point.string();
  if (!sub_path.empty()) {
    auto resolved = ResolveInRoot(mount_point, sub_path);
    if (!resolved.ok()) {
      return Status(resolved.status().code(), StrCat("sub path \"", sub_path, "\" of image ",
                                                     image.id, ": ", resolved.status().message()));
    }
    host_path = *resolved;
  }
  unmount.Cancel();
  return host_path;
}

StatusOr<std::vector<std::string>> MountImageVolumes(image::ImageService& images,
                                                     std::vector<oci::Mount>& mounts,
                                                     const fs::path& volumes_dir,
                                                     const fs::path& userns_path,
                                                     std::vector<image::ImageHold>* holds) {
  std::vector<std::string> ids(mounts.size());
  for (size_t i = 0; i < mounts.size(); ++i) {
    oci::Mount& m = mounts[i];
    if (m.image.empty()) continue;
    image::ImageHold hold;
    auto img = images.Use(m.image, &hold);
    if (!img.ok()) {
      return NotFoundError(StrCat("image volume ", m.container_path, ": image \"", m.image,
                                  "\" is not present; pull it first"));
    }
    auto host_path = MountImageVolume(images.layers(), *img, volumes_dir / std::to_string(i),
                                      m.image_sub_path, userns_path);
    if (!host_path.ok()) {
      return Annotate(host_path.status(), StrCat("image volume ", m.container_path));
    }
    holds->push_back(std::move(hold));
    m.host_path = *host_path;
    m.readonly = true;
    ids[i] = img->id;
  }
  return ids;
}

Status UnmountEntriesAndRemove(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return OkStatus();
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const fs::path& p = e.path();
    // A mount point may be mounted more than once (never by berthd, but a
    // detach of the top one must not leave one below).
    for (int i = 0; i < 8; ++i) {
      if (::umount2(p.c_str(), MNT_DETACH) != 0) {
        if (errno == EINVAL || errno == ENOENT) break;  // not (or no longer) a mount point
        return ErrnoStatus(errno, StrCat("unmount ", p.string()));
      }
    }
  }
  if (ec) return InternalError(StrCat("list ", dir.string(), ": ", ec.message()));
  return RemoveAll(dir);
}

}  // namespace berth::container
