#include "stats/stats_service.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/fs.h"

namespace berth::stats {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

namespace {

// Two samples closer than this are not differenced: the rate keeps using
// the older base point, so a forced re-read right after a sample (a metrics
// call after a stats call) does not turn jitter into a rate.
constexpr int64_t kMinRateWindowNs = 100'000'000;

int64_t MonotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t WallNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

uint64_t Rate(uint64_t cpu_ns, int64_t interval_ns) {
  if (interval_ns <= 0) return 0;
  return static_cast<uint64_t>(static_cast<long double>(cpu_ns) * 1e9L /
                               static_cast<long double>(interval_ns));
}

bool LabelsMatch(const std::map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

void AddOpt(std::optional<uint64_t>& into, const std::optional<uint64_t>& v) {
  if (v) into = into.value_or(0) + *v;
}

// The sum of the containers' samples, for a pod without a cgroup of its own.
std::optional<CgroupSample> Aggregate(const std::vector<ContainerUsage>& containers) {
  std::optional<CgroupSample> sum;
  for (const ContainerUsage& c : containers) {
    if (!c.sample) continue;
    const CgroupSample& s = *c.sample;
    if (!sum) {
      sum.emplace();
      sum->detail = s.detail;
    }
    sum->wall_ns = std::max(sum->wall_ns, s.wall_ns);
    sum->monotonic_ns = std::max(sum->monotonic_ns, s.monotonic_ns);
    if (s.detail == Detail::kStats) sum->detail = Detail::kStats;
    if (s.cpu) {
      if (!sum->cpu) sum->cpu.emplace();
      sum->cpu->usage_ns += s.cpu->usage_ns;
      AddOpt(sum->cpu->user_ns, s.cpu->user_ns);
      AddOpt(sum->cpu->system_ns, s.cpu->system_ns);
    }
    if (s.memory) {
      if (!sum->memory) sum->memory.emplace();
      MemorySample& m = *sum->memory;
      m.usage += s.memory->usage;
      m.working_set += s.memory->working_set;
      m.rss += s.memory->rss;
      m.cache += s.memory->cache;
      m.mapped_file += s.memory->mapped_file;
      m.active_file += s.memory->active_file;
      m.inactive_file += s.memory->inactive_file;
      m.pgfault += s.memory->pgfault;
      m.pgmajfault += s.memory->pgmajfault;
      AddOpt(m.swap_usage, s.memory->swap_usage);
      AddOpt(m.oom_kill, s.memory->oom_kill);
    }
    if (s.pids) {
      if (!sum->pids) sum->pids.emplace();
      sum->pids->processes += s.pids->processes;
      AddOpt(sum->pids->threads, s.pids->threads);
    }
  }
  return sum;
}

}  // namespace

std::unique_ptr<StatsService> StatsService::Start(StatsOptions options,
                                                  container::ContainerManager* containers,
                                                  sandbox::SandboxManager* sandboxes,
                                                  std::unique_ptr<CgroupReader> reader) {
  std::unique_ptr<StatsService> s(
      new StatsService(std::move(options), containers, sandboxes, std::move(reader)));
  if (s->options_.collect_period.count() > 0)
    s->sweeper_ = std::thread([p = s.get()] { p->SweepLoop(); });
  return s;
}

StatsService::StatsService(StatsOptions options, container::ContainerManager* containers,
                           sandbox::SandboxManager* sandboxes, std::unique_ptr<CgroupReader> reader)
    : options_(std::move(options)),
      containers_(containers),
      sandboxes_(sandboxes),
      reader_(std::move(reader)) {
  rlimit nofile{};
  rlim_t quarter = 256;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    quarter = nofile.rlim_cur == RLIM_INFINITY ? 16384 : nofile.rlim_cur / 4;
  }
  fd_budget_ = static_cast<int>(std::min<rlim_t>(quarter, 16384));
}

StatsService::~StatsService() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

StatsService::Sampled StatsService::SampleLocked(const std::string& key, const std::string& cgroup,
                                                 Detail detail, int64_t start_wall_ns,
                                                 nanoseconds max_age) {
  Entry& e = entries_[key];
  if (e.sample && max_age.count() > 0 && MonotonicNs() - e.sample->monotonic_ns < max_age.count() &&
      (detail == Detail::kStats || e.sample->detail == Detail::kMetrics)) {
    return {e.sample, e.nano_cores};
  }
  if (!e.files) e.files = std::make_unique<FileCache>(&fd_budget_);
  StatusOr<CgroupSample> read = reader_->Read(cgroup, detail, e.files.get());
  if (!read.ok()) {
    if (read.status().code() != StatusCode::kNotFound) {
      spdlog::debug("event=cgroup_read_failed cgroup={} error=\"{}\"", cgroup,
                    read.status().message());
    }
    entries_.erase(key);
    return {};
  }
  if (e.sample && e.sample->cpu) {
    const bool far_enough = read->monotonic_ns - e.sample->monotonic_ns >= kMinRateWindowNs;
    if (far_enough || !e.base) e.base = CpuPoint{e.sample->cpu->usage_ns, e.sample->monotonic_ns};
  }
  e.nano_cores = 0;
  if (read->cpu) {
    if (e.base && read->monotonic_ns > e.base->monotonic_ns) {
      if (read->cpu->usage_ns >= e.base->cpu_ns) {
        e.nano_cores =
            Rate(read->cpu->usage_ns - e.base->cpu_ns, read->monotonic_ns - e.base->monotonic_ns);
      }
    } else if (start_wall_ns > 0 && read->wall_ns > start_wall_ns) {
      e.nano_cores = Rate(read->cpu->usage_ns, read->wall_ns - start_wall_ns);
    }
  }
  e.sample = std::move(*read);
  return {e.sample, e.nano_cores};
}

ContainerUsage StatsService::UsageOf(container::ContainerRecord record, Detail detail,
                                     nanoseconds max_age) {
  ContainerUsage u;
  if (record.state == container::ContainerState::kRunning) {
    auto path = cgroup_paths_.find(record.id);
    if (path == cgroup_paths_.end()) {
      StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(record.sandbox_id);
      StatusOr<std::string> dir = pod.ok()
                                      ? oci::ContainerCgroupDir(pod->config.cgroup_parent,
                                                                options_.cgroup_driver, record.id)
                                      : StatusOr<std::string>(pod.status());
      if (dir.ok()) path = cgroup_paths_.emplace(record.id, *dir).first;
    }
    if (path != cgroup_paths_.end()) {
      Sampled s =
          SampleLocked("c/" + record.id, path->second, detail, record.started_at_ns, max_age);
      u.sample = std::move(s.sample);
      u.usage_nano_cores = s.nano_cores;
    }
  } else {
    entries_.erase("c/" + record.id);  // its cgroup files are of no more use
  }
  u.writable_layer = Layer(record);
  u.record = std::move(record);
  return u;
}

LayerUsage StatsService::MeasureLayer(const container::ContainerRecord& r) const {
  LayerUsage l;
  l.mountpoint = options_.writable_layer_mountpoint;
  if (r.layer_dir.empty()) return l;
  const int64_t when = WallNs();
  StatusOr<DiskUsage> du = MeasureDiskUsage(fs::path(r.layer_dir) / "upper");
  if (!du.ok()) {
    spdlog::debug("event=layer_usage_failed container={} error=\"{}\"", r.id,
                  du.status().message());
    return l;
  }
  l.wall_ns = when;
  l.used_bytes = du->bytes;
  l.inodes_used = du->inodes;
  return l;
}

LayerUsage StatsService::Layer(const container::ContainerRecord& r) {
  {
    std::lock_guard lock(layers_mu_);
    if (auto it = layers_.find(r.id); it != layers_.end()) return it->second;
  }
  // First sight: measure now (a new layer is small); the sweep keeps it fresh.
  LayerUsage l = MeasureLayer(r);
  std::lock_guard lock(layers_mu_);
  return layers_.emplace(r.id, l).first->second;
}

std::vector<ContainerUsage> StatsService::ListContainers(const ContainerUsageFilter& filter,
                                                         Detail detail) {
  std::vector<container::ContainerRecord> records = containers_->List();
  std::vector<ContainerUsage> out;
  out.reserve(records.size());
  std::lock_guard lock(sample_mu_);
  if (filter.id.empty() && filter.pod_sandbox_id.empty() && filter.labels.empty()) {
    // The whole list (a kubelet's call): forget removed containers now, so
    // that their files close even without the sweep.
    std::set<std::string> running;
    for (const auto& r : records) {
      if (r.state == container::ContainerState::kRunning) running.insert(r.id);
    }
    std::erase_if(entries_, [&](const auto& kv) {
      return kv.first.starts_with("c/") && !running.contains(kv.first.substr(2));
    });
  }
  for (container::ContainerRecord& r : records) {
    if (!filter.id.empty() && !r.id.starts_with(filter.id)) continue;
    if (!filter.pod_sandbox_id.empty() && !r.sandbox_id.starts_with(filter.pod_sandbox_id)) {
      continue;
    }
    if (!LabelsMatch(filter.labels, r.labels)) continue;
    out.push_back(UsageOf(std::move(r), detail, options_.min_sample_interval));
  }
  return out;
}

StatusOr<ContainerUsage> StatsService::Container(const std::string& id) {
  ASSIGN_OR_RETURN(container::ContainerRecord r, containers_->Get(id));
  std::lock_guard lock(sample_mu_);
  return UsageOf(std::move(r), Detail::kStats, options_.min_sample_interval);
}

std::vector<PodUsage> StatsService::ListPods(const PodUsageFilter& filter, Detail detail) {
  std::vector<sandbox::SandboxRecord> pods;
  for (sandbox::SandboxRecord& p : sandboxes_->List()) {
    // As containerd: only ready pods have figures to report.
    if (p.state != sandbox::SandboxState::kReady) continue;
    if (!filter.id.empty() && !p.id.starts_with(filter.id)) continue;
    if (!LabelsMatch(filter.labels, p.config.labels)) continue;
    pods.push_back(std::move(p));
  }
  return PodsUsage(std::move(pods), detail, options_.min_sample_interval);
}

StatusOr<PodUsage> StatsService::Pod(const std::string& id) {
  ASSIGN_OR_RETURN(sandbox::SandboxRecord p, sandboxes_->Get(id));
  if (p.state != sandbox::SandboxState::kReady) {
    return FailedPreconditionError(
        StrCat("pod sandbox ", p.id, " is not ready: a stopped pod has no usage to report"));
  }
  std::vector<PodUsage> one =
      PodsUsage({std::move(p)}, Detail::kStats, options_.min_sample_interval);
  return std::move(one.front());
}

std::vector<PodUsage> StatsService::PodsUsage(std::vector<sandbox::SandboxRecord> pods,
                                              Detail detail, nanoseconds max_age) {
  std::vector<PodUsage> out;
  if (pods.empty()) return out;
  std::map<std::string, std::vector<container::ContainerRecord>> by_pod;
  for (container::ContainerRecord& r : containers_->List()) {
    by_pod[r.sandbox_id].push_back(std::move(r));
  }
  out.resize(pods.size());
  std::vector<std::string> netns_paths;
  std::vector<size_t> netns_of;  // index into `out` of each path
  {
    std::lock_guard lock(sample_mu_);
    const int64_t now_mono = MonotonicNs();
    for (size_t i = 0; i < pods.size(); ++i) {
      PodUsage& u = out[i];
      for (container::ContainerRecord& r : by_pod[pods[i].id]) {
        u.containers.push_back(UsageOf(std::move(r), detail, max_age));
      }
      StatusOr<std::string> dir =
          oci::PodCgroupDir(pods[i].config.cgroup_parent, options_.cgroup_driver);
      if (dir.ok() && !dir->empty()) {
        Sampled s = SampleLocked("p/" + pods[i].id, *dir, detail, pods[i].created_at_ns, max_age);
        u.sample = std::move(s.sample);
        u.usage_nano_cores = s.nano_cores;
      } else {
        u.sample = Aggregate(u.containers);
        u.aggregated = u.sample.has_value();
        for (const ContainerUsage& c : u.containers) u.usage_nano_cores += c.usage_nano_cores;
      }
      u.process_wall_ns = WallNs();
      for (const ContainerUsage& c : u.containers) {
        if (c.sample && c.sample->pids) u.process_count += c.sample->pids->processes;
      }
      if (!pods[i].netns_path.empty() && pods[i].network_ready) {
        auto cached = networks_.find(pods[i].id);
        if (cached != networks_.end() && now_mono - cached->second.monotonic_ns < max_age.count()) {
          u.network = cached->second.sample;
        } else {
          netns_paths.push_back(pods[i].netns_path);
          netns_of.push_back(i);
        }
      }
    }
    std::vector<StatusOr<NetworkSample>> nets = ReadNetworkNamespaces(netns_paths);
    for (size_t k = 0; k < nets.size(); ++k) {
      const std::string& id = pods[netns_of[k]].id;
      if (!nets[k].ok()) {
        spdlog::debug("event=pod_network_read_failed pod={} error=\"{}\"", id,
                      nets[k].status().message());
        networks_.erase(id);
        continue;
      }
      networks_[id] = CachedNetwork{*nets[k], MonotonicNs()};
      out[netns_of[k]].network = std::move(*nets[k]);
    }
  }
  for (size_t i = 0; i < pods.size(); ++i) out[i].record = std::move(pods[i]);
  return out;
}

void StatsService::SweepLoop() {
  std::unique_lock lock(stop_mu_);
  for (;;) {
    lock.unlock();
    Sweep();
    lock.lock();
    if (stop_cv_.wait_for(lock, options_.collect_period, [this] { return stopping_; })) return;
  }
}

void StatsService::Sweep() {
  std::vector<container::ContainerRecord> records = containers_->List();
  std::vector<sandbox::SandboxRecord> pods = sandboxes_->List();
  std::set<std::string> ids, pod_ids, running, ready;
  for (const auto& r : records) {
    ids.insert(r.id);
    if (r.state == container::ContainerState::kRunning) running.insert(r.id);
  }
  for (const auto& p : pods) {
    pod_ids.insert(p.id);
    if (p.state == sandbox::SandboxState::kReady) ready.insert(p.id);
  }

  // Writable layers: the costly part, outside every lock RPCs take.
  std::map<std::string, LayerUsage> layers;
  for (const auto& r : records) layers.emplace(r.id, MeasureLayer(r));
  {
    std::lock_guard lock(layers_mu_);
    layers_ = std::move(layers);
  }

  // A cgroup is sampled here only when no call did so for two periods: a
  // kubelet polling every period keeps every sample fresh by itself, and its
  // previous call is the right base for the rate it asks for next.
  const nanoseconds max_age = options_.collect_period * 2;
  std::lock_guard lock(sample_mu_);
  // Forget what was removed or stopped (and close its files).
  std::erase_if(entries_, [&](const auto& kv) {
    const std::string id = kv.first.substr(2);
    return kv.first.starts_with("c/") ? !running.contains(id) : !ready.contains(id);
  });
  for (container::ContainerRecord& r : records) {
    if (r.state == container::ContainerState::kRunning)
      UsageOf(std::move(r), Detail::kStats, max_age);
  }
  for (const sandbox::SandboxRecord& p : pods) {
    if (p.state != sandbox::SandboxState::kReady) continue;
    StatusOr<std::string> dir = oci::PodCgroupDir(p.config.cgroup_parent, options_.cgroup_driver);
    if (dir.ok() && !dir->empty()) {
      SampleLocked("p/" + p.id, *dir, Detail::kStats, p.created_at_ns, max_age);
    }
  }
  std::erase_if(cgroup_paths_, [&](const auto& kv) { return !ids.contains(kv.first); });
  std::erase_if(networks_, [&](const auto& kv) { return !pod_ids.contains(kv.first); });
}

}  // namespace berth::stats
