#include "server/v1alpha2_services.h"
// (blank line keeps clang-format from reordering)

#include "server/rpc_decorator.h"
#include "server/v1alpha2_convert.h"

namespace berth::server {

namespace {

// request v1alpha2 -> v1, the v1 handler, response v1 -> v1alpha2.
template <typename V1Service, typename V1Req, typename V1Resp, typename Req, typename Resp>
grpc::Status Forward(V1Service& v1,
                     grpc::Status (V1Service::*handler)(grpc::ServerContext*, const V1Req*,
                                                        V1Resp*),
                     grpc::ServerContext* ctx, const Req& req, Resp* resp) {
  V1Req v1_req;
  if (Status s = v1alpha2::Upgrade(req, &v1_req); !s.ok()) return ToGrpcStatus(s);
  V1Resp v1_resp;
  grpc::Status g = (v1.*handler)(ctx, &v1_req, &v1_resp);
  if (!g.ok()) return g;
  return ToGrpcStatus(v1alpha2::Downgrade(v1_resp, resp));
}

}  // namespace

// Each forwarder names its RPC once; request and response types follow the
// CRI's naming (<Method>Request, <Method>Response) in both versions.
#define BERTH_FORWARD(Class, V1Svc, Method)                                     \
  grpc::Status Class::Method(grpc::ServerContext* ctx,                          \
                             const runtime::v1alpha2::Method##Request* req,     \
                             runtime::v1alpha2::Method##Response* resp) {       \
    return Forward(v1_, &runtime::v1::V1Svc::Service::Method, ctx, *req, resp); \
  }

BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, Version)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, RunPodSandbox)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, StopPodSandbox)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, RemovePodSandbox)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, PodSandboxStatus)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ListPodSandbox)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, CreateContainer)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, StartContainer)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, StopContainer)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, RemoveContainer)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ListContainers)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ContainerStatus)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, UpdateContainerResources)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ReopenContainerLog)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ExecSync)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, Exec)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, Attach)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, PortForward)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ContainerStats)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ListContainerStats)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, PodSandboxStats)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, ListPodSandboxStats)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, UpdateRuntimeConfig)
BERTH_FORWARD(V1alpha2RuntimeService, RuntimeService, Status)

BERTH_FORWARD(V1alpha2ImageService, ImageService, ListImages)
BERTH_FORWARD(V1alpha2ImageService, ImageService, ImageStatus)
BERTH_FORWARD(V1alpha2ImageService, ImageService, PullImage)
BERTH_FORWARD(V1alpha2ImageService, ImageService, RemoveImage)
BERTH_FORWARD(V1alpha2ImageService, ImageService, ImageFsInfo)

#undef BERTH_FORWARD

}  // namespace berth::server
