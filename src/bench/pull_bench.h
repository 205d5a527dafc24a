// berth-bench's image pull measurement: any CRI endpoint, so Berth and
// containerd are measured by the same client in the same run.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace berth::bench {

struct PullBenchOptions {
  std::string endpoint;  // unix:///path
  std::string image;
  int runs = 5;
};

struct PullBenchResult {
  std::vector<double> seconds;  // one per run
  uint64_t image_bytes = 0;     // Image.size reported by the runtime
  double median_seconds = 0;
};

// Each run removes the image (so the next pull downloads and unpacks it
// again), then times one PullImage call end to end.
StatusOr<PullBenchResult> RunPullBench(const PullBenchOptions& options);

double Median(std::vector<double> values);

}  // namespace berth::bench
