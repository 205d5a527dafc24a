// In-place pod resize: UpdatePodSandboxResources sizes the pod's cgroup (its
// cgroup parent, which every container of the pod is below) and keeps the
// new figures in the pod's record.
#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "oci/spec_builder.h"
#include "sandbox/pod_cgroup.h"
#include "sandbox/sandbox_manager.h"

namespace berth::sandbox {

namespace {

// The pod cgroup holds the containers and the pod's overhead: the limits are
// the sums (a zero figure of either side is "not set", as in the CRI).
CgroupLimits PodLimits(const oci::PodResources& r, const std::optional<oci::PodResources>& o) {
  CgroupLimits l;
  const oci::PodResources none;
  const oci::PodResources& over = o ? *o : none;
  l.cpu_period = r.cpu_period > 0 ? r.cpu_period : over.cpu_period;
  if (r.cpu_quota > 0) l.cpu_quota = r.cpu_quota + std::max<int64_t>(over.cpu_quota, 0);
  if (r.cpu_shares > 0) l.cpu_shares = r.cpu_shares + std::max<int64_t>(over.cpu_shares, 0);
  if (r.memory_limit_in_bytes > 0) {
    l.memory_limit_in_bytes =
        r.memory_limit_in_bytes + std::max<int64_t>(over.memory_limit_in_bytes, 0);
  }
  return l;
}

}  // namespace

StatusOr<std::string> SandboxManager::UpdateResources(
    const std::string& id, const std::optional<oci::PodResources>& resources,
    const std::optional<oci::PodResources>& overhead, oci::CgroupDriver driver) {
  ASSIGN_OR_RETURN(SandboxRecord r, Get(id));
  auto held = locks_.Acquire(r.id);
  ASSIGN_OR_RETURN(r, Get(r.id));
  if (r.state != SandboxState::kReady) {
    return FailedPreconditionError(StrCat("pod sandbox ", r.id, " is not ready"));
  }
  if (overhead) r.config.overhead = overhead;
  if (resources) r.config.resources = resources;
  ASSIGN_OR_RETURN(std::string dir, oci::PodCgroupDir(r.config.cgroup_parent, driver));
  if (!dir.empty() && dir != "/" && r.config.resources) {
    ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo"));
    Status s = WriteCgroupLimits(dir, PodLimits(*r.config.resources, r.config.overhead), mountinfo);
    if (!s.ok()) return Annotate(s, StrCat("resize pod sandbox ", r.id));
  }
  RETURN_IF_ERROR(Save(r));
  spdlog::info("event=sandbox_resized id={} cgroup={}", r.id, dir.empty() ? "none" : dir);
  return dir;
}

}  // namespace berth::sandbox
