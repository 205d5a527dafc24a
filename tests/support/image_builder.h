// Builds container images for tests and benchmarks entirely in memory: layer tar
// streams (pax, via libarchive), compressed blobs, image configs, manifests and
// indexes, in Docker v2 or OCI media types. Nothing touches Docker or the network;
// the only host input is /bin/busybox (Debian's busybox-static) for BusyboxLayer().
//
// Everything is deterministic: the same spec gives byte-identical blobs (fixed
// mtimes, ownership and timestamps; the compressors are deterministic for a given
// level), so tests can assert on digests and benchmarks can reuse them.
//
// Thread safety: all functions are pure (no shared state) and may be called from
// any thread concurrently.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/status.h"

namespace berth::testing {

// The modification time stamped on every entry unless a FileSpec says otherwise
// (2023-11-14T22:13:20Z); also the "created" time of configs.
inline constexpr int64_t kFixedMtime = 1700000000;
inline constexpr std::string_view kFixedCreated = "2023-11-14T22:13:20Z";
inline constexpr std::string_view kDefaultPathEnv =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The user/group the busybox layer defines besides root and nobody.
inline constexpr uid_t kBerthUserUid = 1234;
inline constexpr gid_t kBerthUserGid = 1234;
// A group whose only member is berthuser (a supplementary group for tests).
inline constexpr gid_t kBerthExtraGid = 5678;

// One tar entry. `path` may be written with or without a leading '/': ordinary
// layers store it relative ("bin/sh"), as images do. Entries are written in the
// order given, and parent directories are NOT added implicitly.
struct FileSpec {
  enum Type { kFile, kDir, kSymlink, kHardlink, kCharDev, kBlockDev, kFifo };

  std::string path;
  std::string content;  // kFile only
  mode_t mode = 0644;   // permission bits incl. setuid/setgid/sticky; type bits come from `type`
  uid_t uid = 0;
  gid_t gid = 0;
  Type type = kFile;
  std::string link_target;  // kSymlink: stored verbatim; kHardlink: a path inside the layer
  dev_t rdev = 0;           // kCharDev / kBlockDev, e.g. makedev(1, 3)
  std::map<std::string, std::string> xattrs;  // e.g. {"user.k", "v"}, stored as pax SCHILY.xattr
  int64_t mtime = kFixedMtime;

  static FileSpec File(std::string path, std::string content, mode_t mode = 0644);
  static FileSpec Dir(std::string path, mode_t mode = 0755);
  static FileSpec Symlink(std::string path, std::string target);
  // A hard link's header should carry its target's mode: containerd and Docker chmod
  // the (shared) inode to it when applying the layer.
  static FileSpec Hardlink(std::string path, std::string target, mode_t mode = 0644);
};

enum class Compression { kNone, kGzip, kZstd };

struct LayerSpec {
  std::vector<FileSpec> entries;
  Compression compression = Compression::kGzip;
  // When set, names and link targets are written byte-for-byte (no leading '/'
  // stripped, ".." allowed): see RawTarLayer(). Otherwise a name containing a ".."
  // component is rejected with InvalidArgument.
  bool preserve_names = false;
  // Overrides the layer media type in the manifest (e.g. an unknown type, to test
  // rejection). Empty: derived from the image's MediaTypes and `compression`.
  std::string media_type;
};

// A whiteout entry hiding `path` of a lower layer: "<dir>/.wh.<name>".
FileSpec WhiteoutFile(std::string_view path);
// An opaque-directory marker: "<dir>/.wh..wh..opq".
FileSpec OpaqueDir(std::string_view dir);

// A layer with bin/busybox (the host's /bin/busybox, 0755) and hard links to it for
// common applets (sh, ls, cat, echo, sleep, id, true, false, env, ps, ...: see
// BusyboxApplets()), etc/passwd (root 0, nobody 65534, berthuser 1234), etc/group
// (also "berthextra" 5678 with member berthuser), root/ (0700), home/berthuser/
// (owned 1234:1234) and tmp/ (1777). Fails if /bin/busybox cannot be read.
StatusOr<LayerSpec> BusyboxLayer(Compression compression = Compression::kGzip);
const std::vector<std::string>& BusyboxApplets();

// `files` files under data/ ("data/file-0000", ...) totalling `total_bytes` bytes of
// pseudo-random (practically incompressible) content, fully determined by `seed`.
LayerSpec RandomDataLayer(uint64_t total_bytes, int files, uint64_t seed,
                          Compression compression = Compression::kGzip);

// A layer whose names and link targets are written exactly as given, for security
// tests: "../x", "/abs", symlinks to "/" or "../..", hard links to "../../etc/passwd".
LayerSpec RawTarLayer(std::vector<FileSpec> entries, Compression compression = Compression::kGzip);

struct BuiltBlob {
  std::string media_type;
  std::string data;
  Digest digest = Digest::FromHex(std::string(64, '0'));

