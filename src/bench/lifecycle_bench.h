// berth-bench's pod and container lifecycle measurement: any CRI endpoint, so
// Berth and containerd are driven by the same client in the same run.
//
// Thread safety: the functions below are blocking and keep no state between
// calls; run one at a time per endpoint (they create and remove pods).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::bench {

struct LifecycleBenchOptions {
  std::string endpoint;  // unix:///path
  std::string image;     // must already be pulled
  int iterations = 10;
  bool host_network = false;  // pods in the node's network (no CNI) instead of their own
  // Where pods keep container logs (PodSandboxConfig.log_directory gets a
  // subdirectory per pod); empty: no log_directory, so no container log.
  std::string log_dir;
  std::string name_prefix = "bench";  // pod names: <prefix>-{lc,mem}-<pid>-<n>
  // Memory mode: number of pods with one running container each; 0 skips it.
  int memory_pods = 10;
  int daemon_pid = 0;       // 0: no daemon RSS
  std::string helper_name;  // per-container helper's program name; empty: no helper RSS
};

// One timed step of an iteration; `ms` holds one sample per iteration.
struct PhaseTimes {
  std::string phase;  // pod_start, container_create, container_start, exec_sync,
                      // container_stop_remove, pod_stop_remove, total
  std::vector<double> ms;
};

// Each iteration: RunPodSandbox (own PID namespace per container), CreateContainer
// (`sleep 3600`), StartContainer, ExecSync (`echo hi`, output checked),
// StopContainer (timeout 0) + RemoveContainer, StopPodSandbox + RemovePodSandbox.
// On an error the objects of the failed iteration are removed before returning.
StatusOr<std::vector<PhaseTimes>> RunLifecycleBench(const LifecycleBenchOptions& options);

struct MemoryResult {
  int pods = 0;
  std::string first_pod_ip;  // evidence of the pod network (empty with host network)
  uint64_t daemon_rss_kb = 0;
  int helpers = 0;  // helper processes that serve this run's pods
  uint64_t helpers_rss_kb = 0;
};

// Starts `memory_pods` pods with one running container each (each must have an
// IP address unless host_network), reads the VmRSS of the daemon and of the
// helper processes serving them (found by name through /proc/*/comm, and by a
// pod or container id in their command line, so other runtimes' helpers on the
// host are not counted), then removes the pods.
StatusOr<MemoryResult> RunMemoryBench(const LifecycleBenchOptions& options);

// Starts `n` pods with one running container each, as the memory mode does,
// and returns their pod ids; they stay until RemovePodsById.
StatusOr<std::vector<std::string>> StartRunningPods(const LifecycleBenchOptions& options, int n);
// Stops and removes pods (with their containers), trying all; the first error.
Status RemovePodsById(const std::string& endpoint, const std::vector<std::string>& pod_ids);

// VmRSS of a process in kB, from /proc/<pid>/status.
StatusOr<uint64_t> ReadRssKb(int pid);

}  // namespace berth::bench
