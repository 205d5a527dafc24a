// Attach (CRI): checks the request and answers a single-use URL of the
// streaming server, which joins the container's stdio through its
// berth-monitor when a client connects.
#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::Attach(grpc::ServerContext*, const runtime::v1::AttachRequest* req,
                                        runtime::v1::AttachResponse* resp) {
  return rpc_.Run("Attach", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    if (!req->stdin() && !req->stdout() && !req->stderr()) {
      return InvalidArgumentError("one of stdin, stdout and stderr must be set");
    }
    if (req->tty() && req->stderr()) {
      return InvalidArgumentError("tty and stderr cannot both be set (a terminal has no stderr)");
    }
    ASSIGN_OR_RETURN(container::ContainerRecord r,
                     domain_.containers->GetRunning(req->container_id()));
    if (req->stdin() && !r.stdin_open) {
      return FailedPreconditionError(StrCat("container ", r.id,
                                            " was not created with stdin open "
                                            "(ContainerConfig.stdin); attach without stdin"));
    }
    stream::AttachRequest attach;
    attach.container_id = r.id;
    attach.tty = req->tty();
    attach.stdin = req->stdin();
    attach.stdout = req->stdout();
    attach.stderr = req->stderr();
    ASSIGN_OR_RETURN(std::string url, domain_.stream->AttachUrl(attach));
    resp->set_url(url);
    return OkStatus();
  });
}

}  // namespace berth::server
