#include <algorithm>

#include "server/cri_services.h"

namespace berth::server {

void ToCriImage(const image::ImageRecord& r, runtime::v1::Image* out,
                const std::string& for_handler) {
  out->set_id(r.id);
  for (const auto& t : r.repo_tags) out->add_repo_tags(t);
  for (const auto& d : r.repo_digests) out->add_repo_digests(d);
  out->set_size(r.size);
  if (r.uid) out->mutable_uid()->set_value(*r.uid);
  out->set_username(r.username);
  out->mutable_spec()->set_image(r.id);
  for (const auto& [k, v] : r.annotations) (*out->mutable_spec()->mutable_annotations())[k] = v;
  out->set_pinned(r.pinned);
  const auto& handlers = r.runtime_handlers;
  if (!for_handler.empty() &&
      std::find(handlers.begin(), handlers.end(), for_handler) != handlers.end()) {
    out->mutable_spec()->set_runtime_handler(for_handler);
  } else if (!handlers.empty()) {
    out->mutable_spec()->set_runtime_handler(handlers.back());
  }
}

}  // namespace berth::server
