#include "stats/metrics.h"

#include <sys/statvfs.h>

#include <map>

namespace berth::stats {

namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;

const std::vector<std::string>& BaseKeys() {
  static const std::vector<std::string> keys = {"pod", "namespace", "container", "id", "image"};
  return keys;
}

std::vector<std::string> KeysWith(std::initializer_list<const char*> extra) {
  std::vector<std::string> keys = BaseKeys();
  for (const char* e : extra) keys.emplace_back(e);
  return keys;
}

std::vector<MetricDescriptor> BuildDescriptors() {
  const auto counter = MetricKind::kCounter;
  const auto gauge = MetricKind::kGauge;
  const std::vector<std::string>& base = BaseKeys();
  const std::vector<std::string> device = KeysWith({"device"});
  const std::vector<std::string> iface = KeysWith({"interface"});
  return {
      // CPU
      {"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
       KeysWith({"cpu"}), counter},
      {"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", base,
       counter},
      {"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.",
       base, counter},
      {"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", base,
       counter},
      {"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", base,
       counter},
      {"container_cpu_cfs_throttled_seconds_total",
       "Total time duration the container has been throttled.", base, counter},
      // Memory
      {"container_memory_usage_bytes",
       "Current memory usage in bytes, including all memory regardless of when it was accessed",
       base, gauge},
      {"container_memory_working_set_bytes", "Current working set in bytes.", base, gauge},
      {"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", base, gauge},
      {"container_memory_rss", "Size of RSS in bytes.", base, gauge},
      {"container_memory_cache", "Number of bytes of page cache memory.", base, gauge},
      {"container_memory_mapped_file", "Size of memory mapped files in bytes.", base, gauge},
      {"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", base, gauge},
      {"container_memory_swap", "Container swap usage in bytes.", base, gauge},
      {"container_memory_failcnt", "Number of memory usage hits limits", base, counter},
      {"container_memory_total_active_file_bytes", "Current total active file in bytes.", base,
       gauge},
      {"container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.", base,
       gauge},
      {"container_memory_failures_total", "Cumulative count of memory allocation failures.",
       KeysWith({"failure_type", "scope"}), counter},
      {"container_oom_events_total", "Count of out of memory events observed for the container",
       base, counter},
      // Pressure (cgroup v2)
      {"container_pressure_cpu_stalled_seconds_total",
       "Total time duration no tasks in the container could make progress due to CPU "
       "congestion.",
       base, counter},
      {"container_pressure_cpu_waiting_seconds_total",
       "Total time duration tasks in the container have waited due to CPU congestion.", base,
       counter},
      {"container_pressure_memory_stalled_seconds_total",
       "Total time duration no tasks in the container could make progress due to memory "
       "congestion.",
       base, counter},
      {"container_pressure_memory_waiting_seconds_total",
       "Total time duration tasks in the container have waited due to memory congestion.", base,
       counter},
      {"container_pressure_io_stalled_seconds_total",
       "Total time duration no tasks in the container could make progress due to IO congestion.",
       base, counter},
      {"container_pressure_io_waiting_seconds_total",
       "Total time duration tasks in the container have waited due to IO congestion.", base,
       counter},
      // Disk
      {"container_fs_usage_bytes",
       "Number of bytes that are consumed by the container on this filesystem.", device, gauge},
      {"container_fs_limit_bytes",
       "Number of bytes that can be consumed by the container on this filesystem.", device, gauge},
      {"container_fs_inodes_total", "Number of Inodes", device, gauge},
      {"container_fs_inodes_free", "Number of available Inodes", device, gauge},
      {"container_fs_reads_bytes_total", "Cumulative count of bytes read", device, counter},
      {"container_fs_writes_bytes_total", "Cumulative count of bytes written", device, counter},
      {"container_fs_reads_total", "Cumulative count of reads completed", device, counter},
      {"container_fs_writes_total", "Cumulative count of writes completed", device, counter},
      {"container_blkio_device_usage_total", "Blkio Device bytes usage",
       KeysWith({"device", "major", "minor", "operation"}), counter},
      // Network (pod level)
      {"container_network_receive_bytes_total", "Cumulative count of bytes received", iface,
       counter},
      {"container_network_receive_packets_total", "Cumulative count of packets received", iface,
       counter},
      {"container_network_receive_packets_dropped_total",
       "Cumulative count of packets dropped while receiving", iface, counter},
      {"container_network_receive_errors_total",
       "Cumulative count of errors encountered while receiving", iface, counter},
      {"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", iface,
       counter},
      {"container_network_transmit_packets_total", "Cumulative count of packets transmitted", iface,
       counter},
      {"container_network_transmit_packets_dropped_total",
       "Cumulative count of packets dropped while transmitting", iface, counter},
      {"container_network_transmit_errors_total",
       "Cumulative count of errors encountered while transmitting", iface, counter},
      // Processes
      {"container_processes", "Number of processes running inside the container.", base, gauge},
      {"container_threads", "Number of threads running inside the container", base, gauge},
      {"container_threads_max",
       "Maximum number of threads allowed inside the container, infinity if value is zero", base,
       gauge},
      // Miscellaneous and spec
      {"container_last_seen", "Last time a container was seen by the exporter", base, gauge},
      {"container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
       base, gauge},
      {"container_spec_cpu_period", "CPU period of the container.", base, gauge},
      {"container_spec_cpu_quota", "CPU quota of the container.", base, gauge},
      {"container_spec_cpu_shares", "CPU share of the container.", base, gauge},
      {"container_spec_memory_limit_bytes", "Memory limit for the container.", base, gauge},
  };
}

const MetricDescriptor& Find(const std::string& name) {
  static const std::map<std::string, const MetricDescriptor*> by_name = [] {
    std::map<std::string, const MetricDescriptor*> m;
    for (const MetricDescriptor& d : MetricDescriptors()) m[d.name] = &d;
    return m;
  }();
  return *by_name.at(name);
}

// Appends samples of one object with fixed base label values.
class Emitter {
 public:
  Emitter(std::vector<MetricSample>& out, std::vector<std::string> base, int64_t ts)
      : out_(out), base_(std::move(base)), ts_(ts) {}

