// The one wrapper around every RPC: answers UNAVAILABLE until start-up
// recovery has finished, logs entry and exit with latency, and converts a
// berth::Status into a grpc::Status in exactly one place.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
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
  // daemon is still recovering its state.
  grpc::Status Run(std::string_view method, const std::function<Status()>& handler) const;

 private:
  std::atomic<bool> ready_{false};
};

}  // namespace berth::server
