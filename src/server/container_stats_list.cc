#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

// Every container the filter matches, whatever its state (containerd's
// answer): created and exited ones carry attributes and writable layer only.
grpc::Status RuntimeServiceImpl::ListContainerStats(
    grpc::ServerContext*, const runtime::v1::ListContainerStatsRequest* req,
    runtime::v1::ListContainerStatsResponse* resp) {
  return rpc_.Run("ListContainerStats", [&]() -> berth::Status {
    FillContainerStats(req->filter(), resp->mutable_stats());
    return OkStatus();
  });
}

void RuntimeServiceImpl::FillContainerStats(
    const runtime::v1::ContainerStatsFilter& f,
    google::protobuf::RepeatedPtrField<runtime::v1::ContainerStats>* out) {
  stats::ContainerUsageFilter filter;
  filter.id = f.id();
  filter.pod_sandbox_id = f.pod_sandbox_id();
  filter.labels.insert(f.label_selector().begin(), f.label_selector().end());
  for (const stats::ContainerUsage& u : domain_.stats->ListContainers(filter)) {
    ToCriContainerStats(u, out->Add());
  }
}

}  // namespace berth::server
