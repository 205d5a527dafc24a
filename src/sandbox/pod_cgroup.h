// Pod-level cgroup limits: the cgroup a pod's containers share (its cgroup
// parent) sized in place, for in-place pod resize (UpdatePodSandboxResources).
// Writes the cgroup files itself, on cgroup v1 (one hierarchy per
// controller) or v2, since no OCI runtime owns the pod's cgroup.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::sandbox {

// CPU and memory limits of one cgroup; 0 leaves a value as it is.
struct CgroupLimits {
  int64_t cpu_period = 0;  // microseconds
  int64_t cpu_quota = 0;   // microseconds per period; -1: unlimited
  int64_t cpu_shares = 0;
  int64_t memory_limit_in_bytes = 0;  // -1: unlimited
};

// Applies `limits` to the cgroup `dir` (a path below the root of every
// hierarchy, "/kubepods/pod1"), creating it where missing, in the
// hierarchies that /proc/self/mountinfo text `mountinfo` shows. On v2 the
// shares become cpu.weight as runc converts them. Errors name the file.
Status WriteCgroupLimits(const std::string& dir, const CgroupLimits& limits,
                         std::string_view mountinfo);

// runc's conversion of cgroup v1 cpu shares (2..262144) to v2 cpu.weight
// (1..10000).
uint64_t CpuSharesToWeight(uint64_t shares);

}  // namespace berth::sandbox
