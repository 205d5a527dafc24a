// runtime.v1alpha2 RuntimeService and ImageService, for kubelets 1.20-1.25
// and crictl up to v1.22. Each RPC converts its request to v1 (see
// v1alpha2_convert.h), calls the v1 handler of the same name (so the same
// decorator, validation and domain call serve both versions), and converts
// the response back. Errors pass through unchanged.
//
// v1alpha2 has no streaming RPC and none of v1's later additions
// (GetContainerEvents, the Stream* lists, metrics, RuntimeConfig,
// CheckpointContainer): a v1alpha2 client cannot name them, so gRPC answers
// UNIMPLEMENTED for them without reaching Berth.
//
// The services only borrow the v1 services, which must outlive them.
// Thread-safe as the v1 services are.
#pragma once

// The CRI headers come first: see server/signals.h.
#include "runtime/v1/api.grpc.pb.h"
#include "runtime/v1alpha2/api.grpc.pb.h"
// (blank line keeps clang-format from reordering)

namespace berth::server {

#define BERTH_V1ALPHA2_RPC(Method)                                                     \
  grpc::Status Method(grpc::ServerContext*, const runtime::v1alpha2::Method##Request*, \
                      runtime::v1alpha2::Method##Response*) override;

class V1alpha2RuntimeService final : public runtime::v1alpha2::RuntimeService::Service {
 public:
  explicit V1alpha2RuntimeService(runtime::v1::RuntimeService::Service& v1) : v1_(v1) {}

  BERTH_V1ALPHA2_RPC(Version)
  BERTH_V1ALPHA2_RPC(RunPodSandbox)
  BERTH_V1ALPHA2_RPC(StopPodSandbox)
  BERTH_V1ALPHA2_RPC(RemovePodSandbox)
  BERTH_V1ALPHA2_RPC(PodSandboxStatus)
  BERTH_V1ALPHA2_RPC(ListPodSandbox)
  BERTH_V1ALPHA2_RPC(CreateContainer)
  BERTH_V1ALPHA2_RPC(StartContainer)
  BERTH_V1ALPHA2_RPC(StopContainer)
  BERTH_V1ALPHA2_RPC(RemoveContainer)
  BERTH_V1ALPHA2_RPC(ListContainers)
  BERTH_V1ALPHA2_RPC(ContainerStatus)
  BERTH_V1ALPHA2_RPC(UpdateContainerResources)
  BERTH_V1ALPHA2_RPC(ReopenContainerLog)
  BERTH_V1ALPHA2_RPC(ExecSync)
  BERTH_V1ALPHA2_RPC(Exec)
  BERTH_V1ALPHA2_RPC(Attach)
  BERTH_V1ALPHA2_RPC(PortForward)
  BERTH_V1ALPHA2_RPC(ContainerStats)
  BERTH_V1ALPHA2_RPC(ListContainerStats)
  BERTH_V1ALPHA2_RPC(PodSandboxStats)
  BERTH_V1ALPHA2_RPC(ListPodSandboxStats)
  BERTH_V1ALPHA2_RPC(UpdateRuntimeConfig)
  BERTH_V1ALPHA2_RPC(Status)

 private:
  runtime::v1::RuntimeService::Service& v1_;
};

class V1alpha2ImageService final : public runtime::v1alpha2::ImageService::Service {
 public:
  explicit V1alpha2ImageService(runtime::v1::ImageService::Service& v1) : v1_(v1) {}

  BERTH_V1ALPHA2_RPC(ListImages)
  BERTH_V1ALPHA2_RPC(ImageStatus)
  BERTH_V1ALPHA2_RPC(PullImage)
  BERTH_V1ALPHA2_RPC(RemoveImage)
  BERTH_V1ALPHA2_RPC(ImageFsInfo)

 private:
  runtime::v1::ImageService::Service& v1_;
};

#undef BERTH_V1ALPHA2_RPC

}  // namespace berth::server
