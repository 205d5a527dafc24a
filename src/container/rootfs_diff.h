// The writable layer of a container as a checkpoint archive carries it
// (CRI-O's and containerd's `rootfs-diff.tar` and `deleted.files`): what the
// container added or changed, as a tar of its overlay upper directory, and
// what it deleted, as the list of paths its whiteouts hide.
//
// Free functions over a directory; no state. The caller keeps the directory
// from being removed while it is read (files may still change under a
// running container: the archive is a best-effort copy, as in CRI-O).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::container {

struct RootfsDiff {
  size_t entries = 0;                // written to the tar (directories included)
  std::vector<std::string> deleted;  // absolute container paths, sorted ("/etc/motd")
  std::vector<std::string> opaque;   // directories made opaque (deleted, then made again)
};

// Writes every entry below `upper` (an overlayfs upper directory) to a tar
// at `tar_path`, named relative to it ("etc/hosts"), in sorted order, with
// its mode, owner and modification time: directories, regular files
// (streamed, not read whole), symbolic links, device nodes and FIFOs.
// Whiteouts (character devices 0/0) are not archived: their paths go to
// `deleted`. An opaque directory (xattr trusted.overlay.opaque=y) is
// archived with its new content and that xattr, and listed in `opaque`.
// Sockets are skipped. An absent `upper` is an empty diff.
StatusOr<RootfsDiff> WriteRootfsDiff(const std::filesystem::path& upper,
                                     const std::filesystem::path& tar_path);

// `deleted` as the JSON array CRI-O and Podman write to deleted.files.
std::string DeletedFilesJson(const std::vector<std::string>& deleted);

}  // namespace berth::container
