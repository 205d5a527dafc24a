// gRPC services of the CRI (runtime.v1). Handlers are thin: validate the
// request, call one domain operation, build the response. Image RPCs and the
// runtime's own (Version, Status, RuntimeConfig) have a file each, named
// noun_verb.cc; the pod RPCs are all in sandbox_rpcs.cc and the container
// RPCs in container_rpcs.cc.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "image/image_service.h"
#include "oci/handler_registry.h"
#include "runtime/v1/api.grpc.pb.h"
#include "server/domain.h"
#include "server/rpc_decorator.h"

namespace berth::server {

// What the runtime knows about itself, for Version and Status.
struct RuntimeInfo {
  std::string version;
  // The runtime handlers and their probes, which finish after the daemon
  // started serving (oci/handler_registry.h). Owned by the daemon.
  const oci::HandlerRegistry* handlers = nullptr;
};

// How long a call that needs a runtime handler waits for its start-up probe
// (a probe itself gives up after about 30 s).
inline constexpr std::chrono::seconds kHandlerProbeWait{60};

class RuntimeServiceImpl final : public runtime::v1::RuntimeService::Service {
 public:
  RuntimeServiceImpl(const config::Config& config, const RuntimeInfo& info, Domain& domain,
                     const RpcDecorator& rpc)
      : config_(config), info_(info), domain_(domain), rpc_(rpc) {}

  grpc::Status Version(grpc::ServerContext*, const runtime::v1::VersionRequest*,
                       runtime::v1::VersionResponse*) override;
  grpc::Status Status(grpc::ServerContext*, const runtime::v1::StatusRequest*,
                      runtime::v1::StatusResponse*) override;
  grpc::Status RuntimeConfig(grpc::ServerContext*, const runtime::v1::RuntimeConfigRequest*,
                             runtime::v1::RuntimeConfigResponse*) override;
  grpc::Status UpdateRuntimeConfig(grpc::ServerContext*,
                                   const runtime::v1::UpdateRuntimeConfigRequest*,
                                   runtime::v1::UpdateRuntimeConfigResponse*) override;

  // Lifecycle events (container_events.cc).
  grpc::Status GetContainerEvents(
      grpc::ServerContext*, const runtime::v1::GetEventsRequest*,
      grpc::ServerWriter<runtime::v1::ContainerEventResponse>* writer) override;

  grpc::Status RunPodSandbox(grpc::ServerContext*, const runtime::v1::RunPodSandboxRequest*,
                             runtime::v1::RunPodSandboxResponse*) override;
  grpc::Status StopPodSandbox(grpc::ServerContext*, const runtime::v1::StopPodSandboxRequest*,
                              runtime::v1::StopPodSandboxResponse*) override;
  grpc::Status RemovePodSandbox(grpc::ServerContext*, const runtime::v1::RemovePodSandboxRequest*,
                                runtime::v1::RemovePodSandboxResponse*) override;
  grpc::Status PodSandboxStatus(grpc::ServerContext*, const runtime::v1::PodSandboxStatusRequest*,
                                runtime::v1::PodSandboxStatusResponse*) override;
  grpc::Status ListPodSandbox(grpc::ServerContext*, const runtime::v1::ListPodSandboxRequest*,
                              runtime::v1::ListPodSandboxResponse*) override;
  grpc::Status CreateContainer(grpc::ServerContext*, const runtime::v1::CreateContainerRequest*,
                               runtime::v1::CreateContainerResponse*) override;
  grpc::Status StartContainer(grpc::ServerContext*, const runtime::v1::StartContainerRequest*,
                              runtime::v1::StartContainerResponse*) override;
  grpc::Status StopContainer(grpc::ServerContext*, const runtime::v1::StopContainerRequest*,
                             runtime::v1::StopContainerResponse*) override;
  grpc::Status RemoveContainer(grpc::ServerContext*, const runtime::v1::RemoveContainerRequest*,
                               runtime::v1::RemoveContainerResponse*) override;
  grpc::Status ListContainers(grpc::ServerContext*, const runtime::v1::ListContainersRequest*,
                              runtime::v1::ListContainersResponse*) override;
  grpc::Status ContainerStatus(grpc::ServerContext*, const runtime::v1::ContainerStatusRequest*,
                               runtime::v1::ContainerStatusResponse*) override;
  grpc::Status UpdateContainerResources(grpc::ServerContext*,
                                        const runtime::v1::UpdateContainerResourcesRequest*,
                                        runtime::v1::UpdateContainerResourcesResponse*) override;
  grpc::Status ReopenContainerLog(grpc::ServerContext*,
                                  const runtime::v1::ReopenContainerLogRequest*,
                                  runtime::v1::ReopenContainerLogResponse*) override;
  grpc::Status ExecSync(grpc::ServerContext*, const runtime::v1::ExecSyncRequest*,
                        runtime::v1::ExecSyncResponse*) override;
  grpc::Status CheckpointContainer(grpc::ServerContext*,
                                   const runtime::v1::CheckpointContainerRequest*,
                                   runtime::v1::CheckpointContainerResponse*) override;
  grpc::Status Exec(grpc::ServerContext*, const runtime::v1::ExecRequest*,
                    runtime::v1::ExecResponse*) override;
  grpc::Status Attach(grpc::ServerContext*, const runtime::v1::AttachRequest*,
                      runtime::v1::AttachResponse*) override;
  grpc::Status PortForward(grpc::ServerContext*, const runtime::v1::PortForwardRequest*,
                           runtime::v1::PortForwardResponse*) override;

