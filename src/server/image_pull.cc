#include <spdlog/spdlog.h>

#include "common/memory.h"
#include "server/cri_services.h"

namespace berth::server {

namespace {
std::optional<registry::AuthConfig> ToAuth(const runtime::v1::PullImageRequest& req) {
  if (!req.has_auth()) return std::nullopt;
  const auto& a = req.auth();
  if (a.username().empty() && a.password().empty() && a.auth().empty() &&
      a.identity_token().empty() && a.registry_token().empty()) {
    return std::nullopt;
  }
  registry::AuthConfig out;
  out.username = a.username();
  out.password = a.password();
  out.auth = a.auth();
  out.identity_token = a.identity_token();
  out.registry_token = a.registry_token();
  return out;
}

bool KnownHandler(const oci::HandlerRegistry& handlers, const std::string& name) {
  for (const oci::HandlerState& h : handlers.Handlers()) {
    if (h.name == name) return true;
  }
  return false;
}

// How the image domain learns that this caller has gone, without seeing gRPC:
// the deadline passing or the client cancelling both show as IsCancelled.
image::CancelCheck CallerGone(grpc::ServerContext* ctx) {
  return [ctx]() -> Status {
    if (!ctx->IsCancelled()) return OkStatus();
    if (ctx->deadline() <= std::chrono::system_clock::now()) {
      return DeadlineExceededError("the caller's deadline passed before the pull finished");
    }
    return CancelledError("the caller cancelled the pull");
  };
}
}  // namespace

grpc::Status ImageServiceImpl::PullImage(grpc::ServerContext* ctx,
                                         const runtime::v1::PullImageRequest* req,
                                         runtime::v1::PullImageResponse* resp) {
  return rpc_.Run("PullImage", [&]() -> Status {
    const std::string& name = req->image().image();
    if (name.empty()) return InvalidArgumentError("PullImage: image.image must name an image");
    const std::string& handler = req->image().runtime_handler();
    if (!handler.empty() && handlers_ != nullptr && !KnownHandler(*handlers_, handler)) {
      return InvalidArgumentError(StrCat("PullImage: runtime handler \"", handler,
                                         "\" is not configured here (runtime.handlers in the "
                                         "berthd configuration names the handlers)"));
    }
    image::PullStats stats;
    pulls_in_flight_.fetch_add(1);
    StatusOr<image::ImageRecord> record =
        images().Pull(name, ToAuth(*req), &stats, CallerGone(ctx));
    if (pulls_in_flight_.fetch_sub(1) == 1) {
      // The last pull in flight: give back the buffers the pulls freed and
      // the decompression and TLS code pages they touched (common/memory.h).
      ReleaseFreeHeap();
      spdlog::debug("event=memory_trimmed after=pull file_kb_dropped={}", DropCleanFilePages());
    }
    if (pull_metrics_ != nullptr && stats.bytes > 0) {
      if (pull_metrics_->bytes) pull_metrics_->bytes->Add({}, static_cast<double>(stats.bytes));
      if (record.ok() && pull_metrics_->throughput && stats.seconds > 0) {
        pull_metrics_->throughput->Observe({}, static_cast<double>(stats.bytes) / stats.seconds);
      }
    }
    if (!record.ok()) return record.status();
    if (!handler.empty()) {
      // The content is shared by every handler; only the record notes it.
      RETURN_IF_ERROR(images().RecordRuntimeHandler(record->id, handler).status());
    }
    resp->set_image_ref(record->id);
    return OkStatus();
  });
}

}  // namespace berth::server
