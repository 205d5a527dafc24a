#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::ListPodSandboxMetrics(
    grpc::ServerContext*, const runtime::v1::ListPodSandboxMetricsRequest*,
    runtime::v1::ListPodSandboxMetricsResponse* resp) {
  return rpc_.Run("ListPodSandboxMetrics", [&]() -> berth::Status {
    FillPodSandboxMetrics(resp->mutable_pod_metrics());
    return OkStatus();
  });
}

void RuntimeServiceImpl::FillPodSandboxMetrics(
    google::protobuf::RepeatedPtrField<runtime::v1::PodSandboxMetrics>* out) {
  for (const stats::PodMetricSamples& m : stats::CollectPodMetrics(*domain_.stats)) {
    ToCriPodSandboxMetrics(m, out->Add());
  }
}

}  // namespace berth::server
