#include "ctl/stats_output.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "ctl/table.h"

namespace berth::ctl {

namespace cri = ::runtime::v1;

namespace {

std::string Percent(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// crictl divides the CPU time difference by the timestamp difference; an
// unchanged timestamp of a running object is its error.
StatusOr<double> CpuPercent(uint64_t cpu, int64_t ts, uint64_t old_cpu, int64_t old_ts) {
  if (cpu == 0) return 0.0;
  const int64_t duration = ts - old_ts;
  if (duration == 0) return InternalError("cpu stat is not updated during sample");
  // Go's uint64 subtraction wraps; so does this.
  return static_cast<double>(cpu - old_cpu) / static_cast<double>(duration) * 100;
}

}  // namespace

void SortContainerStats(cri::ListContainerStatsResponse& r) {
  std::stable_sort(r.mutable_stats()->begin(), r.mutable_stats()->end(),
                   [](const cri::ContainerStats& a, const cri::ContainerStats& b) {
                     return a.attributes().id() < b.attributes().id();
                   });
}

void SortPodStats(cri::ListPodSandboxStatsResponse& r) {
  std::stable_sort(r.mutable_stats()->begin(), r.mutable_stats()->end(),
                   [](const cri::PodSandboxStats& a, const cri::PodSandboxStats& b) {
                     return a.attributes().id() < b.attributes().id();
                   });
}

StatusOr<std::string> ContainerStatsTable(const cri::ListContainerStatsResponse& before,
                                          const cri::ListContainerStatsResponse& after, bool all) {
  std::map<std::string, const cri::ContainerStats*> old;
  for (const cri::ContainerStats& s : before.stats()) old[s.attributes().id()] = &s;
  TableWriter table;
  table.AddRow({"CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"});
  for (const cri::ContainerStats& s : after.stats()) {
    const uint64_t cpu = s.cpu().usage_core_nano_seconds().value();
    const uint64_t mem = s.memory().working_set_bytes().value();
    if (!all && cpu == 0 && mem == 0) continue;
    auto it = old.find(s.attributes().id());
    if (it == old.end()) continue;
    const cri::ContainerStats& o = *it->second;
    ASSIGN_OR_RETURN(double perc,
                     CpuPercent(cpu, s.cpu().timestamp(), o.cpu().usage_core_nano_seconds().value(),
                                o.cpu().timestamp()));
    table.AddRow(
        {TruncateId(s.attributes().id(), ""), s.attributes().metadata().name(), Percent(perc),
         HumanSizeWithPrecision(static_cast<double>(mem), 4),
         HumanSizeWithPrecision(static_cast<double>(s.writable_layer().used_bytes().value()), 4),
         std::to_string(s.writable_layer().inodes_used().value())});
  }
  return kClearScreen + table.Flush();
}

StatusOr<std::string> PodStatsTable(const cri::ListPodSandboxStatsResponse& before,
                                    const cri::ListPodSandboxStatsResponse& after) {
  std::map<std::string, const cri::PodSandboxStats*> old;
  for (const cri::PodSandboxStats& s : before.stats()) old[s.attributes().id()] = &s;
  TableWriter table;
  table.AddRow({"POD", "POD ID", "CPU %", "MEM"});
  for (const cri::PodSandboxStats& s : after.stats()) {
    const uint64_t cpu = s.linux().cpu().usage_core_nano_seconds().value();
    const uint64_t mem = s.linux().memory().working_set_bytes().value();
    if (cpu == 0 && mem == 0) continue;
    auto it = old.find(s.attributes().id());
    if (it == old.end()) continue;
    const cri::PodSandboxStats& o = *it->second;
    ASSIGN_OR_RETURN(double perc, CpuPercent(cpu, s.linux().cpu().timestamp(),
                                             o.linux().cpu().usage_core_nano_seconds().value(),
                                             o.linux().cpu().timestamp()));
    table.AddRow({s.attributes().metadata().name(), TruncateId(s.attributes().id(), ""),
                  Percent(perc), HumanSizeWithPrecision(static_cast<double>(mem), 4)});
  }
  return kClearScreen + table.Flush();
}

}  // namespace berth::ctl