  // Stats and metrics (stats/StatsService).
  grpc::Status ContainerStats(grpc::ServerContext*, const runtime::v1::ContainerStatsRequest*,
                              runtime::v1::ContainerStatsResponse*) override;
  grpc::Status ListContainerStats(grpc::ServerContext*,
                                  const runtime::v1::ListContainerStatsRequest*,
                                  runtime::v1::ListContainerStatsResponse*) override;
  grpc::Status PodSandboxStats(grpc::ServerContext*, const runtime::v1::PodSandboxStatsRequest*,
                               runtime::v1::PodSandboxStatsResponse*) override;
  grpc::Status ListPodSandboxStats(grpc::ServerContext*,
                                   const runtime::v1::ListPodSandboxStatsRequest*,
                                   runtime::v1::ListPodSandboxStatsResponse*) override;
  grpc::Status ListMetricDescriptors(grpc::ServerContext*,
                                     const runtime::v1::ListMetricDescriptorsRequest*,
                                     runtime::v1::ListMetricDescriptorsResponse*) override;
  grpc::Status ListPodSandboxMetrics(grpc::ServerContext*,
                                     const runtime::v1::ListPodSandboxMetricsRequest*,
                                     runtime::v1::ListPodSandboxMetricsResponse*) override;
  // In-place pod resize (pod_sandbox_update_resources.cc).
  grpc::Status UpdatePodSandboxResources(grpc::ServerContext*,
                                         const runtime::v1::UpdatePodSandboxResourcesRequest*,
                                         runtime::v1::UpdatePodSandboxResourcesResponse*) override;

  // The List* twins as server streams, in chunks (list_streams.cc).
  grpc::Status StreamPodSandboxes(
      grpc::ServerContext*, const runtime::v1::StreamPodSandboxesRequest*,
      grpc::ServerWriter<runtime::v1::StreamPodSandboxesResponse>* writer) override;
  grpc::Status StreamContainers(
      grpc::ServerContext*, const runtime::v1::StreamContainersRequest*,
      grpc::ServerWriter<runtime::v1::StreamContainersResponse>* writer) override;
  grpc::Status StreamContainerStats(
      grpc::ServerContext*, const runtime::v1::StreamContainerStatsRequest*,
      grpc::ServerWriter<runtime::v1::StreamContainerStatsResponse>* writer) override;
  grpc::Status StreamPodSandboxStats(
      grpc::ServerContext*, const runtime::v1::StreamPodSandboxStatsRequest*,
      grpc::ServerWriter<runtime::v1::StreamPodSandboxStatsResponse>* writer) override;
  grpc::Status StreamPodSandboxMetrics(
      grpc::ServerContext*, const runtime::v1::StreamPodSandboxMetricsRequest*,
      grpc::ServerWriter<runtime::v1::StreamPodSandboxMetricsResponse>* writer) override;

