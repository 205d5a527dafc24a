#include "server/cri_services.h"
#include "server/stats_convert.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::ListMetricDescriptors(
    grpc::ServerContext*, const runtime::v1::ListMetricDescriptorsRequest*,
    runtime::v1::ListMetricDescriptorsResponse* resp) {
  return rpc_.Run("ListMetricDescriptors", [&]() -> berth::Status {
    for (const stats::MetricDescriptor& d : stats::MetricDescriptors()) {
      ToCriMetricDescriptor(d, resp->add_descriptors());
    }
    return OkStatus();
  });
}

}  // namespace berth::server
