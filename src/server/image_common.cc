#include "server/cri_services.h"

namespace berth::server {

void ToCriImage(const image::ImageRecord& r, runtime::v1::Image* out) {
  out->set_id(r.id);
  for (const auto& t : r.repo_tags) out->add_repo_tags(t);
  for (const auto& d : r.repo_digests) out->add_repo_digests(d);
  out->set_size(r.size);
  if (r.uid) out->mutable_uid()->set_value(*r.uid);
  out->set_username(r.username);
  out->mutable_spec()->set_image(r.id);
  for (const auto& [k, v] : r.annotations) (*out->mutable_spec()->mutable_annotations())[k] = v;
  out->set_pinned(r.pinned);
}

}  // namespace berth::server
