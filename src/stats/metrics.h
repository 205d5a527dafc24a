// cAdvisor-style metrics of pods and containers for ListMetricDescriptors
// and ListPodSandboxMetrics, so that a kubelet can serve /metrics/cadvisor
// from the runtime. Names, help texts and types are cAdvisor's; label keys
// are the ones containerd's and CRI-O's CRI metrics use (pod, namespace,
// container, id, image, plus interface / device / failure_type and scope
// where cAdvisor has them).
//
// The CRI carries values as unsigned integers: *_seconds_total metrics are
// whole seconds (truncated), as containerd and CRI-O report them.
//
// Pure functions but CollectPodMetrics; all thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stats/stats_service.h"

namespace berth::stats {

enum class MetricKind { kCounter, kGauge };

struct MetricDescriptor {
  std::string name;
  std::string help;
  std::vector<std::string> label_keys;
  MetricKind kind = MetricKind::kGauge;
};

struct MetricSample {
  std::string name;
  int64_t timestamp_ns = 0;
  MetricKind kind = MetricKind::kGauge;
  std::vector<std::string> label_values;  // in the order of the descriptor's label_keys
  uint64_t value = 0;
};

struct ContainerMetricSamples {
  std::string container_id;
  std::vector<MetricSample> metrics;
};

struct PodMetricSamples {
  std::string pod_sandbox_id;
  std::vector<MetricSample> metrics;  // pod level: network
  std::vector<ContainerMetricSamples> containers;
};

// The filesystem holding writable layers (statvfs), for the container_fs_*
// capacity metrics.
struct FilesystemCapacity {
  uint64_t bytes = 0;
  uint64_t inodes = 0, inodes_free = 0;
};

// Every metric ListPodSandboxMetrics may report, in a fixed order.
const std::vector<MetricDescriptor>& MetricDescriptors();

// The metrics of one pod from its usage (read with Detail::kMetrics).
// Containers that are not running report nothing, as in containerd.
PodMetricSamples ToPodMetrics(const PodUsage& pod, const FilesystemCapacity& fs);

// ListPodSandboxMetrics: every ready pod's metrics, read at kMetrics detail
// (reusing samples of that detail younger than the minimum interval).
std::vector<PodMetricSamples> CollectPodMetrics(StatsService& service);

}  // namespace berth::stats