  void Add(const char* name, uint64_t value, std::initializer_list<std::string> extra = {}) {
    const MetricDescriptor& d = Find(name);
    MetricSample s;
    s.name = d.name;
    s.kind = d.kind;
    s.timestamp_ns = ts_;
    s.label_values = base_;
    for (const std::string& e : extra) s.label_values.push_back(e);
    s.value = value;
    out_.push_back(std::move(s));
  }
  void AddOpt(const char* name, const std::optional<uint64_t>& v) {
    if (v) Add(name, *v);
  }

 private:
  std::vector<MetricSample>& out_;
  std::vector<std::string> base_;
  int64_t ts_;
};

uint64_t Seconds(uint64_t ns) { return ns / kNsPerSecond; }

void PsiMetrics(Emitter& e, const std::optional<Psi>& psi, const char* stalled,
                const char* waiting) {
  if (!psi) return;
  if (psi->full) e.Add(stalled, psi->full->total_us / 1'000'000);
  if (psi->some) e.Add(waiting, psi->some->total_us / 1'000'000);
}

void ContainerMetrics(const ContainerUsage& c, const PodUsage& pod, const FilesystemCapacity& fs,
                      std::vector<MetricSample>& out) {
  const CgroupSample& s = *c.sample;
  Emitter e(out,
            {pod.record.config.name, pod.record.config.namespace_, c.record.name, c.record.id,
             c.record.image},
            s.wall_ns);
  e.Add("container_last_seen", static_cast<uint64_t>(s.wall_ns) / kNsPerSecond);
  e.Add("container_start_time_seconds",
        static_cast<uint64_t>(c.record.started_at_ns) / kNsPerSecond);
  if (s.cpu) {
    e.Add("container_cpu_usage_seconds_total", Seconds(s.cpu->usage_ns), {"total"});
    if (s.cpu->user_ns) e.Add("container_cpu_user_seconds_total", Seconds(*s.cpu->user_ns));
    if (s.cpu->system_ns) e.Add("container_cpu_system_seconds_total", Seconds(*s.cpu->system_ns));
    e.AddOpt("container_cpu_cfs_periods_total", s.cpu->periods);
    e.AddOpt("container_cpu_cfs_throttled_periods_total", s.cpu->throttled_periods);
    if (s.cpu->throttled_ns) {
      e.Add("container_cpu_cfs_throttled_seconds_total", Seconds(*s.cpu->throttled_ns));
    }
    PsiMetrics(e, s.cpu->psi, "container_pressure_cpu_stalled_seconds_total",
               "container_pressure_cpu_waiting_seconds_total");
  }
  if (s.memory) {
    const MemorySample& m = *s.memory;
    e.Add("container_memory_usage_bytes", m.usage);
    e.Add("container_memory_working_set_bytes", m.working_set);
    e.AddOpt("container_memory_max_usage_bytes", m.max_usage);
    e.Add("container_memory_rss", m.rss);
    e.Add("container_memory_cache", m.cache);
    e.Add("container_memory_mapped_file", m.mapped_file);
    e.AddOpt("container_memory_kernel_usage", m.kernel);
    e.AddOpt("container_memory_swap", m.swap_usage);
    e.AddOpt("container_memory_failcnt", m.failcnt);
    e.Add("container_memory_total_active_file_bytes", m.active_file);
    e.Add("container_memory_total_inactive_file_bytes", m.inactive_file);
    e.Add("container_memory_failures_total", m.pgfault, {"pgfault", "container"});
    e.Add("container_memory_failures_total", m.pgmajfault, {"pgmajfault", "container"});
    e.Add("container_oom_events_total", m.oom_kill.value_or(0));
    PsiMetrics(e, m.psi, "container_pressure_memory_stalled_seconds_total",
               "container_pressure_memory_waiting_seconds_total");
  }
  if (s.io) {
    for (const IoDeviceStats& d : s.io->devices) {
      const std::string dev = StrCat(d.major, ":", d.minor);
      e.Add("container_fs_reads_bytes_total", d.read_bytes, {dev});
      e.Add("container_fs_writes_bytes_total", d.write_bytes, {dev});
      e.Add("container_fs_reads_total", d.reads, {dev});
      e.Add("container_fs_writes_total", d.writes, {dev});
      const std::string major = std::to_string(d.major), minor = std::to_string(d.minor);
      e.Add("container_blkio_device_usage_total", d.read_bytes, {dev, major, minor, "Read"});
      e.Add("container_blkio_device_usage_total", d.write_bytes, {dev, major, minor, "Write"});
    }
    PsiMetrics(e, s.io->psi, "container_pressure_io_stalled_seconds_total",
               "container_pressure_io_waiting_seconds_total");
  }
  if (c.writable_layer.wall_ns != 0) {
    const std::string& dev = c.writable_layer.mountpoint;
    e.Add("container_fs_usage_bytes", c.writable_layer.used_bytes, {dev});
    if (fs.bytes != 0) {
      e.Add("container_fs_limit_bytes", fs.bytes, {dev});
      e.Add("container_fs_inodes_total", fs.inodes, {dev});
      e.Add("container_fs_inodes_free", fs.inodes_free, {dev});
    }
  }
  if (s.pids) {
    e.Add("container_processes", s.pids->processes);
    e.AddOpt("container_threads", s.pids->threads);
    if (s.detail == Detail::kMetrics) {
      // cAdvisor: "infinity if value is zero".
      e.Add("container_threads_max", s.pids->limit.value_or(0));
    }
  }
  const oci::Resources& r = c.record.resources;
  if (r.cpu_period > 0) e.Add("container_spec_cpu_period", static_cast<uint64_t>(r.cpu_period));
  if (r.cpu_quota > 0) e.Add("container_spec_cpu_quota", static_cast<uint64_t>(r.cpu_quota));
  if (r.cpu_shares > 0) e.Add("container_spec_cpu_shares", static_cast<uint64_t>(r.cpu_shares));
  e.Add("container_spec_memory_limit_bytes",
        r.memory_limit_in_bytes > 0 ? static_cast<uint64_t>(r.memory_limit_in_bytes) : 0);
}

}  // namespace

