// berth-bench's stats measurement: the cost of the CRI stats RPCs on any
// endpoint, with many running containers, so Berth and containerd are driven
// by the same client in the same run.
//
// Thread safety: RunStatsBench blocks and keeps no state; run one at a time
// per endpoint (it creates and removes pods).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::bench {

struct StatsBenchOptions {
  std::string endpoint;  // unix:///path
  std::string image;     // must already be pulled
  int containers = 100;  // running containers, one per pod
  bool host_network = false;
  std::string log_dir;  // pod log directories; empty: no container logs
  std::string name_prefix = "bstats";
  // Pods get cgroup parent <cgroup_root>/pod<n> (containerd's pod stats need
  // one, as with a kubelet); the tree is removed afterwards.
  std::string cgroup_root;
  int daemon_pid = 0;       // whose CPU time is measured (required)
  std::string helper_name;  // per-container helpers also measured (containerd-shim-runc-v2)
  int calls = 50;           // back-to-back calls per RPC
  int poll_seconds = 60;    // kubelet polling pattern duration; 0 skips it
};

// One RPC called `calls` times back to back.
struct RpcCost {
  std::string rpc;            // ListContainerStats, ListPodSandboxStats
  std::vector<double> ms;     // client-side latency of each call
  int items = 0;              // entries in the last response
  int items_with_cpu = 0;     // ... that carry CPU figures
  double daemon_cpu_ms = 0;   // daemon utime+stime over all calls
  double helpers_cpu_ms = 0;  // the helpers' over all calls
};

struct StatsBenchResult {
  int containers = 0;
  std::vector<RpcCost> rpcs;
  // The kubelet's pattern: ListPodSandbox + ListContainers every second,
  // ListPodSandboxStats + ListContainerStats every 10 s.
  double poll_seconds = 0;
  int poll_relists = 0, poll_stats_rounds = 0;
  double poll_daemon_cpu_ms = 0, poll_helpers_cpu_ms = 0;
};

StatusOr<StatsBenchResult> RunStatsBench(const StatsBenchOptions& options);

}  // namespace berth::bench
