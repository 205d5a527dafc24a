#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::PodSandboxStats(grpc::ServerContext*,
                                                 const runtime::v1::PodSandboxStatsRequest* req,
                                                 runtime::v1::PodSandboxStatsResponse* resp) {
  return rpc_.Run("PodSandboxStats", [&]() -> berth::Status {
    if (req->pod_sandbox_id().empty()) return InvalidArgumentError("pod_sandbox_id is empty");
    ASSIGN_OR_RETURN(stats::PodUsage u, domain_.stats->Pod(req->pod_sandbox_id()));
    ToCriPodSandboxStats(u, resp->mutable_stats());
    return OkStatus();
  });
}

}  // namespace berth::server
