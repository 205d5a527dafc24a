// berth-bench's per-call measurement of the CRI calls a kubelet makes most:
// the container lifecycle call by call (CreateContainer, StartContainer,
// ContainerStatus, StopContainer, RemoveContainer) and the status and list
// calls with many objects present, with the daemon's CPU time per call. Any
// CRI endpoint, so Berth and containerd are driven by the same client in the
// same run.
//
// Thread safety: the functions block and keep no state between calls; run one
// at a time per endpoint (they create and remove pods).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace berth::bench {

struct CallsBenchOptions {
  std::string endpoint;  // unix:///path
  std::string image;     // busybox, already pulled
  int iterations = 20;   // container lifecycles timed call by call
  // Object counts for the status and list calls: for each, the run grows to
  // that many pod sandboxes and containers (host network; the first 10 pods
  // stay ready and hold the containers, which ran `true` and exited; the
  // other pods are stopped), then times the calls.
  std::vector<int> objects = {100, 1000};
  int calls = 200;     // back-to-back calls per RPC and object count
  int daemon_pid = 0;  // whose CPU time is measured; 0: none
  std::string name_prefix = "bcalls";
  // For profiling a daemon between runs: leave the pods and containers the
  // run made in place (`keep_objects`), or make none and time the status and
  // list calls against whatever the endpoint holds (`existing_objects`; no
  // lifecycle, `objects` ignored).
  bool keep_objects = false;
  bool existing_objects = false;
};

// One RPC timed call by call; `daemon_cpu_ms` is the daemon's utime+stime
// over all of `ms` (0 when not measured).
struct CallCost {
  std::string rpc;
  int objects = 0;  // pods and containers present (0: the lifecycle)
  std::vector<double> ms;
  double daemon_cpu_ms = 0;
  int items = 0;     // entries in the last response of a list call
  size_t bytes = 0;  // encoded size of the last response
};

StatusOr<std::vector<CallCost>> RunCallsBench(const CallsBenchOptions& options);

}  // namespace berth::bench
