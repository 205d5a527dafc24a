// Image manifests, indexes (manifest lists) and image configs in the Docker v2 schema 2 and OCI
// image-spec media types: constants, parsing with validation, platform selection, chain IDs and
// the CRI reading of the config's User.
//
// Everything here is a pure function of its arguments (HostPlatform() asks uname(2) once per
// call); no file or network I/O. Safe to call from any thread.
//
// Error codes of the Parse* functions: bytes that are not JSON at all -> DATA_LOSS (the blob is
// corrupt); JSON of the wrong shape or with invalid values -> INVALID_ARGUMENT. Every message
// names the blob by the sha256 digest of the body ("manifest sha256:...: ...").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/media_types.h"
#include "common/status.h"

namespace berth::image {

// Manifests and indexes (common/media_types.h).
using ::berth::kMediaTypeDockerManifest;
using ::berth::kMediaTypeDockerManifestList;
using ::berth::kMediaTypeOciIndex;
using ::berth::kMediaTypeOciManifest;
// Schema 1 (recognised only to be refused with UNIMPLEMENTED).
inline constexpr std::string_view kMediaTypeDockerSchema1Manifest =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kMediaTypeDockerSchema1SignedManifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// Image configs.
inline constexpr std::string_view kMediaTypeDockerConfig =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";

// Layers.
inline constexpr std::string_view kMediaTypeDockerLayer =
    "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kMediaTypeDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kMediaTypeDockerLayerForeign =
    "application/vnd.docker.image.rootfs.foreign.diff.tar";
inline constexpr std::string_view kMediaTypeDockerLayerForeignGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr std::string_view kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kMediaTypeOciLayerNondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerNondistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerNondistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Annotation by which BuildKit marks index entries that hold attestations, not images.
inline constexpr std::string_view kAnnotationDockerReferenceType = "vnd.docker.reference.type";
inline constexpr std::string_view kAttestationManifest = "attestation-manifest";

// The Accept header value a registry client sends for manifests: the four types above.
std::string ManifestAcceptHeader();

enum class LayerCompression { kNone, kGzip, kZstd };

struct LayerMediaType {
  LayerCompression compression = LayerCompression::kNone;
  // Foreign (Docker) and nondistributable (OCI) layers: blobs may live at descriptor urls.
  bool non_distributable = false;
};

// Classifies a layer media type; INVALID_ARGUMENT naming the type if it is not a known layer.
StatusOr<LayerMediaType> ClassifyLayerMediaType(std::string_view mt);
bool IsConfigMediaType(std::string_view mt);

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // "amd64", "arm64", "arm"
  std::string variant;       // "v8", "v7", ""
  std::string os_version;    // Windows only, "10.0.17763.1234"

  // "linux/arm64/v8" or "linux/amd64" (no trailing '/' without variant).
  std::string String() const;
  bool operator==(const Platform&) const = default;
};

// Parses "os/arch[/variant]" (e.g. from a config file or CLI flag), normalised as below.
StatusOr<Platform> ParsePlatform(std::string_view text);

// Lowercases and canonicalises the way containerd does: x86_64 -> amd64 (variant v1 -> ""),
// aarch64 -> arm64 (variant "8"/"v8" -> "v8", empty stays empty), armhf -> arm/v7,
// armel -> arm/v6, arm "" or "7" -> "v7", "6" -> "v6", i386/i686 -> 386, macos -> darwin.
Platform NormalizePlatform(Platform p);

// The platform of a `uname -m` machine name: x86_64 -> linux/amd64, aarch64/arm64 ->
// linux/arm64/v8, armv7l -> linux/arm/v7, armv6l -> linux/arm/v6, armv5* -> linux/arm/v5, i?86 ->
// linux/386; anything else is passed through as the architecture.
Platform PlatformForMachine(std::string_view machine);
// PlatformForMachine(uname().machine); os is always "linux".
Platform HostPlatform();

// True iff `have` can run where `want` is wanted (same os and architecture after normalisation,
// compatible variant; see SelectPlatform).
bool PlatformMatches(const Platform& want, const Platform& have);

struct Descriptor {
  std::string media_type;
  // Always a valid digest in parsed values; the default is an empty placeholder because
  // Digest has no default constructor.
  Digest digest = Digest::FromHex("");
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
  std::vector<std::string> urls;
};

// Which of the four manifest media types a body is.
enum class ManifestKind { kDockerManifest, kDockerManifestList, kOciManifest, kOciIndex };

