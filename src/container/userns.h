// The container side of pods with a user namespace of their own: the
// rootfs overlay and image volumes made of ID-mapped layers, and CRI bind
// mounts ID-mapped, all through the pod's pinned user namespace (see
// common/userns.h), so that the pod's root owns the image's files and a
// volume's files keep their owners on the host.
//
// overlayfs itself cannot be ID-mapped; its layers can (Linux 5.19+). Each
// layer is bind-mounted ID-mapped below a scratch directory, the overlay is
// mounted on those, and the helper mounts are detached at once: overlayfs
// holds private clones of its layers.
//
// Free functions; thread-safety is the caller's (one create per container).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <vector>

#include "common/status.h"
#include "oci/container_config.h"

namespace berth::container {

// An overlay at `target` of `lowers` (top-most first) and, unless
// `rw_dir` is empty, the writable `rw_dir`/upper with `rw_dir`/work. The
// lower layers are ID-mapped through the user namespace pinned at
// `userns_path`. The upper one is not: overlayfs creates its work
// directories as the mounter (host root), which an ID-mapped mount cannot
// represent (EOVERFLOW, and the overlay falls back to read-only). So the
// writable layer stores host IDs, and its root is chowned to `upper_owner`
// (the host IDs of the container's root) so that the merged root is root's.
// `flags`: mount(2) flags of the overlay (MS_RDONLY...). Helper mounts go
// below `scratch` (created) and are gone when this returns.
Status MountIdmappedOverlay(const std::vector<std::filesystem::path>& lowers_top_first,
                            const std::filesystem::path& rw_dir, uid_t upper_uid, gid_t upper_gid,
                            const std::filesystem::path& target, unsigned long flags,
                            const std::filesystem::path& userns_path,
                            const std::filesystem::path& scratch);

// For every bind mount of `mounts` (not image volumes): an ID-mapped bind of
// its host_path at `dir`/<index>, which becomes its host_path. The mounts
// stay until UnmountEntriesAndRemove(dir) (container removal).
Status IdmapBindMounts(std::vector<oci::Mount>& mounts, const std::filesystem::path& userns_path,
                       const std::filesystem::path& dir);

}  // namespace berth::container
