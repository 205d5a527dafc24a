// berthd's metrics: the families it exports and the collectors that read
// the domain when the endpoint is scraped. docs/configuration.md lists them.
#pragma once

#include <functional>

#include "metrics/registry.h"
#include "server/cri_services.h"
#include "server/domain.h"

namespace berth::server {

class DaemonMetrics {
 public:
  // Registers every family. Collectors read `domain` only once `ready()`
  // says recovery has filled it in; `domain` must outlive this object.
  DaemonMetrics(const Domain& domain, std::function<bool()> ready);

  metrics::Registry& registry() { return registry_; }
  metrics::Counter& rpc_requests() { return *rpc_requests_; }
  metrics::Histogram& rpc_latency() { return *rpc_latency_; }
  const PullMetrics& pull() const { return pull_; }

 private:
  metrics::Registry registry_;
  metrics::Counter* rpc_requests_;
  metrics::Histogram* rpc_latency_;
  PullMetrics pull_;
};

}  // namespace berth::server
