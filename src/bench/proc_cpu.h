// CPU time of the processes a benchmark watches (a daemon, its helpers), from
// /proc, for the cost per call that berth-bench reports.
#pragma once

#include <string>
#include <vector>

namespace berth::bench {

// utime + stime of a process in milliseconds; 0 when it is gone or unknown.
double CpuMs(int pid);

// CpuMs plus the CPU of the children it has waited for (cutime + cstime): a
// daemon that runs a helper per call (`runc exec`) pays for it there.
double CpuWithChildrenMs(int pid);

// Processes named `name` (as /proc/<pid>/comm shows it: the first 15
// characters) whose command line contains one of `ids` (pod or container IDs):
// the per-container helpers of a runtime.
std::vector<int> FindHelpers(const std::string& name, const std::vector<std::string>& ids);

}  // namespace berth::bench
