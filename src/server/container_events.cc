// GetContainerEvents: a server stream of the container and pod lifecycle
// events the container manager publishes, each with the pod's status and its
// containers' statuses, as the kubelet's Evented PLEG keeps them.
// The CRI header first: see server/signals.h.
#include "server/cri_services.h"
// (blank line keeps clang-format from reordering)

#include <spdlog/spdlog.h>

#include "server/cri_convert.h"

namespace berth::server {

namespace {
// How often a waiting stream checks whether its client went away.
constexpr auto kCancelCheck = std::chrono::milliseconds(500);
}  // namespace

grpc::Status RuntimeServiceImpl::GetContainerEvents(
    grpc::ServerContext* ctx, const runtime::v1::GetEventsRequest*,
    grpc::ServerWriter<runtime::v1::ContainerEventResponse>* writer) {
  return rpc_.RunStream("GetContainerEvents", [&]() -> berth::Status {
    // A subscriber gets the events published from now on; its queue is
    // bounded, and when this stream falls behind (a client that stops
    // reading blocks Write below) the oldest queued events are dropped and
    // counted, never the runtime slowed.
    auto sub = domain_.events->Subscribe();
    spdlog::info("event=events_subscribed subscriber={} peer={}", sub->number(), ctx->peer());
    ScopeGuard log_end([&] {
      spdlog::info("event=events_unsubscribed subscriber={} dropped={}", sub->number(),
                   sub->dropped());
    });
    for (;;) {
      if (ctx->IsCancelled()) return CancelledError("the client ended the event stream");
      uint64_t dropped_before = 0;
      std::shared_ptr<const container::LifecycleEvent> e = sub->Next(kCancelCheck, &dropped_before);
      if (e == nullptr) {
        if (sub->closed()) return UnavailableError("berthd is stopping: subscribe again later");
        continue;
      }
      if (dropped_before > 0) {
        spdlog::warn("event=events_resumed subscriber={} dropped={} dropped_total={}",
                     sub->number(), dropped_before, sub->dropped());
      }
      runtime::v1::ContainerEventResponse resp;
      ToCriContainerEvent(*e, &resp);
      if (!writer->Write(resp)) return CancelledError("the client ended the event stream");
    }
  });
}

}  // namespace berth::server
