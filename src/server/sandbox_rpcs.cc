// Pod sandbox RPCs: validate, call the sandbox (and container) managers,
// build the response.
#include "oci/spec_builder.h"
#include "server/cri_convert.h"
#include "server/cri_services.h"

namespace berth::server {

grpc::Status RuntimeServiceImpl::RunPodSandbox(grpc::ServerContext*,
                                               const runtime::v1::RunPodSandboxRequest* req,
                                               runtime::v1::RunPodSandboxResponse* resp) {
  return rpc_.Run("RunPodSandbox", [&]() -> berth::Status {
    ASSIGN_OR_RETURN(sandbox::SandboxConfig cfg, ToSandboxConfig(req->config()));
    RETURN_IF_ERROR(sandbox::ValidateUserNamespace(cfg));
    RETURN_IF_ERROR(oci::ValidateCgroupParent(req->config().linux().cgroup_parent(),
                                              config_.cgroup_driver == "systemd"
                                                  ? oci::CgroupDriver::kSystemd
                                                  : oci::CgroupDriver::kCgroupfs));
    // Right after a start the handler's probe may still run: wait for it
    // (a probe gives up within half a minute, so this is bounded).
    ASSIGN_OR_RETURN(oci::HandlerState h,
                     info_.handlers->WaitFor(req->runtime_handler(), kHandlerProbeWait));
    const std::string& handler = h.name;
    if (!domain_.runtimes.contains(handler)) {
      return InvalidArgumentError(StrCat("unknown runtime handler \"", handler, "\""));
    }
    if (!h.probe.works) {
      return FailedPreconditionError(
          StrCat("runtime handler \"", handler, "\" (", h.binary,
                 ") cannot run containers on this host: ", h.probe.error));
    }
    if (cfg.userns && !h.probe.features.user_namespaces) {
      return FailedPreconditionError(
          StrCat("runtime handler \"", handler,
                 "\" cannot run pods in a user namespace here: ", h.probe.user_namespaces_error));
    }
    ASSIGN_OR_RETURN(sandbox::SandboxRecord r, domain_.sandboxes->Run(cfg, handler));
    resp->set_pod_sandbox_id(r.id);
    return OkStatus();
  });
}

// Idempotent (CRI spec): stopping a stopped or unknown sandbox succeeds.
grpc::Status RuntimeServiceImpl::StopPodSandbox(grpc::ServerContext*,
                                                const runtime::v1::StopPodSandboxRequest* req,
                                                runtime::v1::StopPodSandboxResponse*) {
  return rpc_.Run("StopPodSandbox", [&]() -> berth::Status {
    if (req->pod_sandbox_id().empty()) return InvalidArgumentError("pod_sandbox_id is empty");
    return domain_.containers->StopPod(req->pod_sandbox_id());
  });
}

// Idempotent (CRI spec): removing an unknown sandbox succeeds; its
// containers are removed first, running or not.
grpc::Status RuntimeServiceImpl::RemovePodSandbox(grpc::ServerContext*,
                                                  const runtime::v1::RemovePodSandboxRequest* req,
                                                  runtime::v1::RemovePodSandboxResponse*) {
  return rpc_.Run("RemovePodSandbox", [&]() -> berth::Status {
    if (req->pod_sandbox_id().empty()) return InvalidArgumentError("pod_sandbox_id is empty");
    return domain_.containers->RemovePod(req->pod_sandbox_id());
  });
}

grpc::Status RuntimeServiceImpl::PodSandboxStatus(grpc::ServerContext*,
                                                  const runtime::v1::PodSandboxStatusRequest* req,
                                                  runtime::v1::PodSandboxStatusResponse* resp) {
  return rpc_.Run("PodSandboxStatus", [&]() -> berth::Status {
    if (req->pod_sandbox_id().empty()) return InvalidArgumentError("pod_sandbox_id is empty");
    ASSIGN_OR_RETURN(sandbox::SandboxRecord r, domain_.sandboxes->Get(req->pod_sandbox_id()));
    ToCriSandboxStatus(r, resp->mutable_status());
    // With the statuses of the pod's containers and the time they were
    // taken, whatever `verbose` says (as CRI-O with pod events on): the
    // kubelet's Evented PLEG asks with verbose=false and uses both when the
    // timestamp is set. containerd sets neither.
    ToCriContainerStatuses(domain_.containers->ListInSandbox(r.id),
                           resp->mutable_containers_statuses());
    resp->set_timestamp(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
    if (req->verbose()) {
      (*resp->mutable_info())["info"] = r.ToJson();
    }
    return OkStatus();
  });
}

grpc::Status RuntimeServiceImpl::ListPodSandbox(grpc::ServerContext*,
                                                const runtime::v1::ListPodSandboxRequest* req,
                                                runtime::v1::ListPodSandboxResponse* resp) {
  return rpc_.Run("ListPodSandbox", [&]() -> berth::Status {
    FillPodSandboxes(req->filter(), resp->mutable_items());
    return OkStatus();
  });
}

void RuntimeServiceImpl::FillPodSandboxes(
    const runtime::v1::PodSandboxFilter& f,
    google::protobuf::RepeatedPtrField<runtime::v1::PodSandbox>* out) {
  // Built straight from the records, without copying them.
  domain_.sandboxes->Visit([&f, out](const sandbox::SandboxRecord& r) {
    if (!f.id().empty() && !r.id.starts_with(f.id())) return;
    if (f.has_state()) {
      bool ready = r.state == sandbox::SandboxState::kReady;
      if ((f.state().state() == runtime::v1::SANDBOX_READY) != ready) return;
    }
    if (!LabelsMatch(f.label_selector(), r.config.labels)) return;
    ToCriSandbox(r, out->Add());
  });
}

}  // namespace berth::server
