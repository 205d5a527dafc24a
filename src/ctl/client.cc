#include "ctl/client.h"
// (blank line keeps clang-format from reordering)

#include <grpcpp/generic/generic_stub.h>

#include "ctl/table.h"

namespace berth::ctl {
namespace {

// crictl's client accepts messages up to 16 MiB.
constexpr int kMaxMessageSize = 16 * 1024 * 1024;

// One unary call by method path, with the bytes of `req` and into `resp`.
grpc::Status GenericUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                              const std::string& path, const google::protobuf::Message& req,
                              google::protobuf::Message* resp,
                              std::optional<std::chrono::milliseconds> deadline) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  if (deadline) ctx.set_deadline(std::chrono::system_clock::now() + *deadline);
  const std::string wire = req.SerializeAsString();
  grpc::Slice slice(wire);
  grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&ctx, path, request, &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return status;
  std::vector<grpc::Slice> slices;
  if (!reply.Dump(&slices).ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, StrCat("unreadable response of ", path));
  }
  std::string bytes;
  for (const grpc::Slice& sl : slices) {
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  if (!resp->ParseFromString(bytes)) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        StrCat("the response of ", path, " is not a ", resp->GetTypeName()));
  }
  return status;
}

}  // namespace

std::string_view GoCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return OkStatus();
  return Status(
      static_cast<StatusCode>(s.error_code()),
      StrCat("rpc error: code = ", GoCodeName(s.error_code()), " desc = ", s.error_message()));
}

CriClient::CriClient(Settings settings, Logger& log) : settings_(std::move(settings)), log_(log) {}

StatusOr<std::shared_ptr<grpc::Channel>> CriClient::Channel(const std::string& endpoint) {
  auto it = channels_.find(endpoint);
  if (it != channels_.end()) return it->second;
  ASSIGN_OR_RETURN(std::string target, EndpointToGrpcTarget(endpoint));
  log_.Debug(StrCat("connect using endpoint ", GoQuote(endpoint), " with ",
                    GoQuote(StrCat(settings_.timeout.count(), "ms")), " timeout"));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageSize);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  channels_[endpoint] = channel;
  return channel;
}

StatusOr<cri::RuntimeService::Stub*> CriClient::runtime() {
  if (!runtime_) {
    ASSIGN_OR_RETURN(auto channel, Channel(settings_.runtime_endpoint));
    runtime_ = cri::RuntimeService::NewStub(channel);
  }
  return runtime_.get();
}

StatusOr<cri::ImageService::Stub*> CriClient::images() {
  if (!images_) {
    ASSIGN_OR_RETURN(auto channel, Channel(settings_.image_endpoint));
    images_ = cri::ImageService::NewStub(channel);
  }
  return images_.get();
}

void CriClient::DetectApiVersion(CriService service) {
  const bool runtime = service == CriService::kRuntime;
  const std::string& endpoint = runtime ? settings_.runtime_endpoint : settings_.image_endpoint;
  const char* service_name = runtime ? "RuntimeService" : "ImageService";
  StatusOr<std::shared_ptr<grpc::Channel>> channel = Channel(endpoint);
  if (!channel.ok()) return;
  // The kubelet's probes: Version for the runtime, ImageFsInfo for images.
  cri::VersionRequest version_req;
  cri::VersionResponse version_resp;
  cri::ImageFsInfoRequest fs_req;
  cri::ImageFsInfoResponse fs_resp;
  const google::protobuf::Message& req =
      runtime ? static_cast<const google::protobuf::Message&>(version_req) : fs_req;
  google::protobuf::Message* resp =
      runtime ? static_cast<google::protobuf::Message*>(&version_resp) : &fs_resp;
  const std::string method = runtime ? "Version" : "ImageFsInfo";
  grpc::Status v1 = GenericUnaryCall(*channel, StrCat("/runtime.v1.", service_name, "/", method),
                                     req, resp, settings_.timeout);
  if (v1.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
    api_[service] = ApiVersion::kV1;
    return;
  }
  grpc::Status alpha =
      GenericUnaryCall(*channel, StrCat("/runtime.v1alpha2.", service_name, "/", method), req, resp,
                       settings_.timeout);
  if (alpha.ok()) {
    log_.Debug(StrCat("using CRI v1alpha2 ", service_name, " of ", GoQuote(endpoint),
                      " (it does not serve v1)"));
    api_[service] = ApiVersion::kV1alpha2;
  } else {
    api_[service] = ApiVersion::kV1;
  }
}

