// berth-bench's ExecSync cost: latency per call and the CPU time the runtime
// spends per call (daemon, its per-pod helpers and everything they start and
// reap: runc, the exec'd process), against any CRI endpoint.
//
// Blocking; keeps no state between calls.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace berth::bench {

struct ExecBenchOptions {
  std::string endpoint;  // unix:///path
  std::string image;     // must already be pulled
  int iterations = 100;
  bool host_network = true;
  std::string name_prefix = "bexec";
  int daemon_pid = 0;       // required: its CPU (with its reaped children's) counts
  std::string helper_name;  // per-pod or per-container helper (shim, monitor) whose CPU counts
};

struct ExecBenchResult {
  std::vector<double> ms;     // one per ExecSync `echo hi`
  double daemon_cpu_ms = 0;   // utime+stime+cutime+cstime of the daemon over all calls
  double helpers_cpu_ms = 0;  // the same of the pod's helpers
};

// One pod with a running `sleep 3600` container, 3 warm-up calls, then
// `iterations` ExecSync `echo hi` (output checked) back to back; the pod is
// removed afterwards.
StatusOr<ExecBenchResult> RunExecBench(const ExecBenchOptions& options);

}  // namespace berth::bench
