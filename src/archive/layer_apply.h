// Applying one OCI/Docker image layer (a possibly compressed tar stream) into
// an empty directory, producing the overlayfs "diff" form of that layer, so the
// directory can serve as one lowerdir of an overlay mount.
//
// Every layer is unpacked into its own directory, independently of the other
// layers of the image: layers can be unpacked in parallel, and nothing in one
// layer (a symlink, say) influences where another layer's entries land.
//
// Conversion to overlayfs form:
//   - `.wh.<name>` becomes a character device 0:0 named `<name>` in the same
//     directory (owned by the header's uid/gid); the `.wh.` file itself is
//     never created.
//   - `.wh..wh..opq` sets the xattr `trusted.overlay.opaque` = "y" on the
//     directory that contains it; other `.wh..wh.*` names (aufs metadata) are
//     ignored.
//   - xattrs named `trusted.overlay.*` or `user.overlay.*` in the tar headers
//     are dropped: they are overlayfs state of the machine that built the
//     image (redirects, metacopy, origin), not content, and must not steer
//     this host's overlay mounts.
//
// What is kept (the caller runs as root, as containerd does): owner and group
// from the tar header, the full mode including setuid/setgid/sticky, device
// nodes (char, block) and fifos, xattrs from PAX headers (an xattr the
// filesystem does not support, ENOTSUP, is skipped), access and modification
// times (directories get theirs at the end, after their children are written),
// hard links, sparse files. Hard links share the inode of their target, whose
// metadata is that of the target's own header.
//
// Tar semantics: a later entry replaces an earlier one of the same name; a
// directory over a directory merges (the later header's metadata wins); a
// directory replaced by a non-directory is removed with its contents. Missing
// parent directories are created with mode 0755, owned by the caller. An entry
// naming the root itself ("./") is ignored, so `dest` keeps its own mode.
//
// Safety against hostile layers: nothing is ever created or written outside
// `dest`. Absolute entry names are taken relative to `dest`. Names and hard
// link targets whose `..` components climb above `dest` are rejected with
// INVALID_ARGUMENT naming the entry. Parent directories are resolved by the
// kernel with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
// from a descriptor of `dest`, so symlinks in the layer (absolute or relative)
// are followed as if `dest` were `/`; final components are created with *at
// calls that never follow a symlink. Hard links can only name files inside
// `dest`; a link to a missing target is INVALID_ARGUMENT.
//
// Limitation inherent to independent unpacking: an entry whose parent path
// goes through a symlink that exists only in a LOWER layer is created under a
// real directory of that name in this layer (Docker-built layers never contain
// such entries, since they are diffs of real filesystems).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "common/digest.h"
#include "common/status.h"

namespace berth::archive {

enum class Compression { kNone, kGzip, kZstd };

// Compression of a layer from its media type. Accepted (case-insensitive,
// media type parameters after ';' ignored):
//   application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]
//   application/vnd.oci.image.layer.nondistributable.v1.tar[+gzip|+zstd]
//   application/vnd.docker.image.rootfs.diff.tar[.gzip|.zstd]
//   application/vnd.docker.image.rootfs.foreign.diff.tar[.gzip]
// Anything else (including encrypted layers) is INVALID_ARGUMENT.
StatusOr<Compression> CompressionForMediaType(std::string_view media_type);

// Pull-style source of the (compressed) layer bytes: fills up to `n` bytes
// into `buf` and returns how many it wrote, 0 at the end of the stream, or an
// error, which aborts the apply and is returned by ApplyLayer unchanged.
using ReadFn = std::function<StatusOr<size_t>(char* buf, size_t n)>;

struct ApplyResult {
  // sha256 of the whole UNCOMPRESSED tar stream, including anything after the
  // tar end-of-archive marker: the layer's diff_id in the image config.
  Digest diff_id = Digest::FromHex("");
  uint64_t uncompressed_bytes = 0;
  // Number of tar entries read (every header, including whiteouts and
  // ignored ones; PAX/GNU extension headers are not entries).
  uint64_t entries = 0;
};

// Decompresses `read`'s stream (gzip: multi-member allowed; zstd: multi-frame
// allowed), hashes the tar stream while streaming and materialises its entries
// under `dest`, which must be an existing, empty directory.
//
// The diff_id is only computed here; comparing it with the image config is the
// caller's job (a mismatch means the layer must not be used).
//
// Errors: `dest` missing → NOT_FOUND; `dest` not empty → FAILED_PRECONDITION;
// corrupt or truncated compression or tar → DATA_LOSS; hostile or unsupported
// entries → INVALID_ARGUMENT naming the entry; file system errors name the
// path inside the layer; an error from `read` is returned as is. Messages do
// not name the layer: callers annotate with its digest.
//
// On any error `dest` is left partly filled: the CALLER must remove it (and its
// contents); ApplyLayer does not clean up.
//
// Thread safety: calls with different `dest` may run concurrently; `read` is
// only called from the calling thread. Must run as root (or with CAP_CHOWN,
// CAP_FOWNER, CAP_MKNOD and CAP_SYS_ADMIN for trusted.* xattrs) to keep
// ownership, device nodes and whiteouts.
StatusOr<ApplyResult> ApplyLayer(const ReadFn& read, Compression compression,
                                 const std::filesystem::path& dest);

}  // namespace berth::archive
