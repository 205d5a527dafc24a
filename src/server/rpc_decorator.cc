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

Status RpcDecorator::Call(std::string_view method, const std::function<Status()>& handler) const {
  spdlog::debug("event=rpc_start method={}", method);
  try {
    return handler();
  } catch (const std::exception& e) {
    // A bug, not bad input: report it rather than take the daemon down.
    return InternalError(StrCat(method, ": unexpected exception: ", e.what()));
  }
}

grpc::Status RpcDecorator::Finish(std::string_view method, const Status& s,
                                  std::chrono::steady_clock::time_point start,
                                  bool observe_latency) const {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (s.ok()) {
    spdlog::debug("event=rpc_end method={} code=OK ms={:.3f}", method, secs * 1000);
  } else {
    spdlog::info("event=rpc_end method={} code={} ms={:.3f} error=\"{}\"", method,
                 StatusCodeName(s.code()), secs * 1000, s.message());
  }
  if (requests_ != nullptr) {
    requests_->Add({std::string(method), std::string(StatusCodeName(s.code()))});
  }
  if (observe_latency && latency_ != nullptr) latency_->Observe({std::string(method)}, secs);
  return ToGrpcStatus(s);
}

grpc::Status RpcDecorator::Run(std::string_view method,
                               const std::function<Status()>& handler) const {
  const auto start = std::chrono::steady_clock::now();
  if (!ready()) {
    return Finish(method,
                  UnavailableError(StrCat("berthd is starting: ", method,
                                          " is served once recovery has finished")),
                  start, true);
  }
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  struct Done {
    std::atomic<int>& n;
    ~Done() { n.fetch_sub(1, std::memory_order_acq_rel); }
  } done{in_flight_};
  if (stopping_.load(std::memory_order_acquire)) {
    return Finish(
        method, UnavailableError(StrCat("berthd is stopping: retry ", method, " once it is back")),
        start, true);
  }
  return Finish(method, Call(method, handler), start, true);
}

grpc::Status RpcDecorator::RunStream(std::string_view method,
                                     const std::function<Status()>& handler) const {
  const auto start = std::chrono::steady_clock::now();
  if (stopping_.load(std::memory_order_acquire)) {
    return Finish(
        method, UnavailableError(StrCat("berthd is stopping: retry ", method, " once it is back")),
        start, false);
  }
  return Finish(method, Call(method, handler), start, false);
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
