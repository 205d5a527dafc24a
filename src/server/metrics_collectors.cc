// The CRI header first: see server/signals.h.
#include "server/metrics_collectors.h"
// (blank line keeps clang-format from reordering)

#include "metrics/process_metrics.h"

namespace berth::server {

namespace {

metrics::Family Gauge(const char* name, const char* help) {
  return {name, help, metrics::MetricType::kGauge, {}};
}
metrics::Family Counter(const char* name, const char* help) {
  return {name, help, metrics::MetricType::kCounter, {}};
}

}  // namespace

DaemonMetrics::DaemonMetrics(const Domain& domain, std::function<bool()> ready) {
  rpc_requests_ = &registry_.AddCounter(
      "berth_grpc_requests_total",
      "CRI calls answered, by method and gRPC status code (code != OK: errors).",
      {"method", "code"});
  rpc_latency_ = &registry_.AddHistogram(
      "berth_grpc_request_duration_seconds",
      "Time to answer a unary CRI call (GetContainerEvents streams are not timed).", {"method"},
      metrics::RpcLatencyBuckets());
  pull_.bytes = &registry_.AddCounter(
      "berth_image_pull_bytes_total",
      "Bytes downloaded from registries by image pulls (manifests, configs, layers).", {});
  pull_.throughput = &registry_.AddHistogram(
      "berth_image_pull_throughput_bytes_per_second",
      "Bytes downloaded by each successful pull that downloaded anything, divided by its "
      "duration.",
      {}, {1 << 20, 4 << 20, 16 << 20, 64 << 20, 128 << 20, 256 << 20, 512 << 20, 1 << 30});

  const Domain* d = &domain;
  registry_.AddCollector([d, ready = std::move(ready)](std::vector<metrics::Family>& out) {
    // The event bus exists before recovery.
    if (d->events) {
      auto published = Counter("berth_events_published_total",
                               "Lifecycle events published for GetContainerEvents.");
      published.samples.push_back({"", {}, static_cast<double>(d->events->published_total())});
      out.push_back(std::move(published));
      auto dropped = Counter("berth_events_dropped_total",
                             "Lifecycle events dropped because a GetContainerEvents client fell "
                             "behind by more than events.queue_length.");
      dropped.samples.push_back({"", {}, static_cast<double>(d->events->dropped_total())});
      out.push_back(std::move(dropped));
      auto subs = Gauge("berth_event_subscribers", "Open GetContainerEvents streams.");
      subs.samples.push_back({"", {}, static_cast<double>(d->events->subscribers())});
      out.push_back(std::move(subs));
    }
    if (ready() && d->sandboxes && d->containers) {
      int ready_pods = 0, not_ready = 0;
      for (const auto& p : d->sandboxes->List()) {
        (p.state == sandbox::SandboxState::kReady ? ready_pods : not_ready) += 1;
      }
      auto pods = Gauge("berth_pods", "Pod sandboxes, by state.");
      pods.samples.push_back({"", {{"state", "ready"}}, static_cast<double>(ready_pods)});
      pods.samples.push_back({"", {{"state", "notready"}}, static_cast<double>(not_ready)});
      out.push_back(std::move(pods));

      auto by_state = d->containers->CountByState();
      auto containers = Gauge("berth_containers", "Containers, by state.");
      const std::pair<container::ContainerState, const char*> states[] = {
          {container::ContainerState::kCreated, "created"},
          {container::ContainerState::kRunning, "running"},
          {container::ContainerState::kExited, "exited"},
          {container::ContainerState::kUnknown, "unknown"}};
      for (const auto& [st, name] : states) {
        containers.samples.push_back({"", {{"state", name}}, static_cast<double>(by_state[st])});
      }
      out.push_back(std::move(containers));

      auto monitors = Gauge("berth_monitor_processes",
                            "berth-monitor processes alive for created and running containers.");
      monitors.samples.push_back({"", {}, static_cast<double>(d->containers->LiveMonitors())});
      out.push_back(std::move(monitors));

      auto oom = Counter("berth_container_oom_events_total",
                         "OOM kills in containers' memory cgroups noticed since berthd started.");
      oom.samples.push_back({"", {}, static_cast<double>(d->containers->oom_kills_noticed())});
      out.push_back(std::move(oom));
    }
    metrics::CollectProcessMetrics(out);
  });
}

}  // namespace berth::server
