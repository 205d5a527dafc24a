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

namespace berth::server {

grpc::Status ToGrpcStatus(const Status& s);

// Thread-safe.
class RpcDecorator {
 public:
  void MarkReady() { ready_.store(true, std::memory_order_release); }
  bool ready() const { return ready_.load(std::memory_order_acquire); }

  // Runs `handler` for RPC `method`, or refuses with UNAVAILABLE while the
  // daemon is still recovering its state or is stopping.
  grpc::Status Run(std::string_view method, const std::function<Status()>& handler) const;

  // For shutdown: refuses new calls from now on and waits up to `timeout`
  // for the calls in progress to finish. True when none is left. (gRPC's own
  // Shutdown also waits for idle client connections to close, which a
  // kubelet's never does, so berthd drains here and then shuts gRPC down at
  // once.)
  bool Drain(std::chrono::milliseconds timeout);

 private:
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  mutable std::atomic<int> in_flight_{0};
};

}  // namespace berth::server
