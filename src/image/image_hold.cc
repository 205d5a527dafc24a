// ImageService::Use and ImageHold: the hold a container create keeps on its
// images so that RemoveImage cannot delete their layers from under it.
#include <utility>

#include "image/image_service.h"

namespace berth::image {

ImageHold::ImageHold(ImageHold&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), image_id_(std::move(other.image_id_)) {}

ImageHold& ImageHold::operator=(ImageHold&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    image_id_ = std::move(other.image_id_);
  }
  return *this;
}

void ImageHold::Release() {
  if (owner_ != nullptr) std::exchange(owner_, nullptr)->ReleaseHold(image_id_);
}

StatusOr<ImageRecord> ImageService::Use(std::string_view image, ImageHold* hold) {
  hold->Release();  // before taking gc_mu_, which releasing takes too
  std::lock_guard lock(gc_mu_);
  // Remove checks the holds and deletes the record under gc_mu_: resolving
  // and holding under it too leaves no moment between the two.
  auto r = images_->Resolve(image);
  if (!r) return NotFoundError(StrCat("image \"", image, "\" not found"));
  r->pinned = r->pinned || pinned_.Matches(*r);
  ++holds_[r->id];
  hold->owner_ = this;
  hold->image_id_ = r->id;
  return *r;
}

void ImageService::ReleaseHold(const std::string& image_id) {
  std::lock_guard lock(gc_mu_);
  auto it = holds_.find(image_id);
  if (it != holds_.end() && --it->second <= 0) holds_.erase(it);
}

}  // namespace berth::image
