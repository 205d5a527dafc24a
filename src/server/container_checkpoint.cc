// CheckpointContainer: a forensic checkpoint archive of a running container.
#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::CheckpointContainer(
    grpc::ServerContext*, const runtime::v1::CheckpointContainerRequest* req,
    runtime::v1::CheckpointContainerResponse*) {
  return rpc_.Run("CheckpointContainer", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    if (req->location().empty()) return InvalidArgumentError("location is empty");
    return domain_.containers->Checkpoint(req->container_id(), req->location());
  });
}

}  // namespace berth::server
