// berth-bench's streaming measurements on any CRI endpoint, through the CRI
// Exec and PortForward RPCs and the streaming client library (stream/client.h),
// the way crictl and kubectl (through the kubelet) use them:
//  - exec round trip: Exec RPC for `echo hi` (stdout and stderr), then the
//    SPDY session on the returned URL until the exit status arrived;
//  - port-forward throughput: PortForward RPC, a local listener forwarded over
//    SPDY to busybox httpd in the pod, one HTTP GET of a file of random bytes.
//
// Thread safety: blocking calls, no state kept between them; one at a time per
// endpoint (they create and remove a pod).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::bench {

struct StreamBenchOptions {
  std::string endpoint;  // unix:///path
  std::string image;     // already pulled; needs busybox's sh, head, httpd
  bool host_network = false;
  int exec_iterations = 20;
  int transfer_runs = 3;
  uint64_t transfer_bytes = 100ull << 20;
  std::string name_prefix = "bench";
};

struct StreamBenchResult {
  std::vector<double> exec_ms;           // one per exec
  std::vector<double> transfer_seconds;  // one per transfer of transfer_bytes
  uint64_t transfer_bytes = 0;
};

// Runs a pod with one container serving transfer_bytes of random data with
// httpd on 127.0.0.1:8080 inside the pod, measures, removes the pod (also on
// error). Every exec's output and exit code, and every transfer's size, are
// checked.
StatusOr<StreamBenchResult> RunStreamBench(const StreamBenchOptions& options);

}  // namespace berth::bench
