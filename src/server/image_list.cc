#include "server/cri_services.h"

namespace berth::server {

grpc::Status ImageServiceImpl::ListImages(grpc::ServerContext*,
                                          const runtime::v1::ListImagesRequest* req,
                                          runtime::v1::ListImagesResponse* resp) {
  return rpc_.Run("ListImages", [&]() -> Status {
    const std::string& filter = req->filter().image().image();
    if (!filter.empty()) {
      // A filter names one image, in any form ImageStatus accepts.
      auto found = images().Find(filter);
      if (found.ok()) ToCriImage(*found, resp->add_images());
      return OkStatus();
    }
    for (const auto& r : images().List()) ToCriImage(r, resp->add_images());
    return OkStatus();
  });
}

}  // namespace berth::server
