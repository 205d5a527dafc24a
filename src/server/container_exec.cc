// Exec (CRI): checks the request and answers a single-use URL of the
// streaming server; the command starts when a client connects to the URL
// (see server/stream_runtime.h).
#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::Exec(grpc::ServerContext*, const runtime::v1::ExecRequest* req,
                                      runtime::v1::ExecResponse* resp) {
  return rpc_.Run("Exec", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    if (req->cmd().empty()) return InvalidArgumentError("cmd is empty: name the command to run");
    if (!req->stdin() && !req->stdout() && !req->stderr()) {
      return InvalidArgumentError("one of stdin, stdout and stderr must be set");
    }
    // As the kubelet says: a terminal has one output stream.
    if (req->tty() && req->stderr()) {
      return InvalidArgumentError("tty and stderr cannot both be set (a terminal has no stderr)");
    }
    ASSIGN_OR_RETURN(container::ContainerRecord r,
                     domain_.containers->GetRunning(req->container_id()));
    stream::ExecRequest exec;
    exec.container_id = r.id;
    exec.cmd.assign(req->cmd().begin(), req->cmd().end());
    exec.tty = req->tty();
    exec.stdin = req->stdin();
    exec.stdout = req->stdout();
    exec.stderr = req->stderr();
    ASSIGN_OR_RETURN(std::string url, domain_.stream->ExecUrl(exec));
    resp->set_url(url);
    return OkStatus();
  });
}

}  // namespace berth::server