grpc::Status CriClient::CallV1alpha2(CriService service, std::string_view name,
                                     const google::protobuf::Message& req,
                                     google::protobuf::Message* resp,
                                     std::optional<std::chrono::milliseconds> deadline) {
  const bool runtime = service == CriService::kRuntime;
  StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Channel(runtime ? settings_.runtime_endpoint : settings_.image_endpoint);
  if (!channel.ok()) {
    return grpc::Status(static_cast<grpc::StatusCode>(channel.status().code()),
                        channel.status().message());
  }
  resp->Clear();
  return GenericUnaryCall(
      *channel,
      StrCat("/runtime.v1alpha2.", runtime ? "RuntimeService" : "ImageService", "/", name), req,
      resp, deadline);
}

void CriClient::LogMessage(std::string_view name, std::string_view kind,
                           const google::protobuf::Message& m) {
  if (!log_.debug()) return;
  log_.Debug(StrCat(name, kind, ": ", m.ShortDebugString()));
}

StatusOr<cri::VersionResponse> Version(CriClient& c, const std::string& api_version) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::VersionRequest req;
  req.set_version(api_version);
  cri::VersionResponse resp;
  RETURN_IF_ERROR(
      c.Call(stub, &cri::RuntimeService::Stub::Version, "Version", req, &resp, c.timeout()));
  if (resp.version().empty() || resp.runtime_name().empty() || resp.runtime_api_version().empty() ||
      resp.runtime_version().empty()) {
    return InternalError(
        StrCat("not all fields are set in VersionResponse (", resp.ShortDebugString(), ")"));
  }
  return resp;
}

StatusOr<cri::StatusResponse> RuntimeStatus(CriClient& c, bool verbose) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::StatusRequest req;
  req.set_verbose(verbose);
  cri::StatusResponse resp;
  RETURN_IF_ERROR(
      c.Call(stub, &cri::RuntimeService::Stub::Status, "Status", req, &resp, c.timeout()));
  if (!resp.has_status() || resp.status().conditions_size() < 2) {
    return InternalError("RuntimeReady or NetworkReady condition are not set");
  }
  return resp;
}

StatusOr<cri::ListContainersResponse> ListContainers(CriClient& c,
                                                     const cri::ContainerFilter* filter) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ListContainersRequest req;
  if (filter != nullptr) *req.mutable_filter() = *filter;
  cri::ListContainersResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::ListContainers, "ListContainers", req,
                         &resp, c.runtime_timeout()));
  return resp;
}

StatusOr<cri::ListImagesResponse> ListImages(CriClient& c, const std::string& image_filter) {
  ASSIGN_OR_RETURN(auto* stub, c.images());
  cri::ListImagesRequest req;
  req.mutable_filter()->mutable_image()->set_image(image_filter);
  cri::ListImagesResponse resp;
  RETURN_IF_ERROR(
      c.Call(stub, &cri::ImageService::Stub::ListImages, "ListImages", req, &resp, c.timeout()));
  return resp;
}

StatusOr<cri::ImageStatusResponse> ImageStatus(CriClient& c, const std::string& image,
                                               bool verbose) {
  ASSIGN_OR_RETURN(auto* stub, c.images());
  cri::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  req.set_verbose(verbose);
  cri::ImageStatusResponse resp;
  RETURN_IF_ERROR(
      c.Call(stub, &cri::ImageService::Stub::ImageStatus, "ImageStatus", req, &resp, c.timeout()));
  if (resp.has_image() && (resp.image().id().empty() || resp.image().size() == 0)) {
    return InternalError(StrCat("Id or size of image ", GoQuote(image), " is not set"));
  }
  return resp;
}

StatusOr<cri::PullImageResponse> PullImage(CriClient& c, const cri::PullImageRequest& req) {
  ASSIGN_OR_RETURN(auto* stub, c.images());
  cri::PullImageResponse resp;
  // No deadline: a pull takes as long as the download does.
  RETURN_IF_ERROR(
      c.Call(stub, &cri::ImageService::Stub::PullImage, "PullImage", req, &resp, std::nullopt));
  if (resp.image_ref().empty()) {
    return InternalError(StrCat("imageRef of image ", GoQuote(req.image().image()), " is not set"));
  }
  return resp;
}

Status RemoveImage(CriClient& c, const std::string& image) {
  if (image.empty()) return InvalidArgumentError("ImageID cannot be empty");
  ASSIGN_OR_RETURN(auto* stub, c.images());
  cri::RemoveImageRequest req;
  req.mutable_image()->set_image(image);
  cri::RemoveImageResponse resp;
  return c.Call(stub, &cri::ImageService::Stub::RemoveImage, "RemoveImage", req, &resp,
                c.timeout());
}

StatusOr<cri::ImageFsInfoResponse> ImageFsInfo(CriClient& c) {
  ASSIGN_OR_RETURN(auto* stub, c.images());
  cri::ImageFsInfoRequest req;
  cri::ImageFsInfoResponse resp;
  // No deadline: measuring the filesystem may take a while.
  RETURN_IF_ERROR(
      c.Call(stub, &cri::ImageService::Stub::ImageFsInfo, "ImageFsInfo", req, &resp, std::nullopt));
  return resp;
}

