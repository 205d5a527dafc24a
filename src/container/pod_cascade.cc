// The pod-level cascade: a pod is stopped or removed together with its
// containers. It lives here rather than in the sandbox manager because the
// container manager is the one that knows both (the sandbox manager knows no
// containers), and here rather than in server/ so that every caller of the
// domain (CRI v1, v1alpha2, tests) gets the same order.
#include "container/container_manager.h"

namespace berth::container {

Status ContainerManager::StopPod(const std::string& sandbox_id) {
  auto sb = sandboxes_->Get(sandbox_id);
  if (!sb.ok()) return sb.status().code() == StatusCode::kNotFound ? OkStatus() : sb.status();
  // No grace period: the CRI says StopPodSandbox forcibly terminates the
  // containers (the kubelet already stopped them with their own grace).
  for (const ContainerRecord& c : List()) {
    if (c.sandbox_id != sb->id) continue;
    RETURN_IF_ERROR(Stop(c.id, std::chrono::seconds(0)));
  }
  return sandboxes_->Stop(sb->id);
}

Status ContainerManager::RemovePod(const std::string& sandbox_id) {
  auto sb = sandboxes_->Get(sandbox_id);
  if (!sb.ok()) return sb.status().code() == StatusCode::kNotFound ? OkStatus() : sb.status();
  for (const ContainerRecord& c : List()) {
    if (c.sandbox_id != sb->id) continue;
    RETURN_IF_ERROR(Remove(c.id));
  }
  return sandboxes_->Remove(sb->id);
}

}  // namespace berth::container
