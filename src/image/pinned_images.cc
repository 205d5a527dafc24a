#include "image/pinned_images.h"

#include <algorithm>

#include "image/reference.h"

namespace berth::image {

StatusOr<PinnedImages> PinnedImages::Parse(const std::vector<std::string>& patterns) {
  PinnedImages out;
  for (const std::string& p : patterns) {
    if (p.empty()) return InvalidArgumentError("pinned image pattern is empty");
    const size_t star = p.find('*');
    if (star != std::string::npos) {
      if (star != p.size() - 1 || star == 0) {
        return InvalidArgumentError(StrCat("pinned image pattern \"", p,
                                           "\": '*' may only end a name prefix, e.g. "
                                           "\"registry.k8s.io/*\""));
      }
      out.prefixes_.push_back(p.substr(0, star));
      continue;
    }
    if (LooksLikeImageId(p)) {
      out.exact_.push_back(p.starts_with("sha256:") ? p : StrCat("sha256:", p));
      continue;
    }
    StatusOr<Reference> ref = ParseReference(p);
    if (!ref.ok()) {
      return InvalidArgumentError(
          StrCat("pinned image pattern \"", p, "\": ", ref.status().message()));
    }
    // "name:tag@digest" pins by both names.
    if (!ref->tag.empty()) out.exact_.push_back(ref->TagRef());
    if (ref->digest) out.exact_.push_back(ref->DigestRef(*ref->digest));
  }
  return out;
}

bool PinnedImages::Matches(const ImageRecord& record) const {
  auto hit = [&](const std::string& name) {
    if (std::find(exact_.begin(), exact_.end(), name) != exact_.end()) return true;
    return std::any_of(prefixes_.begin(), prefixes_.end(),
                       [&](const std::string& prefix) { return name.starts_with(prefix); });
  };
  if (hit(record.id)) return true;
  return std::any_of(record.repo_tags.begin(), record.repo_tags.end(), hit) ||
         std::any_of(record.repo_digests.begin(), record.repo_digests.end(), hit);
}

}  // namespace berth::image
