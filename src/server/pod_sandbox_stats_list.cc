#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

// Ready pods only: a stopped pod has nothing left to measure (containerd).
grpc::Status RuntimeServiceImpl::ListPodSandboxStats(
    grpc::ServerContext*, const runtime::v1::ListPodSandboxStatsRequest* req,
    runtime::v1::ListPodSandboxStatsResponse* resp) {
  return rpc_.Run("ListPodSandboxStats", [&]() -> berth::Status {
    FillPodSandboxStats(req->filter(), resp->mutable_stats());
    return OkStatus();
  });
}

void RuntimeServiceImpl::FillPodSandboxStats(
    const runtime::v1::PodSandboxStatsFilter& f,
    google::protobuf::RepeatedPtrField<runtime::v1::PodSandboxStats>* out) {
  stats::PodUsageFilter filter;
  filter.id = f.id();
  filter.labels.insert(f.label_selector().begin(), f.label_selector().end());
  for (const stats::PodUsage& u : domain_.stats->ListPods(filter)) {
    ToCriPodSandboxStats(u, out->Add());
  }
}

}  // namespace berth::server
