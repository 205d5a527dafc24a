#include <spdlog/spdlog.h>

#include "server/cri_services.h"

namespace berth::server {

// The kubelet sends its node's pod CIDR here once the node has one. Berth's
// only use for it is the default pod network (network/pod_network.h); the CRI
// has no other field in RuntimeConfig.
grpc::Status RuntimeServiceImpl::UpdateRuntimeConfig(
    grpc::ServerContext*, const runtime::v1::UpdateRuntimeConfigRequest* req,
    runtime::v1::UpdateRuntimeConfigResponse*) {
  return rpc_.Run("UpdateRuntimeConfig", [&]() -> berth::Status {
    const std::string& pod_cidr = req->runtime_config().network_config().pod_cidr();
    ASSIGN_OR_RETURN(network::DefaultPodNetwork::Result r,
                     domain_.default_network->Apply(pod_cidr));
    if (r.outcome != network::DefaultPodNetwork::Outcome::kNoCidr) {
      spdlog::info("event=default_network pod_cidr=\"{}\" outcome={} file={}", pod_cidr,
                   network::OutcomeName(r.outcome), r.file.string());
    }
    return OkStatus();
  });
}

}  // namespace berth::server