bool IsIndex(ManifestKind kind);  // manifest list or OCI index
std::string_view MediaTypeOf(ManifestKind kind);

// Decides what a manifest body is: by the Content-Type header (parameters after ';' ignored),
// falling back to the body's "mediaType", then to its shape ("manifests" -> OCI index,
// "config"/"layers" -> OCI manifest) when the header is empty, generic or unknown.
// Refuses bodies whose "mediaType" or shape contradicts the header (an index served as a manifest
// or the reverse). Schema 1 (by header or "schemaVersion": 1) -> UNIMPLEMENTED
// "schema 1 manifests are not supported".
StatusOr<ManifestKind> DetectKind(std::string_view media_type_header, std::string_view body);

struct ImageIndex {
  Digest digest = Digest::FromHex("");  // sha256 of the parsed body
  int schema_version = 2;
  std::string media_type;  // as written in the body; may be empty for OCI
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct ImageManifest {
  Digest digest = Digest::FromHex("");  // sha256 of the parsed body
  int schema_version = 2;
  std::string media_type;  // as written in the body; may be empty for OCI
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
  std::optional<Descriptor> subject;
};

// Parses an index or manifest list. Requires schemaVersion 2, a "manifests" array of valid
// descriptors (mediaType, sha256 digest, size >= 0), and no "config"/"layers".
StatusOr<ImageIndex> ParseIndex(std::string_view body);
// Parses an image manifest. Requires schemaVersion 2, a "config" descriptor, a "layers" array
// (may be empty) and no "manifests". Media types of config and layers are not checked here; see
// ValidateImageManifest.
StatusOr<ImageManifest> ParseManifest(std::string_view body);

// The "config" object of an image config: the defaults for containers made from the image.
struct ContainerDefaults {
  std::string user;
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::vector<std::string> exposed_ports;  // keys of ExposedPorts, "80/tcp", sorted
  std::vector<std::string> volumes;        // keys of Volumes, "/data", sorted
};

struct ImageConfig {
  Digest digest = Digest::FromHex("");  // sha256 of the body: the image ID
  std::string raw;                      // the body as given
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  ContainerDefaults config;
  std::vector<Digest> diff_ids;  // rootfs.diff_ids, base layer first
  std::string created;           // RFC 3339 as written; empty if absent
  size_t history_count = 0;
};

// Parses an image config. Requires a JSON object with rootfs.type == "layers" and
// rootfs.diff_ids an array of sha256 digests; optional fields must have their documented types
// (null is accepted for absent).
StatusOr<ImageConfig> ParseImageConfig(std::string_view body);

// Checks that `manifest` describes a runnable container image: config media type is a Docker or
// OCI image config and every layer has a known layer media type. INVALID_ARGUMENT naming the
// manifest digest otherwise (e.g. an artifact such as a Helm chart).
Status ValidateImageManifest(const ImageManifest& manifest);
// Checks that the manifest's layers match the config's diff_ids one to one (same count) and that
// the config descriptor's digest is the config's digest. INVALID_ARGUMENT naming both otherwise.
Status ValidateManifestAgainstConfig(const ImageManifest& manifest, const ImageConfig& config);

// Picks the entry of `index` to pull for `want`, following containerd's matcher: os and
// architecture must match after NormalizePlatform; the variant must be the wanted one or an older
// compatible one (arm v7 accepts v6 then v5; amd64 v3 accepts v2 then v1; arm64 v8 and "" are
// the same). The closest variant wins; among equals the first in index order. Entries without a
// platform are accepted after all matching ones (as containerd does); attestation entries
// (platform unknown/unknown or the attestation-manifest annotation) are never chosen.
std::optional<Descriptor> SelectPlatform(const ImageIndex& index, const Platform& want);

// ChainID per the OCI image spec: ChainID(L0) = DiffID(L0),
// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) over the "sha256:..." text forms.
// Precondition: diff_ids is not empty (an empty list yields an empty Digest, hex() == "").
Digest ChainId(const std::vector<Digest>& diff_ids);
// The chain ID of every prefix: result[i] = ChainId(diff_ids[0..i]).
std::vector<Digest> ChainIds(const std::vector<Digest>& diff_ids);

// The CRI ImageStatus reading of a config's User: "123" or "123:456" -> uid 123;
// "nobody" or "nobody:grp" -> username "nobody"; "" -> neither.
struct ImageUser {
  std::optional<int64_t> uid;
  std::string username;
  bool operator==(const ImageUser&) const = default;
};
ImageUser ParseImageUser(std::string_view user);

}  // namespace berth::image