StatusOr<std::string> RunPodSandbox(CriClient& c, const cri::PodSandboxConfig& config,
                                    const std::string& runtime_handler) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::RunPodSandboxRequest req;
  *req.mutable_config() = config;
  req.set_runtime_handler(runtime_handler);
  cri::RunPodSandboxResponse resp;
  // Setting up a sandbox may take a while (network, pause image).
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::RunPodSandbox, "RunPodSandbox", req,
                         &resp, c.runtime_timeout() * 2));
  if (resp.pod_sandbox_id().empty()) {
    return InternalError(StrCat("PodSandboxId is not set for sandbox ",
                                GoQuote(config.metadata().ShortDebugString())));
  }
  return resp.pod_sandbox_id();
}

Status StopPodSandbox(CriClient& c, const std::string& id) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  cri::StopPodSandboxResponse resp;
  return c.Call(stub, &cri::RuntimeService::Stub::StopPodSandbox, "StopPodSandbox", req, &resp,
                c.runtime_timeout());
}

Status RemovePodSandbox(CriClient& c, const std::string& id) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  cri::RemovePodSandboxResponse resp;
  return c.Call(stub, &cri::RuntimeService::Stub::RemovePodSandbox, "RemovePodSandbox", req, &resp,
                c.runtime_timeout());
}

StatusOr<cri::PodSandboxStatusResponse> PodSandboxStatus(CriClient& c, const std::string& id,
                                                         bool verbose) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  req.set_verbose(verbose);
  cri::PodSandboxStatusResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::PodSandboxStatus, "PodSandboxStatus",
                         req, &resp, c.runtime_timeout()));
  if (resp.has_status()) {
    const cri::PodSandboxStatus& st = resp.status();
    if (st.id().empty()) return InternalError("status.Id is not set");
    if (!st.has_metadata()) return InternalError("status.Metadata is not set");
    const cri::PodSandboxMetadata& md = st.metadata();
    if (md.name().empty() || md.namespace_().empty() || md.uid().empty()) {
      return InternalError(
          StrCat("metadata.Name, metadata.Namespace or metadata.Uid is not in metadata ",
                 GoQuote(md.ShortDebugString())));
    }
    if (st.created_at() == 0) return InternalError("status.CreatedAt is not set");
  }
  return resp;
}

StatusOr<cri::ListPodSandboxResponse> ListPodSandbox(CriClient& c,
                                                     const cri::PodSandboxFilter* filter) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ListPodSandboxRequest req;
  if (filter != nullptr) *req.mutable_filter() = *filter;
  cri::ListPodSandboxResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::ListPodSandbox, "ListPodSandbox", req,
                         &resp, c.runtime_timeout()));
  return resp;
}

StatusOr<std::string> CreateContainer(CriClient& c, const std::string& pod_id,
                                      const cri::ContainerConfig& config,
                                      const cri::PodSandboxConfig* sandbox_config) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_id);
  *req.mutable_config() = config;
  if (sandbox_config != nullptr) *req.mutable_sandbox_config() = *sandbox_config;
  cri::CreateContainerResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::CreateContainer, "CreateContainer", req,
                         &resp, c.runtime_timeout()));
  if (resp.container_id().empty()) {
    return InternalError(StrCat("ContainerId is not set for container ",
                                GoQuote(config.metadata().ShortDebugString())));
  }
  return resp.container_id();
}

Status StartContainer(CriClient& c, const std::string& id) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::StartContainerRequest req;
  req.set_container_id(id);
  cri::StartContainerResponse resp;
  return c.Call(stub, &cri::RuntimeService::Stub::StartContainer, "StartContainer", req, &resp,
                c.runtime_timeout());
}

Status StopContainer(CriClient& c, const std::string& id, int64_t timeout_seconds) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeout_seconds);
  cri::StopContainerResponse resp;
  // The grace period comes on top, so the runtime has time to SIGKILL.
  return c.Call(stub, &cri::RuntimeService::Stub::StopContainer, "StopContainer", req, &resp,
                c.runtime_timeout() + std::chrono::seconds(timeout_seconds));
}

Status RemoveContainer(CriClient& c, const std::string& id) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::RemoveContainerRequest req;
  req.set_container_id(id);
  cri::RemoveContainerResponse resp;
  return c.Call(stub, &cri::RuntimeService::Stub::RemoveContainer, "RemoveContainer", req, &resp,
                c.runtime_timeout());
}

