#include "server/rpc_decorator.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <thread>

namespace berth::server {

grpc::Status ToGrpcStatus(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

grpc::Status RpcDecorator::Run(std::string_view method,
                               const std::function<Status()>& handler) const {
  if (!ready()) {
    return ToGrpcStatus(UnavailableError(
        StrCat("berthd is starting: ", method, " is served once recovery has finished")));
  }
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  struct Done {
    std::atomic<int>& n;
    ~Done() { n.fetch_sub(1, std::memory_order_acq_rel); }
  } done{in_flight_};
  if (stopping_.load(std::memory_order_acquire)) {
    return ToGrpcStatus(
        UnavailableError(StrCat("berthd is stopping: retry ", method, " once it is back")));
  }
  auto start = std::chrono::steady_clock::now();
  spdlog::debug("event=rpc_start method={}", method);
  Status s;
  try {
    s = handler();
  } catch (const std::exception& e) {
    // A bug, not bad input: report it rather than take the daemon down.
    s = InternalError(StrCat(method, ": unexpected exception: ", e.what()));
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (s.ok()) {
    spdlog::debug("event=rpc_end method={} code=OK ms={:.3f}", method, ms);
  } else {
    spdlog::info("event=rpc_end method={} code={} ms={:.3f} error=\"{}\"", method,
                 StatusCodeName(s.code()), ms, s.message());
  }
  return ToGrpcStatus(s);
}

bool RpcDecorator::Drain(std::chrono::milliseconds timeout) {
  stopping_.store(true, std::memory_order_release);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (in_flight_.load(std::memory_order_acquire) > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace berth::server
