// One blocking CRI call with a deadline, its gRPC status turned into a
// berth::Status that names the call. Internal to berth-bench.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string_view>

#include "common/status.h"

namespace berth::bench {

inline Status FromGrpc(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return OkStatus();
  return Status(static_cast<StatusCode>(s.error_code()), StrCat(what, ": ", s.error_message()));
}

// `method` is a stub member such as &RuntimeService::Stub::RunPodSandbox.
template <typename Stub, typename Req, typename Resp>
Status CriCall(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
               const Req& req, Resp* resp, std::string_view what,
               std::chrono::seconds deadline = std::chrono::seconds(120)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  return FromGrpc((stub.*method)(&ctx, req, resp), what);
}

}  // namespace berth::bench
