// berth-bench's restart measurement: how soon a CRI runtime answers again
// after it was killed (a crash) or stopped (an upgrade), the way a kubelet
// or `crictl version` polling it sees it. Any CRI endpoint, so Berth and
// containerd are measured by the same client in the same run.
//
// Blocking; spawns and kills the daemon it measures. Run one at a time.
#pragma once

#include <string>
#include <vector>

#include "bench/lifecycle_bench.h"
#include "common/status.h"

namespace berth::bench {

struct StartupBenchOptions {
  std::string endpoint;              // unix:///path of the daemon's CRI socket
  std::vector<std::string> command;  // the daemon's argv; argv[0] an absolute path
  std::string log_file;              // the daemon's stdout and stderr, appended
  int runs = 5;
  bool kill = true;  // between runs SIGKILL (a crash), else SIGTERM (a clean stop)
  // Running pods kept across the restarts (state to recover), made with
  // `pods` (its endpoint is set from `endpoint`); 0 for none.
  int keep_pods = 0;
  LifecycleBenchOptions pods;
};

struct StartupRun {
  double first_answer_ms = 0;   // spawn to the first successful Version
  double runtime_ready_ms = 0;  // spawn to Status with RuntimeReady true
};

// Starts the daemon once (not measured) and, with keep_pods, starts the pods;
// then `runs` times: kill or stop the daemon, start it again and time it.
// Finally removes the pods and stops the daemon with SIGTERM.
StatusOr<std::vector<StartupRun>> RunStartupBench(const StartupBenchOptions& options);

}  // namespace berth::bench
