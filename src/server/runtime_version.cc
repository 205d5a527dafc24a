#include "server/cri_services.h"

namespace berth::server {

// The kubelet reads runtime_api_version to pick the CRI version it speaks.
grpc::Status RuntimeServiceImpl::Version(grpc::ServerContext*, const runtime::v1::VersionRequest*,
                                         runtime::v1::VersionResponse* resp) {
  return rpc_.Run("Version", [&]() -> berth::Status {
    resp->set_version("0.1.0");
    resp->set_runtime_name("berth");
    resp->set_runtime_version(info_.version);
    resp->set_runtime_api_version("v1");
    return OkStatus();
  });
}

}  // namespace berth::server
