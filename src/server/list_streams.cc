// The Stream* list RPCs: the same items and filters as their List* twins
// (the shared Fill* bodies), sent in chunks (list_chunks.h). An empty list is
// a stream with no message that ends OK. The kubelet collects the whole
// stream before it uses any of it, so each stream is one snapshot.
#include "server/cri_services.h"
// (blank line keeps clang-format from reordering)

#include "server/list_chunks.h"

namespace berth::server {
namespace {

// Writes `items` in chunks into the repeated field `field` of Resp.
template <typename Item, typename Resp>
Status WriteChunks(const google::protobuf::RepeatedPtrField<Item>& items,
                   google::protobuf::RepeatedPtrField<Item>* (Resp::*field)(),
                   grpc::ServerWriter<Resp>* writer, std::string_view method) {
  for (const auto& [begin, end] : ChunkRanges(items)) {
    Resp chunk;
    google::protobuf::RepeatedPtrField<Item>* out = (chunk.*field)();
    out->Reserve(static_cast<int>(end - begin));
    for (size_t i = begin; i < end; ++i) *out->Add() = items[static_cast<int>(i)];
    if (!writer->Write(chunk)) {
      return CancelledError(
          StrCat(method, ": the client went away after ", begin, " of ", items.size(), " items"));
    }
  }
  return OkStatus();
}

}  // namespace

grpc::Status RuntimeServiceImpl::StreamPodSandboxes(
    grpc::ServerContext*, const runtime::v1::StreamPodSandboxesRequest* req,
    grpc::ServerWriter<runtime::v1::StreamPodSandboxesResponse>* writer) {
  return rpc_.Run("StreamPodSandboxes", [&]() -> berth::Status {
    google::protobuf::RepeatedPtrField<runtime::v1::PodSandbox> all;
    FillPodSandboxes(req->filter(), &all);
    return WriteChunks(all, &runtime::v1::StreamPodSandboxesResponse::mutable_pod_sandboxes, writer,
                       "StreamPodSandboxes");
  });
}

grpc::Status RuntimeServiceImpl::StreamContainers(
    grpc::ServerContext*, const runtime::v1::StreamContainersRequest* req,
    grpc::ServerWriter<runtime::v1::StreamContainersResponse>* writer) {
  return rpc_.Run("StreamContainers", [&]() -> berth::Status {
    google::protobuf::RepeatedPtrField<runtime::v1::Container> all;
    FillContainers(req->filter(), &all);
    return WriteChunks(all, &runtime::v1::StreamContainersResponse::mutable_containers, writer,
                       "StreamContainers");
  });
}

grpc::Status RuntimeServiceImpl::StreamContainerStats(
    grpc::ServerContext*, const runtime::v1::StreamContainerStatsRequest* req,
    grpc::ServerWriter<runtime::v1::StreamContainerStatsResponse>* writer) {
  return rpc_.Run("StreamContainerStats", [&]() -> berth::Status {
    google::protobuf::RepeatedPtrField<runtime::v1::ContainerStats> all;
    FillContainerStats(req->filter(), &all);
    return WriteChunks(all, &runtime::v1::StreamContainerStatsResponse::mutable_container_stats,
                       writer, "StreamContainerStats");
  });
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxStats(
    grpc::ServerContext*, const runtime::v1::StreamPodSandboxStatsRequest* req,
    grpc::ServerWriter<runtime::v1::StreamPodSandboxStatsResponse>* writer) {
  return rpc_.Run("StreamPodSandboxStats", [&]() -> berth::Status {
    google::protobuf::RepeatedPtrField<runtime::v1::PodSandboxStats> all;
    FillPodSandboxStats(req->filter(), &all);
    return WriteChunks(all, &runtime::v1::StreamPodSandboxStatsResponse::mutable_pod_sandbox_stats,
                       writer, "StreamPodSandboxStats");
  });
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxMetrics(
    grpc::ServerContext*, const runtime::v1::StreamPodSandboxMetricsRequest*,
    grpc::ServerWriter<runtime::v1::StreamPodSandboxMetricsResponse>* writer) {
  return rpc_.Run("StreamPodSandboxMetrics", [&]() -> berth::Status {
    google::protobuf::RepeatedPtrField<runtime::v1::PodSandboxMetrics> all;
    FillPodSandboxMetrics(&all);
    return WriteChunks(all,
                       &runtime::v1::StreamPodSandboxMetricsResponse::mutable_pod_sandbox_metrics,
                       writer, "StreamPodSandboxMetrics");
  });
}

grpc::Status ImageServiceImpl::StreamImages(
    grpc::ServerContext*, const runtime::v1::StreamImagesRequest* req,
    grpc::ServerWriter<runtime::v1::StreamImagesResponse>* writer) {
  return rpc_.Run("StreamImages", [&]() -> Status {
    google::protobuf::RepeatedPtrField<runtime::v1::Image> all;
    FillImages(req->filter(), &all);
    return WriteChunks(all, &runtime::v1::StreamImagesResponse::mutable_images, writer,
                       "StreamImages");
  });
}

}  // namespace berth::server
