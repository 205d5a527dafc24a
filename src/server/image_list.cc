#include "server/cri_services.h"

namespace berth::server {

grpc::Status ImageServiceImpl::ListImages(grpc::ServerContext*,
                                          const runtime::v1::ListImagesRequest* req,
                                          runtime::v1::ListImagesResponse* resp) {
  return rpc_.Run("ListImages", [&]() -> Status {
    FillImages(req->filter(), resp->mutable_images());
    return OkStatus();
  });
}

void ImageServiceImpl::FillImages(const runtime::v1::ImageFilter& f,
                                  google::protobuf::RepeatedPtrField<runtime::v1::Image>* out) {
  const std::string& name = f.image().image();
  if (!name.empty()) {
    // A filter names one image, in any form ImageStatus accepts.
    auto found = images().Find(name);
    if (found.ok()) ToCriImage(*found, out->Add(), f.image().runtime_handler());
    return;
  }
  for (const auto& r : images().List()) ToCriImage(r, out->Add());
}

}  // namespace berth::server
