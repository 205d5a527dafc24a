#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

// Ready pods only: a stopped pod has nothing left to measure (containerd).
grpc::Status RuntimeServiceImpl::ListPodSandboxStats(
    grpc::ServerContext*, const runtime::v1::ListPodSandboxStatsRequest* req,
    runtime::v1::ListPodSandboxStatsResponse* resp) {
  return rpc_.Run("ListPodSandboxStats", [&]() -> berth::Status {
    stats::PodUsageFilter filter;
    filter.id = req->filter().id();
    filter.labels.insert(req->filter().label_selector().begin(),
                         req->filter().label_selector().end());
    for (const stats::PodUsage& u : domain_.stats->ListPods(filter)) {
      ToCriPodSandboxStats(u, resp->add_stats());
    }
    return OkStatus();
  });
}

}  // namespace berth::server