const std::vector<MetricDescriptor>& MetricDescriptors() {
  static const std::vector<MetricDescriptor> descriptors = BuildDescriptors();
  return descriptors;
}

PodMetricSamples ToPodMetrics(const PodUsage& pod, const FilesystemCapacity& fs) {
  PodMetricSamples out;
  out.pod_sandbox_id = pod.record.id;
  if (pod.network) {
    // Pod-level figures: no container and no image, the pod's id.
    Emitter e(out.metrics,
              {pod.record.config.name, pod.record.config.namespace_, "", pod.record.id, ""},
              pod.network->wall_ns);
    for (const InterfaceCounters& i : pod.network->interfaces) {
      e.Add("container_network_receive_bytes_total", i.rx_bytes, {i.name});
      e.Add("container_network_receive_packets_total", i.rx_packets, {i.name});
      e.Add("container_network_receive_packets_dropped_total", i.rx_dropped, {i.name});
      e.Add("container_network_receive_errors_total", i.rx_errors, {i.name});
      e.Add("container_network_transmit_bytes_total", i.tx_bytes, {i.name});
      e.Add("container_network_transmit_packets_total", i.tx_packets, {i.name});
      e.Add("container_network_transmit_packets_dropped_total", i.tx_dropped, {i.name});
      e.Add("container_network_transmit_errors_total", i.tx_errors, {i.name});
    }
  }
  for (const ContainerUsage& c : pod.containers) {
    if (!c.sample) continue;
    ContainerMetricSamples cm;
    cm.container_id = c.record.id;
    ContainerMetrics(c, pod, fs, cm.metrics);
    out.containers.push_back(std::move(cm));
  }
  return out;
}

std::vector<PodMetricSamples> CollectPodMetrics(StatsService& service) {
  std::vector<PodUsage> pods = service.ListPods({}, Detail::kMetrics);
  FilesystemCapacity fs;
  struct statvfs st {};
  if (!service.writable_layer_mountpoint().empty() &&
      ::statvfs(service.writable_layer_mountpoint().c_str(), &st) == 0) {
    fs.bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
    fs.inodes = st.f_files;
    fs.inodes_free = st.f_ffree;
  }
  std::vector<PodMetricSamples> out;
  out.reserve(pods.size());
  for (const PodUsage& p : pods) out.push_back(ToPodMetrics(p, fs));
  return out;
}

}  // namespace berth::stats
