// The gRPC side of berthctl: one lazily opened channel per endpoint and the
// CRI calls the commands make, with crictl's deadlines and its checks on the
// responses. Errors carry the gRPC code and read like Go's gRPC errors
// ("rpc error: code = NotFound desc = ..."), since that is what crictl users
// grep for.
//
// Not thread-safe: one CriClient per command invocation.
#pragma once

// The CRI headers come first: their Signal enum has constants named like the
// <signal.h> macros, which must not be defined yet.
// clang-format off
#include "runtime/v1/api.grpc.pb.h"
#include "runtime/v1/api.pb.h"
// clang-format on

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "ctl/endpoint.h"
#include "ctl/log.h"

namespace berth::ctl {

namespace cri = ::runtime::v1;

// "rpc error: code = <GoName> desc = <message>", keeping the code.
Status FromGrpcStatus(const grpc::Status& s);

// Go's name of a gRPC code: "NotFound", "Canceled", "DeadlineExceeded"...
std::string_view GoCodeName(grpc::StatusCode code);

class CriClient {
 public:
  // Nothing is connected until the first call. `log` must outlive this.
  CriClient(Settings settings, Logger& log);

  const Settings& settings() const { return settings_; }
  Logger& log() { return log_; }

  // The stubs (channels open on first use; an unusable endpoint fails here).
  StatusOr<cri::RuntimeService::Stub*> runtime();
  StatusOr<cri::ImageService::Stub*> images();

  // Runs one unary call. `deadline` is the call timeout; nullopt means none
  // (crictl sets none for PullImage and ImageFsInfo). The request and the
  // response are logged at debug level under `name`, which must be the RPC's
  // method name: a server that speaks only runtime.v1alpha2 is called under
  // that name (see ApiVersion).
  template <typename Stub, typename Req, typename Resp>
  Status Call(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
              std::string_view name, const Req& req, Resp* resp,
              std::optional<std::chrono::milliseconds> deadline) {
    const CriService service = ServiceOf(stub);
    LogMessage(name, "Request", req);
    grpc::Status s;
    if (api_[service] != ApiVersion::kV1alpha2) {
      grpc::ClientContext ctx;
      if (deadline) ctx.set_deadline(std::chrono::system_clock::now() + *deadline);
      s = (stub->*method)(&ctx, req, resp);
      if (s.ok()) {
        api_[service] = ApiVersion::kV1;
      } else if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
                 api_[service] == ApiVersion::kUnknown) {
        // Not executed: safe to repeat under v1alpha2 if that is what the server speaks.
        DetectApiVersion(service);
      }
    }
    if (api_[service] == ApiVersion::kV1alpha2) {
      s = CallV1alpha2(service, name, req, resp, deadline);
    }
    if (!s.ok()) return FromGrpcStatus(s);
    LogMessage(name, "Response", *resp);
    return OkStatus();
  }

  // The CRI API version the endpoint of a service answers with, as crictl
  // and the kubelet find it: v1 first; if the server does not know the
  // service under v1 (UNIMPLEMENTED for Version, or ImageFsInfo for images)
  // but knows it under runtime.v1alpha2, every later call of that service
  // goes to v1alpha2 with the same messages (v1 is a superset on the wire;
  // v1-only request fields are ignored by such a server). kUnknown until
  // the first call has answered.
  enum class ApiVersion { kUnknown, kV1, kV1alpha2 };
  enum class CriService { kRuntime, kImage };
  ApiVersion api_version(CriService service) const {
    auto it = api_.find(service);
    return it == api_.end() ? ApiVersion::kUnknown : it->second;
  }

  std::chrono::milliseconds timeout() const { return settings_.timeout; }

  // The base deadline of runtime calls: the global timeout, or the value a
  // command's --cancel-timeout/--timeout set (crictl's getRuntimeService(c,
  // timeout)). Image calls keep timeout().
  std::chrono::milliseconds runtime_timeout() const {
    return runtime_timeout_.value_or(settings_.timeout);
  }
  // A zero or negative value keeps the global timeout.
  void set_runtime_timeout(std::chrono::milliseconds t) {
    if (t.count() > 0) runtime_timeout_ = t;
  }

 private:
  void LogMessage(std::string_view name, std::string_view kind, const google::protobuf::Message& m);
  StatusOr<std::shared_ptr<grpc::Channel>> Channel(const std::string& endpoint);
  static CriService ServiceOf(const cri::RuntimeService::Stub*) { return CriService::kRuntime; }
  static CriService ServiceOf(const cri::ImageService::Stub*) { return CriService::kImage; }
  // Sets api_[service] to kV1alpha2 when the server answers the service's
  // probe RPC under v1alpha2 but not under v1, else to kV1.
  void DetectApiVersion(CriService service);
  // `name` under /runtime.v1alpha2.<service>/ with the v1 messages' bytes.
  grpc::Status CallV1alpha2(CriService service, std::string_view name,
                            const google::protobuf::Message& req, google::protobuf::Message* resp,
                            std::optional<std::chrono::milliseconds> deadline);

