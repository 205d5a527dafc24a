// PortForward (CRI): checks the request and answers a single-use URL of the
// streaming server, which connects to the pod's loopback when a client
// opens a stream for a port.
#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::PortForward(grpc::ServerContext*,
                                             const runtime::v1::PortForwardRequest* req,
                                             runtime::v1::PortForwardResponse* resp) {
  return rpc_.Run("PortForward", [&]() -> berth::Status {
    if (req->pod_sandbox_id().empty()) return InvalidArgumentError("pod_sandbox_id is empty");
    for (int32_t port : req->port()) {
      if (port < 1 || port > 65535) {
        return InvalidArgumentError(StrCat("port ", port, " is not within 1..65535"));
      }
    }
    ASSIGN_OR_RETURN(sandbox::SandboxRecord r, domain_.sandboxes->Get(req->pod_sandbox_id()));
    if (r.state != sandbox::SandboxState::kReady) {
      return FailedPreconditionError(StrCat("pod sandbox ", r.id, " is not ready"));
    }
    stream::PortForwardRequest forward;
    forward.pod_sandbox_id = r.id;
    forward.ports.assign(req->port().begin(), req->port().end());
    ASSIGN_OR_RETURN(std::string url, domain_.stream->PortForwardUrl(forward));
    resp->set_url(url);
    return OkStatus();
  });
}

}  // namespace berth::server
