#include "ctl/client.h"

#include "ctl/table.h"

namespace berth::ctl {
namespace {

// crictl's client accepts messages up to 16 MiB.
constexpr int kMaxMessageSize = 16 * 1024 * 1024;

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
                         &resp, c.timeout()));
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

}  // namespace berth::ctl
