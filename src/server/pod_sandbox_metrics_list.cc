#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::ListPodSandboxMetrics(
    grpc::ServerContext*, const runtime::v1::ListPodSandboxMetricsRequest*,
    runtime::v1::ListPodSandboxMetricsResponse* resp) {
  return rpc_.Run("ListPodSandboxMetrics", [&]() -> berth::Status {
    for (const stats::PodMetricSamples& m : stats::CollectPodMetrics(*domain_.stats)) {
      ToCriPodSandboxMetrics(m, resp->add_pod_metrics());
    }
    return OkStatus();
  });
}

}  // namespace berth::server
