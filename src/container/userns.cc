#include "container/userns.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"
#include "common/userns.h"

namespace berth::container {

namespace fs = std::filesystem;

namespace {

StatusOr<UniqueFd> OpenUserns(const fs::path& userns_path) {
  UniqueFd fd(::open(userns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoStatus(errno, StrCat("open the pod's user namespace ", userns_path.string()));
  }
  return fd;
}

}  // namespace

Status MountIdmappedOverlay(const std::vector<fs::path>& lowers_top_first, const fs::path& rw_dir,
                            uid_t upper_uid, gid_t upper_gid, const fs::path& target,
                            unsigned long flags, const fs::path& userns_path,
                            const fs::path& scratch) {
  ASSIGN_OR_RETURN(UniqueFd userns, OpenUserns(userns_path));
  RETURN_IF_ERROR(MakeDirs(scratch, 0700));
  std::vector<fs::path> helpers;
  ScopeGuard detach([&] {
    for (const auto& h : helpers) {
      ::umount2(h.c_str(), MNT_DETACH);
      ::rmdir(h.c_str());
    }
  });
  std::string lowerdir;
  for (size_t i = 0; i < lowers_top_first.size(); ++i) {
    const fs::path h = scratch / StrCat("l", i);
    RETURN_IF_ERROR(MakeDirs(h, 0700));
    helpers.push_back(h);
    RETURN_IF_ERROR(IdmappedBind(lowers_top_first[i], h, userns.get(), false));
    if (!lowerdir.empty()) lowerdir += ':';
    lowerdir += h.string();
  }
  std::string opts = StrCat("lowerdir=", lowerdir);
  if (!rw_dir.empty()) {
    const fs::path upper = rw_dir / "upper";
    if (::chown(upper.c_str(), upper_uid, upper_gid) != 0) {
      return ErrnoStatus(errno, StrCat("chown ", upper.string()));
    }
    opts += StrCat(",upperdir=", upper.string(), ",workdir=", (rw_dir / "work").string());
  }
  if (::mount("overlay", target.c_str(), "overlay", flags, opts.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("mount an overlay of ID-mapped layers at ", target.string()));
  }
  return OkStatus();  // `detach` drops the helpers: the overlay holds its own clones
}

Status IdmapBindMounts(std::vector<oci::Mount>& mounts, const fs::path& userns_path,
                       const fs::path& dir) {
  ASSIGN_OR_RETURN(UniqueFd userns, OpenUserns(userns_path));
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  for (size_t i = 0; i < mounts.size(); ++i) {
    oci::Mount& m = mounts[i];
    if (!m.image.empty()) continue;  // its layers are ID-mapped already
    const fs::path target = dir / std::to_string(i);
    struct stat st;
    if (::stat(m.host_path.c_str(), &st) != 0) {
      return ErrnoStatus(errno, StrCat("mount ", m.container_path, ": stat ", m.host_path));
    }
    if (S_ISDIR(st.st_mode)) {
      RETURN_IF_ERROR(MakeDirs(target, 0700));
    } else {
      UniqueFd f(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
      if (!f.valid()) return ErrnoStatus(errno, StrCat("create ", target.string()));
    }
    Status s =
        IdmappedBind(m.host_path, target, userns.get(), /*recursive=*/true,
                     /*receive_from_source=*/m.propagation != oci::MountPropagation::kPrivate);
    if (!s.ok()) return Annotate(s, StrCat("mount ", m.container_path));
    m.host_path = target.string();
  }
  return OkStatus();
}

}  // namespace berth::container
