#include "server/cri_services.h"

namespace berth::server {

// Idempotent: the CRI spec asks RemoveImage to succeed when the image is
// already gone. Removing by one tag removes the image with all its tags, as
// containerd does.
grpc::Status ImageServiceImpl::RemoveImage(grpc::ServerContext*,
                                           const runtime::v1::RemoveImageRequest* req,
                                           runtime::v1::RemoveImageResponse*) {
  return rpc_.Run("RemoveImage", [&]() -> Status {
    const std::string& name = req->image().image();
    if (name.empty()) return InvalidArgumentError("RemoveImage: image.image must name an image");
    return images().Remove(name);
  });
}

}  // namespace berth::server
