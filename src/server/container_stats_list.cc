#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

// Every container the filter matches, whatever its state (containerd's
// answer): created and exited ones carry attributes and writable layer only.
grpc::Status RuntimeServiceImpl::ListContainerStats(
    grpc::ServerContext*, const runtime::v1::ListContainerStatsRequest* req,
    runtime::v1::ListContainerStatsResponse* resp) {
  return rpc_.Run("ListContainerStats", [&]() -> berth::Status {
    stats::ContainerUsageFilter filter;
    filter.id = req->filter().id();
    filter.pod_sandbox_id = req->filter().pod_sandbox_id();
    filter.labels.insert(req->filter().label_selector().begin(),
                         req->filter().label_selector().end());
    for (const stats::ContainerUsage& u : domain_.stats->ListContainers(filter)) {
      ToCriContainerStats(u, resp->add_stats());
    }
    return OkStatus();
  });
}

}  // namespace berth::server
