// Stats and metrics domain structs (stats/) to CRI messages.
#pragma once

#include "runtime/v1/api.pb.h"
// (the CRI header first: see server/signals.h)

#include "stats/metrics.h"
#include "stats/stats_service.h"

namespace berth::server {

void ToCriContainerStats(const stats::ContainerUsage& u, runtime::v1::ContainerStats* out);
void ToCriPodSandboxStats(const stats::PodUsage& u, runtime::v1::PodSandboxStats* out);
void ToCriMetricDescriptor(const stats::MetricDescriptor& d, runtime::v1::MetricDescriptor* out);
void ToCriPodSandboxMetrics(const stats::PodMetricSamples& m, runtime::v1::PodSandboxMetrics* out);

}  // namespace berth::server