  Settings settings_;
  std::optional<std::chrono::milliseconds> runtime_timeout_;
  Logger& log_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // by endpoint
  std::unique_ptr<cri::RuntimeService::Stub> runtime_;
  std::unique_ptr<cri::ImageService::Stub> images_;
  std::map<CriService, ApiVersion> api_;  // absent = kUnknown
};

// The CRI calls, each with crictl's deadline and response checks.
StatusOr<cri::VersionResponse> Version(CriClient& c, const std::string& api_version);
StatusOr<cri::StatusResponse> RuntimeStatus(CriClient& c, bool verbose);
StatusOr<cri::ListContainersResponse> ListContainers(CriClient& c,
                                                     const cri::ContainerFilter* filter);
StatusOr<cri::ListImagesResponse> ListImages(CriClient& c, const std::string& image_filter);
// Fails when the runtime returns an image without id or size, as crictl does.
StatusOr<cri::ImageStatusResponse> ImageStatus(CriClient& c, const std::string& image,
                                               bool verbose);
StatusOr<cri::PullImageResponse> PullImage(CriClient& c, const cri::PullImageRequest& req);
Status RemoveImage(CriClient& c, const std::string& image);
StatusOr<cri::ImageFsInfoResponse> ImageFsInfo(CriClient& c);

// --- pod sandboxes and containers ------------------------------------------
// Deadlines follow the kubelet's remote runtime client that crictl uses:
// runtime_timeout() per call, twice that for RunPodSandbox, plus the grace
// period for StopContainer, and for ExecSync plus the command timeout (no
// deadline at all when the command has none).

// Returns the new sandbox id; an empty id in the response is an error.
StatusOr<std::string> RunPodSandbox(CriClient& c, const cri::PodSandboxConfig& config,
                                    const std::string& runtime_handler);
Status StopPodSandbox(CriClient& c, const std::string& id);
Status RemovePodSandbox(CriClient& c, const std::string& id);
// Fails when a returned status lacks its id, metadata (name, namespace, uid)
// or creation time, as crictl does.
StatusOr<cri::PodSandboxStatusResponse> PodSandboxStatus(CriClient& c, const std::string& id,
                                                         bool verbose);
StatusOr<cri::ListPodSandboxResponse> ListPodSandbox(CriClient& c,
                                                     const cri::PodSandboxFilter* filter);
// Returns the new container id. `sandbox_config` may be null.
StatusOr<std::string> CreateContainer(CriClient& c, const std::string& pod_id,
                                      const cri::ContainerConfig& config,
                                      const cri::PodSandboxConfig* sandbox_config);
Status StartContainer(CriClient& c, const std::string& id);
// `timeout_seconds`: the grace period before SIGKILL.
Status StopContainer(CriClient& c, const std::string& id, int64_t timeout_seconds);
Status RemoveContainer(CriClient& c, const std::string& id);
// Fails when a returned status lacks its id, name, creation time, image or
// image ref, as crictl does.
StatusOr<cri::ContainerStatusResponse> ContainerStatus(CriClient& c, const std::string& id,
                                                       bool verbose);
Status UpdateContainerResources(CriClient& c, const std::string& id,
                                const cri::LinuxContainerResources& linux);
// Runs `cmd` synchronously; a non-zero exit code is part of the response,
// not an error. A deadline hit reads "command \"<cmd>\" timed out".
StatusOr<cri::ExecSyncResponse> ExecSync(CriClient& c, const std::string& id,
                                         const std::vector<std::string>& cmd,
                                         int64_t timeout_seconds);

// The streaming calls: each returns the URL to connect to (crictl's
// deadlines: runtime_timeout()).
StatusOr<std::string> Exec(CriClient& c, const cri::ExecRequest& req);
StatusOr<std::string> Attach(CriClient& c, const cri::AttachRequest& req);
StatusOr<std::string> PortForward(CriClient& c, const cri::PortForwardRequest& req);
// --- stats and metrics ---------------------------------------------------------
StatusOr<cri::ListContainerStatsResponse> ListContainerStats(CriClient& c,
                                                             const cri::ContainerStatsFilter& f);
StatusOr<cri::ListPodSandboxStatsResponse> ListPodSandboxStats(CriClient& c,
                                                               const cri::PodSandboxStatsFilter& f);
StatusOr<cri::ListMetricDescriptorsResponse> ListMetricDescriptors(CriClient& c);
StatusOr<cri::ListPodSandboxMetricsResponse> ListPodSandboxMetrics(CriClient& c);

}  // namespace berth::ctl