StatusOr<cri::ContainerStatusResponse> ContainerStatus(CriClient& c, const std::string& id,
                                                       bool verbose) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(verbose);
  cri::ContainerStatusResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::ContainerStatus, "ContainerStatus", req,
                         &resp, c.runtime_timeout()));
  if (resp.has_status()) {
    const cri::ContainerStatus& st = resp.status();
    if (st.id().empty()) return InternalError("status.Id is not set");
    if (!st.has_metadata()) return InternalError("status.Metadata is not set");
    if (st.metadata().name().empty()) {
      return InternalError(
          StrCat("metadata.Name is not in metadata ", GoQuote(st.metadata().ShortDebugString())));
    }
    if (st.created_at() == 0) return InternalError("status.CreatedAt is not set");
    if (!st.has_image() || st.image().image().empty()) {
      return InternalError("status.Image is not set");
    }
    if (st.image_ref().empty()) return InternalError("status.ImageRef is not set");
  }
  return resp;
}

Status UpdateContainerResources(CriClient& c, const std::string& id,
                                const cri::LinuxContainerResources& linux) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::UpdateContainerResourcesRequest req;
  req.set_container_id(id);
  *req.mutable_linux() = linux;
  cri::UpdateContainerResourcesResponse resp;
  return c.Call(stub, &cri::RuntimeService::Stub::UpdateContainerResources,
                "UpdateContainerResources", req, &resp, c.runtime_timeout());
}

StatusOr<cri::ExecSyncResponse> ExecSync(CriClient& c, const std::string& id,
                                         const std::vector<std::string>& cmd,
                                         int64_t timeout_seconds) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ExecSyncRequest req;
  req.set_container_id(id);
  for (const std::string& arg : cmd) req.add_cmd(arg);
  req.set_timeout(timeout_seconds);
  cri::ExecSyncResponse resp;
  std::optional<std::chrono::milliseconds> deadline;
  if (timeout_seconds != 0) deadline = c.runtime_timeout() + std::chrono::seconds(timeout_seconds);
  Status s = c.Call(stub, &cri::RuntimeService::Stub::ExecSync, "ExecSync", req, &resp, deadline);
  if (s.code() == StatusCode::kDeadlineExceeded) {
    std::string joined;
    for (const std::string& arg : cmd) joined += (joined.empty() ? "" : " ") + arg;
    return DeadlineExceededError(StrCat("command ", GoQuote(joined), " timed out"));
  }
  RETURN_IF_ERROR(s);
  return resp;
}

StatusOr<std::string> Exec(CriClient& c, const cri::ExecRequest& req) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ExecResponse resp;
  RETURN_IF_ERROR(
      c.Call(stub, &cri::RuntimeService::Stub::Exec, "Exec", req, &resp, c.runtime_timeout()));
  return resp.url();
}

StatusOr<std::string> Attach(CriClient& c, const cri::AttachRequest& req) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::AttachResponse resp;
  RETURN_IF_ERROR(
      c.Call(stub, &cri::RuntimeService::Stub::Attach, "Attach", req, &resp, c.runtime_timeout()));
  return resp.url();
}

StatusOr<std::string> PortForward(CriClient& c, const cri::PortForwardRequest& req) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::PortForwardResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::PortForward, "PortForward", req, &resp,
                         c.runtime_timeout()));
  return resp.url();
}

StatusOr<cri::ListContainerStatsResponse> ListContainerStats(CriClient& c,
                                                             const cri::ContainerStatsFilter& f) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ListContainerStatsRequest req;
  *req.mutable_filter() = f;
  cri::ListContainerStatsResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::ListContainerStats, "ListContainerStats",
                         req, &resp, c.runtime_timeout()));
  return resp;
}

StatusOr<cri::ListPodSandboxStatsResponse> ListPodSandboxStats(
    CriClient& c, const cri::PodSandboxStatsFilter& f) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ListPodSandboxStatsRequest req;
  *req.mutable_filter() = f;
  cri::ListPodSandboxStatsResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::ListPodSandboxStats,
                         "ListPodSandboxStats", req, &resp, c.runtime_timeout()));
  return resp;
}

StatusOr<cri::ListMetricDescriptorsResponse> ListMetricDescriptors(CriClient& c) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ListMetricDescriptorsResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::ListMetricDescriptors,
                         "ListMetricDescriptors", cri::ListMetricDescriptorsRequest(), &resp,
                         c.runtime_timeout()));
  return resp;
}

StatusOr<cri::ListPodSandboxMetricsResponse> ListPodSandboxMetrics(CriClient& c) {
  ASSIGN_OR_RETURN(auto* stub, c.runtime());
  cri::ListPodSandboxMetricsResponse resp;
  RETURN_IF_ERROR(c.Call(stub, &cri::RuntimeService::Stub::ListPodSandboxMetrics,
                         "ListPodSandboxMetrics", cri::ListPodSandboxMetricsRequest(), &resp,
                         c.runtime_timeout()));
  return resp;
}

}  // namespace berth::ctl
