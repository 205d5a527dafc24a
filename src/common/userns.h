// User namespaces and ID-mapped mounts, done by berthd itself (no help from
// the OCI runtime, so that they work with runc 1.1 as well as newer ones):
//
//  - a user namespace with given UID/GID mappings, pinned by a bind mount of
//    its nsfs file (one per pod, as CRI-O and containerd keep one);
//  - network, IPC and UTS namespaces made *inside* such a user namespace, so
//    that a container of the pod, root in the user namespace, may mount
//    sysfs and mqueue for them and set its hostname;
//  - ID-mapped bind mounts (mount_setattr MOUNT_ATTR_IDMAP, Linux 5.12+):
//    a file owned by UID u on disk shows as the host UID that container UID
//    u maps to, so the pod's root owns the image's files and a volume's
//    files keep their owners on the host.
//
// Namespaces are entered only in short-lived child processes (setns into a
// user namespace needs a single-threaded caller); berthd's own threads
// never change namespace. Free functions; no shared state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/status.h"

namespace berth {

// One line of /proc/<pid>/uid_map: container IDs [container_id,
// container_id + length) are host IDs [host_id, host_id + length).
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t length = 0;
  bool operator==(const IdMapping&) const = default;
};

// Checks mappings as the kernel would take them (1..340 lines, non-empty,
// no overlap on either side, no wrap-around). INVALID_ARGUMENT otherwise,
// naming `what` ("uid" or "gid").
Status ValidateIdMappings(const std::vector<IdMapping>& mappings, std::string_view what);

// The host ID container ID `id` maps to, or -1 when it is not mapped.
int64_t MapToHost(const std::vector<IdMapping>& mappings, uint32_t id);

// A new user namespace with these mappings, as an open nsfs file.
StatusOr<UniqueFd> NewUserNamespace(const std::vector<IdMapping>& uids,
                                    const std::vector<IdMapping>& gids);

// A new user namespace with these mappings, pinned at `path` (a file that
// must not exist yet; created). Undo with UnpinNamespaceFile.
Status PinNewUserNamespace(const std::filesystem::path& path, const std::vector<IdMapping>& uids,
                           const std::vector<IdMapping>& gids);

// New namespaces of the kinds in `pins` (CLONE_NEWNET, CLONE_NEWIPC,
// CLONE_NEWUTS), owned by the user namespace at `userns_path`, each pinned
// at its path (files that must exist, empty). With a UTS namespace,
// `hostname` is set in it.
Status PinNamespacesInUserNamespace(const std::filesystem::path& userns_path,
                                    const std::vector<std::pair<int, std::filesystem::path>>& pins,
                                    const std::string& hostname);

// Unmounts a pinned namespace file and removes it. Absent is success.
void UnpinNamespaceFile(const std::filesystem::path& path);

// Mounts `source` at `target` (an existing directory, or file for a file
// source) ID-mapped through the user namespace `userns_fd`. `recursive`:
// with every mount below `source` (rbind). FAILED_PRECONDITION naming the
// path and its filesystem when the kernel or the filesystem cannot ID-map.
//
// The clone is a slave of `source`'s mounts when `receive_from_source` (a
// mount made below `source` later shows up below `target`, for
// HostToContainer and Bidirectional binds), else private. Never shared with
// them: a clone of a shared mount starts in its peer group, and unmounting
// the clone's tree would then unmount the host's mounts below `source` too.
Status IdmappedBind(const std::filesystem::path& source, const std::filesystem::path& target,
                    int userns_fd, bool recursive, bool receive_from_source = false);

// The reasons ID-mapped container roots cannot work here, or OK: makes a
// user namespace, an ID-mapped bind mount of a directory below `scratch`
// (on the filesystem layers live on) and an overlay on ID-mapped layers,
// then removes them.
Status ProbeIdmappedOverlay(const std::filesystem::path& scratch);

}  // namespace berth
