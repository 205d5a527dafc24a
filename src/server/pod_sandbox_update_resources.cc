// In-place pod resize: the kubelet sends a pod's new resources (the sum of
// its containers') and overhead; berthd sizes the pod cgroup. The kubelet
// resizes the containers with UpdateContainerResources, growing the pod
// first and shrinking it last.
#include "server/cri_convert.h"
#include "server/cri_services.h"

namespace berth::server {

namespace {

oci::PodResources ToPodResources(const runtime::v1::LinuxContainerResources& r) {
  oci::PodResources p;
  p.cpu_period = r.cpu_period();
  p.cpu_quota = r.cpu_quota();
  p.cpu_shares = r.cpu_shares();
  p.memory_limit_in_bytes = r.memory_limit_in_bytes();
  return p;
}

}  // namespace

grpc::Status RuntimeServiceImpl::UpdatePodSandboxResources(
    grpc::ServerContext*, const runtime::v1::UpdatePodSandboxResourcesRequest* req,
    runtime::v1::UpdatePodSandboxResourcesResponse*) {
  return rpc_.Run("UpdatePodSandboxResources", [&]() -> berth::Status {
    if (req->pod_sandbox_id().empty()) return InvalidArgumentError("pod_sandbox_id is empty");
    std::optional<oci::PodResources> resources, overhead;
    if (req->has_resources()) resources = ToPodResources(req->resources());
    if (req->has_overhead()) overhead = ToPodResources(req->overhead());
    for (const auto* r : {&resources, &overhead}) {
      if (*r && ((*r)->cpu_period < 0 || (*r)->cpu_shares < 0)) {
        return InvalidArgumentError("cpu_period and cpu_shares must not be negative");
      }
    }
    return domain_.sandboxes
        ->UpdateResources(req->pod_sandbox_id(), resources, overhead,
                          config_.cgroup_driver == "systemd" ? oci::CgroupDriver::kSystemd
                                                             : oci::CgroupDriver::kCgroupfs)
        .status();
  });
}

}  // namespace berth::server
