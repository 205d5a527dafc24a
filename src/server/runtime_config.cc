#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::RuntimeConfig(grpc::ServerContext*,
                                               const runtime::v1::RuntimeConfigRequest*,
                                               runtime::v1::RuntimeConfigResponse* resp) {
  return rpc_.Run("RuntimeConfig", [&]() -> berth::Status {
    resp->mutable_linux()->set_cgroup_driver(
        config_.cgroup_driver == "systemd" ? runtime::v1::SYSTEMD : runtime::v1::CGROUPFS);
    return OkStatus();
  });
}

}  // namespace berth::server
