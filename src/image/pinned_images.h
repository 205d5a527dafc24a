// Which images are pinned: reported with `pinned: true`, which the kubelet's
// image garbage collection skips. Configured as patterns (config
// images.pinned_images, --pinned-image):
//   - a reference in any form a pull accepts ("busybox", "registry.k8s.io/pause:3.9",
//     "repo@sha256:..."), normalised, matching an image with that tag or digest name;
//   - an image ID ("sha256:<64 hex>");
//   - a name prefix ending in '*' ("registry.k8s.io/*", "docker.io/library/busybox:*"),
//     matching any tag or digest name that starts with it (as normalised names are written).
// Pinning is not protection against an explicit RemoveImage: like containerd and CRI-O,
// berthd removes a pinned image when asked to; the kubelet never asks.
// Immutable after Parse; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "image/image_store.h"

namespace berth::image {

class PinnedImages {
 public:
  PinnedImages() = default;
  // INVALID_ARGUMENT naming the pattern when one is not a reference, an
  // image ID or a prefix with '*' at its end only.
  static StatusOr<PinnedImages> Parse(const std::vector<std::string>& patterns);

  bool Matches(const ImageRecord& record) const;
  bool empty() const { return exact_.empty() && prefixes_.empty(); }

 private:
  std::vector<std::string> exact_;     // normalised references and "sha256:" IDs
  std::vector<std::string> prefixes_;  // without the '*'
};

}  // namespace berth::image
