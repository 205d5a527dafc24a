// The one wrapper around every RPC: answers UNAVAILABLE until start-up
// recovery has finished, logs entry and exit with latency, and converts a
// berth::Status into a grpc::Status in exactly one place.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string_view>

#include "common/status.h"
#include "metrics/registry.h"

namespace berth::server {

grpc::Status ToGrpcStatus(const Status& s);

// Thread-safe.
class RpcDecorator {
 public:
  void MarkReady() { ready_.store(true, std::memory_order_release); }
  bool ready() const { return ready_.load(std::memory_order_acquire); }

  // Where every call's code (and, for unary calls, its latency) is counted:
  // `requests` has labels {method, code}, `latency` {method}. Set before
  // serving; both must outlive the decorator.
  void SetMetrics(metrics::Counter* requests, metrics::Histogram* latency) {
    requests_ = requests;
    latency_ = latency;
  }

  // Runs `handler` for RPC `method`, or refuses with UNAVAILABLE while the
  // daemon is still recovering its state or is stopping.
  grpc::Status Run(std::string_view method, const std::function<Status()>& handler) const;

  // For server-streaming calls that last as long as the client wants
  // (GetContainerEvents): served during recovery too (the handler must only
  // need what exists before recovery), refused once stopping, not waited
  // for by Drain (the caller ends such streams at shutdown), and counted
  // without latency.
  grpc::Status RunStream(std::string_view method, const std::function<Status()>& handler) const;

  // For shutdown: refuses new calls from now on and waits up to `timeout`
  // for the calls in progress to finish. True when none is left. (gRPC's own
  // Shutdown also waits for idle client connections to close, which a
  // kubelet's never does, so berthd drains here and then shuts gRPC down at
  // once.)
  bool Drain(std::chrono::milliseconds timeout);

 private:
  grpc::Status Finish(std::string_view method, const Status& s,
                      std::chrono::steady_clock::time_point start, bool observe_latency) const;
  Status Call(std::string_view method, const std::function<Status()>& handler) const;

  metrics::Counter* requests_ = nullptr;
  metrics::Histogram* latency_ = nullptr;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  mutable std::atomic<int> in_flight_{0};
};

}  // namespace berth::server