 private:
  // The bodies shared by each List* RPC and its Stream* twin.
  void FillPodSandboxes(const runtime::v1::PodSandboxFilter& filter,
                        google::protobuf::RepeatedPtrField<runtime::v1::PodSandbox>* out);
  void FillContainers(const runtime::v1::ContainerFilter& filter,
                      google::protobuf::RepeatedPtrField<runtime::v1::Container>* out);
  void FillContainerStats(const runtime::v1::ContainerStatsFilter& filter,
                          google::protobuf::RepeatedPtrField<runtime::v1::ContainerStats>* out);
  void FillPodSandboxStats(const runtime::v1::PodSandboxStatsFilter& filter,
                           google::protobuf::RepeatedPtrField<runtime::v1::PodSandboxStats>* out);
  void FillPodSandboxMetrics(
      google::protobuf::RepeatedPtrField<runtime::v1::PodSandboxMetrics>* out);

  const config::Config& config_;
  const RuntimeInfo& info_;
  Domain& domain_;
  const RpcDecorator& rpc_;
};

// What PullImage records, besides the decorator's per-call metrics.
struct PullMetrics {
  metrics::Counter* bytes = nullptr;         // no labels
  metrics::Histogram* throughput = nullptr;  // no labels; bytes per second of each pull
};

class ImageServiceImpl final : public runtime::v1::ImageService::Service {
 public:
  // `images` is filled in by start-up recovery; handlers only run after the
  // decorator is ready, by which time it is set. `pull_metrics` may be null.
  // `handlers` (may be null: no check) names the runtime handlers a pull may
  // be for (PullImage's image.runtime_handler).
  ImageServiceImpl(const std::unique_ptr<image::ImageService>& images, const RpcDecorator& rpc,
                   const PullMetrics* pull_metrics = nullptr,
                   const oci::HandlerRegistry* handlers = nullptr)
      : images_slot_(images), rpc_(rpc), pull_metrics_(pull_metrics), handlers_(handlers) {}

  grpc::Status ListImages(grpc::ServerContext*, const runtime::v1::ListImagesRequest*,
                          runtime::v1::ListImagesResponse*) override;
  grpc::Status StreamImages(grpc::ServerContext*, const runtime::v1::StreamImagesRequest*,
                            grpc::ServerWriter<runtime::v1::StreamImagesResponse>* writer) override;
  grpc::Status ImageStatus(grpc::ServerContext*, const runtime::v1::ImageStatusRequest*,
                           runtime::v1::ImageStatusResponse*) override;
  grpc::Status PullImage(grpc::ServerContext*, const runtime::v1::PullImageRequest*,
                         runtime::v1::PullImageResponse*) override;
  grpc::Status RemoveImage(grpc::ServerContext*, const runtime::v1::RemoveImageRequest*,
                           runtime::v1::RemoveImageResponse*) override;
  grpc::Status ImageFsInfo(grpc::ServerContext*, const runtime::v1::ImageFsInfoRequest*,
                           runtime::v1::ImageFsInfoResponse*) override;

 private:
  // The body shared by ListImages and StreamImages.
  void FillImages(const runtime::v1::ImageFilter& filter,
                  google::protobuf::RepeatedPtrField<runtime::v1::Image>* out);
  image::ImageService& images() { return *images_slot_; }
  const std::unique_ptr<image::ImageService>& images_slot_;
  const RpcDecorator& rpc_;
  const PullMetrics* pull_metrics_;
  const oci::HandlerRegistry* handlers_;
  std::atomic<int> pulls_in_flight_{0};  // memory is trimmed when the last one ends
};

// Fills a CRI Image from a record (shared by ListImages and ImageStatus).
// spec.runtime_handler is `for_handler` when the image was pulled for it,
// else the handler it was last pulled for ("" when pulled for none).
void ToCriImage(const image::ImageRecord& record, runtime::v1::Image* out,
                const std::string& for_handler = "");

}  // namespace berth::server
