// Container RPCs: validate, call the container manager, build the response.
#include "server/cri_convert.h"
#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::CreateContainer(grpc::ServerContext*,
                                                 const runtime::v1::CreateContainerRequest* req,
                                                 runtime::v1::CreateContainerResponse* resp) {
  return rpc_.Run("CreateContainer", [&]() -> berth::Status {
    if (req->pod_sandbox_id().empty()) return InvalidArgumentError("pod_sandbox_id is empty");
    container::CreateRequest create;
    create.sandbox_id = req->pod_sandbox_id();
    ASSIGN_OR_RETURN(create.config, ToContainerConfig(req->config()));
    create.image = req->config().image().image();
    create.log_path = req->config().log_path();
    ASSIGN_OR_RETURN(container::ContainerRecord r, domain_.containers->Create(create));
    resp->set_container_id(r.id);
    return OkStatus();
  });
}

grpc::Status RuntimeServiceImpl::StartContainer(grpc::ServerContext*,
                                                const runtime::v1::StartContainerRequest* req,
                                                runtime::v1::StartContainerResponse*) {
  return rpc_.Run("StartContainer", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    return domain_.containers->Start(req->container_id());
  });
}

// Idempotent (CRI spec: "must not return an error if the container has
// already been stopped"): stopping an exited or unknown container succeeds,
// as in containerd 2 and CRI-O; the kubelet retries stops after restarts.
grpc::Status RuntimeServiceImpl::StopContainer(grpc::ServerContext*,
                                               const runtime::v1::StopContainerRequest* req,
                                               runtime::v1::StopContainerResponse*) {
  return rpc_.Run("StopContainer", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    if (req->timeout() < 0) return InvalidArgumentError("timeout must not be negative");
    return domain_.containers->Stop(req->container_id(), std::chrono::seconds(req->timeout()));
  });
}

// Idempotent (CRI spec): removing an unknown container succeeds; a running
// one is killed first.
grpc::Status RuntimeServiceImpl::RemoveContainer(grpc::ServerContext*,
                                                 const runtime::v1::RemoveContainerRequest* req,
                                                 runtime::v1::RemoveContainerResponse*) {
  return rpc_.Run("RemoveContainer", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    return domain_.containers->Remove(req->container_id());
  });
}

grpc::Status RuntimeServiceImpl::ListContainers(grpc::ServerContext*,
                                                const runtime::v1::ListContainersRequest* req,
                                                runtime::v1::ListContainersResponse* resp) {
  return rpc_.Run("ListContainers", [&]() -> berth::Status {
    FillContainers(req->filter(), resp->mutable_containers());
    return OkStatus();
  });
}

void RuntimeServiceImpl::FillContainers(
    const runtime::v1::ContainerFilter& f,
    google::protobuf::RepeatedPtrField<runtime::v1::Container>* out) {
  // Filtered by the manager, and each answer built straight from its record
  // (no copy of the records: with a thousand containers those copies were
  // most of the call).
  auto keep = [&f](const container::ContainerRecord& r) {
    if (!f.id().empty() && !r.id.starts_with(f.id())) return false;
    if (!f.pod_sandbox_id().empty() && !r.sandbox_id.starts_with(f.pod_sandbox_id())) return false;
    if (f.has_state() && f.state().state() != ToCriState(r.state)) return false;
    return LabelsMatch(f.label_selector(), r.labels);
  };
  domain_.containers->Visit(
      keep, [out](const container::ContainerRecord& r) { ToCriContainer(r, out->Add()); });
}

grpc::Status RuntimeServiceImpl::ContainerStatus(grpc::ServerContext*,
                                                 const runtime::v1::ContainerStatusRequest* req,
                                                 runtime::v1::ContainerStatusResponse* resp) {
  return rpc_.Run("ContainerStatus", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    ASSIGN_OR_RETURN(container::ContainerRecord r, domain_.containers->Get(req->container_id()));
    ToCriContainerStatus(r, resp->mutable_status());
    if (req->verbose()) {
      auto spec = domain_.containers->SpecJson(r.id);
      std::string info = StrCat("{\"pid\":", r.pid, ",\"sandboxID\":\"", r.sandbox_id,
                                "\",\"runtimeSpec\":", spec.ok() ? *spec : "null", "}");
      (*resp->mutable_info())["info"] = info;
    }
    return OkStatus();
  });
}

grpc::Status RuntimeServiceImpl::UpdateContainerResources(
    grpc::ServerContext*, const runtime::v1::UpdateContainerResourcesRequest* req,
    runtime::v1::UpdateContainerResourcesResponse*) {
  return rpc_.Run("UpdateContainerResources", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    return domain_.containers->UpdateResources(req->container_id(), ToResources(req->linux()));
  });
}

grpc::Status RuntimeServiceImpl::ReopenContainerLog(
    grpc::ServerContext*, const runtime::v1::ReopenContainerLogRequest* req,
    runtime::v1::ReopenContainerLogResponse*) {
  return rpc_.Run("ReopenContainerLog", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    return domain_.containers->ReopenLog(req->container_id());
  });
}

grpc::Status RuntimeServiceImpl::ExecSync(grpc::ServerContext*,
                                          const runtime::v1::ExecSyncRequest* req,
                                          runtime::v1::ExecSyncResponse* resp) {
  return rpc_.Run("ExecSync", [&]() -> berth::Status {
    if (req->container_id().empty()) return InvalidArgumentError("container_id is empty");
    std::vector<std::string> cmd(req->cmd().begin(), req->cmd().end());
    ASSIGN_OR_RETURN(ProcessResult r,
                     domain_.containers->ExecSync(req->container_id(), cmd,
                                                  std::chrono::seconds(req->timeout())));
    if (r.timed_out) {
      return DeadlineExceededError(StrCat("command timed out after ", req->timeout(),
                                          "s in container ", req->container_id()));
    }
    resp->set_stdout(r.out);
    resp->set_stderr(r.err);
    resp->set_exit_code(r.exit_code);
    return OkStatus();
  });
}

}  // namespace berth::server
