#include "server/rpc_decorator.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>

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
  auto start = std::chrono::steady_clock::now();
  spdlog::debug("event=rpc_start method={}", method);
  Status s;
  try {
    s = handler();
  } catch (const std::exception& e) {
    // A bug, not bad input: report it rather than take the daemon down.
    s = InternalError(StrCat(method, ": unexpected exception: ", e.what()));
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
  if (s.ok()) {
    spdlog::debug("event=rpc_end method={} code=OK ms={:.3f}", method, ms);
  } else {
    spdlog::info("event=rpc_end method={} code={} ms={:.3f} error=\"{}\"", method,
                 StatusCodeName(s.code()), ms, s.message());
  }
  return ToGrpcStatus(s);
}

}  // namespace berth::server
