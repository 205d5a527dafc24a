// Image references ("busybox", "registry.k8s.io/pause:3.9", "localhost:5000/a/b@sha256:...")
// parsed and normalised the way Docker and containerd do it, following the grammar of the
// distribution project's reference package:
//
//   reference      := name [ ":" tag ] [ "@" digest ]
//   name           := [ domain "/" ] path-component [ "/" path-component ]*
//   domain         := host [ ":" port ]      host: dot-separated labels or "[ipv6]"
//   path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*    separator: "." | "_" | "__" | "-"+
//   tag            := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//
// Pure functions and plain values: no I/O, safe to use from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/status.h"

namespace berth::image {

// The registry that unqualified names ("busybox", "library/busybox") refer to.
inline constexpr std::string_view kDockerHubDomain = "docker.io";
// Docker Hub's legacy name; normalised to kDockerHubDomain.
inline constexpr std::string_view kLegacyDockerHubDomain = "index.docker.io";
// Prefix of single-component repositories on Docker Hub ("busybox" -> "library/busybox").
inline constexpr std::string_view kOfficialRepoPrefix = "library/";
inline constexpr std::string_view kDefaultTag = "latest";
// Longest name (domain + "/" + path, as written) accepted.
inline constexpr size_t kMaxNameLength = 255;
inline constexpr size_t kMaxTagLength = 128;

// A normalised reference. Values produced by ParseReference always have a non-empty domain
// and repository, and a tag, a digest, or both.
struct Reference {
  std::string domain;      // "docker.io", "127.0.0.1:5000", "localhost:5000", "[::1]:5000"
  std::string repository;  // path without domain: "library/busybox", "e2e-test-images/busybox"
  std::string tag;         // empty when only a digest was given
  std::optional<Digest> digest;

  // "docker.io/library/busybox".
  std::string Name() const;
  // The full normalised form: Name()[":" tag]["@" digest].
  std::string String() const;
  // "docker.io/library/busybox:1.36"; empty when there is no tag.
  std::string TagRef() const;
  // "docker.io/library/busybox@sha256:..." for the given digest (not necessarily `digest`).
  std::string DigestRef(const Digest& d) const;

  bool operator==(const Reference&) const = default;
};

// Parses what a user types into a normalised Reference:
//  - the first path component is a domain iff it contains '.' or ':' or is "localhost";
//    otherwise the domain is docker.io;
//  - "index.docker.io" becomes "docker.io"; docker.io names of one component get "library/";
//  - tag "latest" is added when neither a tag nor a digest is given; a name with both keeps both;
//  - only sha256 digests are accepted (see common/digest.h).
// Errors are INVALID_ARGUMENT and name the input and what is wrong with it (empty, a URL scheme,
// whitespace, uppercase in the repository, a bad tag or digest, a name over 255 characters, a bare
// 64-hex image ID, ...).
//
// Note: "sha256:<64 hex>" is a syntactically valid reference (repository "library/sha256" with a
// hex tag); callers that accept image IDs must test LooksLikeImageId first.
StatusOr<Reference> ParseReference(std::string_view text);

// True iff `text` is a bare 64-hex image ID or "sha256:<64 hex>" (lowercase hex), the forms
// ImageStatus and RemoveImage accept in place of a reference.
bool LooksLikeImageId(std::string_view text);

}  // namespace berth::image