  size_t size() const { return data.size(); }
};

// Computes the digest of `data` and returns the blob.
BuiltBlob MakeBlob(std::string media_type, std::string data);

// The same blob with one byte flipped (same size; `digest` still names the original
// content), for digest-mismatch tests. An empty blob is returned unchanged.
BuiltBlob CorruptCopy(const BuiltBlob& blob);

enum class MediaTypes { kDocker, kOci };

namespace media_types {
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
// Not in the Docker spec, but accepted by containerd for uncompressed layers.
inline constexpr std::string_view kDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
}  // namespace media_types

// Layer media type for a compression; InvalidArgument for Docker + zstd (Docker
// defines no zstd layer type: use MediaTypes::kOci).
StatusOr<std::string> LayerMediaType(MediaTypes media, Compression compression);

// The tar stream of `entries` (pax format, libarchive). `preserve_names` as in LayerSpec.
StatusOr<std::string> WriteTar(const std::vector<FileSpec>& entries, bool preserve_names);
// gzip (zlib, no name, mtime 0) or zstd (level 3, content size in the frame header).
StatusOr<std::string> Compress(std::string_view data, Compression compression);

struct BuiltLayer {
  BuiltBlob blob;   // compressed; blob.digest is the layer digest
  std::string tar;  // the uncompressed tar stream
  Digest diff_id = Digest::FromHex(std::string(64, '0'));  // sha256 of `tar`
};
StatusOr<BuiltLayer> BuildLayer(const LayerSpec& layer, MediaTypes media);

struct ImageSpec {
  std::vector<LayerSpec> layers;
  MediaTypes media = MediaTypes::kDocker;
  // Image config ("config" object of the image config JSON). Empty values are omitted.
  std::string user;
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::vector<std::string> volumes;        // "Volumes": {"/data": {}}
  std::vector<std::string> exposed_ports;  // "ExposedPorts": {"80/tcp": {}}
  // Platform, written to the config and (for an index) to the descriptor.
  std::string architecture = "amd64";
  std::string os = "linux";
  std::string variant;
  // Manifest annotations (OCI only; ignored for Docker).
  std::map<std::string, std::string> annotations;
};

// A busybox image: BusyboxLayer(), Env = kDefaultPathEnv, Cmd = ["/bin/sh"].
StatusOr<ImageSpec> BusyboxImageSpec(MediaTypes media = MediaTypes::kDocker);

// Everything needed to push one image. Push order: `blobs` (any order), then
// `child_manifests` under their digests, then `top` under the tag (or digest).
struct BuiltImage {
  // Layers and configs, deduplicated by digest (several platforms may share a layer).
  std::vector<BuiltBlob> blobs;
  // For an index: the per-platform manifests, in the order of the index. Empty
  // for a single-platform image.
  std::vector<BuiltBlob> child_manifests;
  // The manifest (single platform) or the index / manifest list.
  BuiltBlob top;
  // Image ID: the config digest of the image, or, for an index, of the linux/amd64
  // entry (of the first entry if there is none).
  Digest config_digest = Digest::FromHex(std::string(64, '0'));
  // diff_ids and layer digests of that same image, bottom layer first.
  std::vector<Digest> diff_ids;
  std::vector<Digest> layer_digests;
  // The uncompressed size of that image's layers (sum of tar sizes).
  uint64_t uncompressed_size = 0;
};

// A single-platform image: manifest + config + layers. Fails on a layer that cannot
// be written (bad name, Docker + zstd, ...); errors name the layer and entry.
StatusOr<BuiltImage> BuildImage(const ImageSpec& spec);

// An OCI index (MediaTypes::kOci) or Docker manifest list (kDocker) with one manifest
// per spec, each built with `media` (the specs' own `media` is ignored). Specs must
// have distinct platforms.
StatusOr<BuiltImage> BuildMultiPlatformImage(const std::vector<ImageSpec>& per_platform,
                                             MediaTypes media);

// Three copies of `base` for linux/amd64, linux/arm64/v8 and linux/arm/v7, each with
// one more layer holding "platform" (content "linux/amd64", "linux/arm64/v8",
// "linux/arm/v7", no newline) so a test can tell which one was unpacked. The binaries
// of `base` are not changed (all run on the amd64 host).
std::vector<ImageSpec> StandardPlatformSpecs(const ImageSpec& base);

// "linux/amd64", "linux/arm64/v8": the platform of a spec.
std::string PlatformString(const ImageSpec& spec);

}  // namespace berth::testing
