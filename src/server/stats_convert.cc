#include "server/stats_convert.h"

namespace berth::server {

namespace cri = runtime::v1;

namespace {

// PSI totals are microseconds in the kernel's files and nanoseconds in the CRI.
void ToCriPsi(const stats::Psi& psi, cri::PsiStats* out) {
  auto line = [](const stats::PsiLine& l, cri::PsiData* d) {
    d->set_total(l.total_us * 1000);
    d->set_avg10(l.avg10);
    d->set_avg60(l.avg60);
    d->set_avg300(l.avg300);
  };
  if (psi.full) line(*psi.full, out->mutable_full());
  if (psi.some) line(*psi.some, out->mutable_some());
}

void ToCriCpu(const stats::CgroupSample& s, uint64_t nano_cores, cri::CpuUsage* out) {
  out->set_timestamp(s.wall_ns);
  out->mutable_usage_core_nano_seconds()->set_value(s.cpu->usage_ns);
  out->mutable_usage_nano_cores()->set_value(nano_cores);
  if (s.cpu->psi) ToCriPsi(*s.cpu->psi, out->mutable_psi());
}

// available_bytes as the kubelet defines it: limit - working set, 0 without
// a limit.
void ToCriMemory(const stats::CgroupSample& s, cri::MemoryUsage* out) {
  const stats::MemorySample& m = *s.memory;
  out->set_timestamp(s.wall_ns);
  out->mutable_working_set_bytes()->set_value(m.working_set);
  uint64_t available = 0;
  if (m.limit && *m.limit > m.working_set) available = *m.limit - m.working_set;
  out->mutable_available_bytes()->set_value(available);
  out->mutable_usage_bytes()->set_value(m.usage);
  out->mutable_rss_bytes()->set_value(m.rss);
  out->mutable_page_faults()->set_value(m.pgfault);
  out->mutable_major_page_faults()->set_value(m.pgmajfault);
  if (m.psi) ToCriPsi(*m.psi, out->mutable_psi());
}

void ToCriIo(const stats::CgroupSample& s, cri::IoUsage* out) {
  out->set_timestamp(s.wall_ns);
  ToCriPsi(*s.io->psi, out->mutable_psi());
}

void ToCriInterface(const stats::InterfaceCounters& c, cri::NetworkInterfaceUsage* out) {
  out->set_name(c.name);
  out->mutable_rx_bytes()->set_value(c.rx_bytes);
  out->mutable_rx_errors()->set_value(c.rx_errors);
  out->mutable_tx_bytes()->set_value(c.tx_bytes);
  out->mutable_tx_errors()->set_value(c.tx_errors);
}

}  // namespace

void ToCriContainerStats(const stats::ContainerUsage& u, cri::ContainerStats* out) {
  const container::ContainerRecord& r = u.record;
  cri::ContainerAttributes* a = out->mutable_attributes();
  a->set_id(r.id);
  a->mutable_metadata()->set_name(r.name);
  a->mutable_metadata()->set_attempt(r.attempt);
  a->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  a->mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());

  cri::FilesystemUsage* layer = out->mutable_writable_layer();
  layer->set_timestamp(u.writable_layer.wall_ns);
  layer->mutable_fs_id()->set_mountpoint(u.writable_layer.mountpoint);
  layer->mutable_used_bytes()->set_value(u.writable_layer.used_bytes);
  layer->mutable_inodes_used()->set_value(u.writable_layer.inodes_used);

  if (!u.sample) return;
  const stats::CgroupSample& s = *u.sample;
  if (s.cpu) ToCriCpu(s, u.usage_nano_cores, out->mutable_cpu());
  if (s.memory) {
    ToCriMemory(s, out->mutable_memory());
    if (s.memory->swap_usage) {
      cri::SwapUsage* swap = out->mutable_swap();
      swap->set_timestamp(s.wall_ns);
      swap->mutable_swap_usage_bytes()->set_value(*s.memory->swap_usage);
      const std::optional<uint64_t>& limit = s.memory->swap_limit;
      swap->mutable_swap_available_bytes()->set_value(
          limit && *limit > *s.memory->swap_usage ? *limit - *s.memory->swap_usage : 0);
    }
  }
  if (s.io && s.io->psi) ToCriIo(s, out->mutable_io());
}

void ToCriPodSandboxStats(const stats::PodUsage& u, cri::PodSandboxStats* out) {
  const sandbox::SandboxRecord& r = u.record;
  cri::PodSandboxAttributes* a = out->mutable_attributes();
  a->set_id(r.id);
  a->mutable_metadata()->set_name(r.config.name);
  a->mutable_metadata()->set_uid(r.config.uid);
  a->mutable_metadata()->set_namespace_(r.config.namespace_);
  a->mutable_metadata()->set_attempt(r.config.attempt);
  a->mutable_labels()->insert(r.config.labels.begin(), r.config.labels.end());
  a->mutable_annotations()->insert(r.config.annotations.begin(), r.config.annotations.end());

  cri::LinuxPodSandboxStats* linux = out->mutable_linux();
  if (u.sample) {
    if (u.sample->cpu) ToCriCpu(*u.sample, u.usage_nano_cores, linux->mutable_cpu());
    if (u.sample->memory) ToCriMemory(*u.sample, linux->mutable_memory());
    if (u.sample->io && u.sample->io->psi) ToCriIo(*u.sample, linux->mutable_io());
  }
  if (u.network) {
    cri::NetworkUsage* net = linux->mutable_network();
    net->set_timestamp(u.network->wall_ns);
    for (const stats::InterfaceCounters& c : u.network->interfaces) {
      // containerd's and CRI-O's default interface: the CNI "eth0".
      if (c.name == "eth0") ToCriInterface(c, net->mutable_default_interface());
      ToCriInterface(c, net->add_interfaces());
    }
  }
  linux->mutable_process()->set_timestamp(u.process_wall_ns);
  linux->mutable_process()->mutable_process_count()->set_value(u.process_count);
  for (const stats::ContainerUsage& c : u.containers) {
    ToCriContainerStats(c, linux->add_containers());
  }
}

void ToCriMetricDescriptor(const stats::MetricDescriptor& d, cri::MetricDescriptor* out) {
  out->set_name(d.name);
  out->set_help(d.help);
  for (const std::string& k : d.label_keys) out->add_label_keys(k);
}

void ToCriPodSandboxMetrics(const stats::PodMetricSamples& m, cri::PodSandboxMetrics* out) {
  auto fill = [](const stats::MetricSample& s, cri::Metric* o) {
    o->set_name(s.name);
    o->set_timestamp(s.timestamp_ns);
    o->set_metric_type(s.kind == stats::MetricKind::kCounter ? cri::COUNTER : cri::GAUGE);
    for (const std::string& v : s.label_values) o->add_label_values(v);
    o->mutable_value()->set_value(s.value);
  };
  out->set_pod_sandbox_id(m.pod_sandbox_id);
  for (const stats::MetricSample& s : m.metrics) fill(s, out->add_metrics());
  for (const stats::ContainerMetricSamples& c : m.containers) {
    cri::ContainerMetrics* cm = out->add_container_metrics();
    cm->set_container_id(c.container_id);
    for (const stats::MetricSample& s : c.metrics) fill(s, cm->add_metrics());
  }
}

}  // namespace berth::server
