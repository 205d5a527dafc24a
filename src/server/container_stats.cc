#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

// A container that is not running gets its attributes and writable layer
// only, as in ListContainerStats (containerd 1.6 fails such a call instead).
grpc::Status RuntimeServiceImpl::ContainerStats(grpc::ServerContext*,
                                                const runtime::v1::ContainerStatsRequest* req,
                                                runtime::v1::ContainerStatsResponse* resp) {
  return rpc_.Run("ContainerStats", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    ASSIGN_OR_RETURN(stats::ContainerUsage u, domain_.stats->Container(req->container_id()));
    ToCriContainerStats(u, resp->mutable_stats());
    return OkStatus();
  });
}

}  // namespace berth::server
