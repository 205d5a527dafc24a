// berthd's side of the streaming server (stream/runtime.h): exec through the
// container manager (the same path as ExecSync), attach through the
// container's berth-monitor, port-forward through the sandbox manager.
#pragma once

#include <memory>
#include <string>

#include "container/container_manager.h"
#include "sandbox/sandbox_manager.h"
#include "stream/runtime.h"

namespace berth::server {

// Thread-safe (the managers are). The managers must outlive this object and
// every ProcessStreams it returned.
class StreamRuntime final : public stream::Runtime {
 public:
  StreamRuntime(container::ContainerManager* containers, sandbox::SandboxManager* sandboxes)
      : containers_(containers), sandboxes_(sandboxes) {}

  StatusOr<std::unique_ptr<stream::ProcessStreams>> Exec(const stream::ExecRequest& req) override;
  StatusOr<std::unique_ptr<stream::ProcessStreams>> Attach(
      const stream::AttachRequest& req) override;
  StatusOr<UniqueFd> PortForward(const std::string& pod_sandbox_id, uint16_t port) override;

 private:
  container::ContainerManager* containers_;
  sandbox::SandboxManager* sandboxes_;
};

}  // namespace berth::server
