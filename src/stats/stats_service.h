// Resource usage of containers and pods for the CRI stats and metrics RPCs,
// served from a cache that one collector fills:
//
// - cgroup figures are read on demand, but a sample younger than
//   `min_sample_interval` is reused, so a burst of calls (a kubelet's
//   ListPodSandboxStats right after ListContainerStats, crictl's two calls)
//   reads each cgroup once;
// - a background sweep every `collect_period` samples every running
//   container and pod that no call sampled for two periods (so
//   usage_nano_cores has a reasonably recent earlier sample to difference
//   against even when nobody polls), measures every writable layer (a
//   directory walk, never done in an RPC after the first one of a container),
//   and forgets removed objects.
//
// usage_nano_cores is (CPU time now - CPU time at the previous sample) /
// (time between them); for the first sample of an object it is the average
// since the container started (pod: since it was created).
//
// Thread-safe. Owns the sweep thread, stopped by the destructor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "container/container_manager.h"
#include "oci/spec_builder.h"
#include "sandbox/sandbox_manager.h"
#include "stats/cgroup_reader.h"
#include "stats/netns_counters.h"

namespace berth::stats {

struct StatsOptions {
  // Background sweep period; zero disables the sweep (layers are then
  // measured once, cgroups only on demand).
  std::chrono::milliseconds collect_period{10000};
  // An RPC reuses a cgroup sample younger than this.
  std::chrono::milliseconds min_sample_interval{500};
  // The filesystem identifier of writable layers (<root>/containers), as
  // ImageFsInfo names it.
  std::string writable_layer_mountpoint;
  oci::CgroupDriver cgroup_driver = oci::CgroupDriver::kCgroupfs;
};

struct LayerUsage {
  int64_t wall_ns = 0;  // when measured; 0: not measured (the layer is gone)
  uint64_t used_bytes = 0;
  uint64_t inodes_used = 0;
  std::string mountpoint;
};

struct ContainerUsage {
  container::ContainerRecord record;
  // Running containers whose cgroup could be read; unset otherwise (as
  // containerd, created and exited containers get no CPU or memory figures).
  std::optional<CgroupSample> sample;
  uint64_t usage_nano_cores = 0;
  LayerUsage writable_layer;
};

struct PodUsage {
  sandbox::SandboxRecord record;
  // The pod's cgroup (its cgroup parent), or, for a pod without one, the sum
  // of its running containers' samples (`aggregated`). Unset when neither
  // exists.
  std::optional<CgroupSample> sample;
  bool aggregated = false;
  uint64_t usage_nano_cores = 0;
  std::optional<NetworkSample> network;  // pods with a network namespace
  int64_t process_wall_ns = 0;
  uint64_t process_count = 0;  // processes of its running containers
  std::vector<ContainerUsage> containers;
};

// Unset fields match everything. Ids match by prefix, like ListContainers.
struct ContainerUsageFilter {
  std::string id, pod_sandbox_id;
  std::map<std::string, std::string> labels;
};
struct PodUsageFilter {
  std::string id;
  std::map<std::string, std::string> labels;
};

class StatsService {
 public:
  // The managers must outlive the service.
  static std::unique_ptr<StatsService> Start(StatsOptions options,
                                             container::ContainerManager* containers,
                                             sandbox::SandboxManager* sandboxes,
                                             std::unique_ptr<CgroupReader> reader);
  ~StatsService();
  StatsService(const StatsService&) = delete;
  StatsService& operator=(const StatsService&) = delete;

  // Every container the filter matches, in every state (containerd's answer).
  std::vector<ContainerUsage> ListContainers(const ContainerUsageFilter& filter,
                                             Detail detail = Detail::kStats);
  // NOT_FOUND for an unknown id; a container that is not running gets its
  // attributes and writable layer only, as in the list.
  StatusOr<ContainerUsage> Container(const std::string& id);
  // Ready pods the filter matches, with their containers.
  std::vector<PodUsage> ListPods(const PodUsageFilter& filter, Detail detail = Detail::kStats);
  // NOT_FOUND for an unknown id, FAILED_PRECONDITION for a pod that is not ready.
  StatusOr<PodUsage> Pod(const std::string& id);

  CgroupVersion cgroup_version() const { return reader_->version(); }
  const std::string& writable_layer_mountpoint() const {
    return options_.writable_layer_mountpoint;
  }

 private:
  StatsService(StatsOptions options, container::ContainerManager* containers,
               sandbox::SandboxManager* sandboxes, std::unique_ptr<CgroupReader> reader);

  struct CpuPoint {
    uint64_t cpu_ns = 0;
    int64_t monotonic_ns = 0;
  };
  // One cached cgroup sample and what usage_nano_cores needs: the rate is
  // taken against `base`, the latest earlier sample at least 100 ms older.
  struct Entry {
    std::optional<CgroupSample> sample;
    std::optional<CpuPoint> base;
    uint64_t nano_cores = 0;
    std::unique_ptr<FileCache> files;  // the cgroup's files, kept open
  };
  struct CachedNetwork {
    NetworkSample sample;
    int64_t monotonic_ns = 0;
  };
  struct Sampled {
    std::optional<CgroupSample> sample;
    uint64_t nano_cores = 0;
  };
  // A cached or fresh sample of `cgroup`. `max_age` zero forces a read.
  // `start_wall_ns`: when the object started, for the first rate. Caller
  // holds sample_mu_.
  Sampled SampleLocked(const std::string& key, const std::string& cgroup, Detail detail,
                       int64_t start_wall_ns, std::chrono::nanoseconds max_age);
  ContainerUsage UsageOf(container::ContainerRecord record, Detail detail,
                         std::chrono::nanoseconds max_age);
  std::vector<PodUsage> PodsUsage(std::vector<sandbox::SandboxRecord> pods, Detail detail,
                                  std::chrono::nanoseconds max_age);
  LayerUsage Layer(const container::ContainerRecord& r);
  LayerUsage MeasureLayer(const container::ContainerRecord& r) const;
  void SweepLoop();
  void Sweep();

  const StatsOptions options_;
  container::ContainerManager* const containers_;
  sandbox::SandboxManager* const sandboxes_;
  const std::unique_ptr<CgroupReader> reader_;

  // Descriptors FileCaches may keep open, all together: a quarter of the
  // process's limit, at most 16384 (about 8 per running container and pod).
  std::atomic<int> fd_budget_;

  // Held while sampling, so that concurrent calls read each cgroup once.
  std::mutex sample_mu_;
  std::map<std::string, Entry> entries_;             // "c/<id>", "p/<id>"
  std::map<std::string, std::string> cgroup_paths_;  // container id -> its cgroup
  std::map<std::string, CachedNetwork> networks_;    // by pod id

  std::mutex layers_mu_;
  std::map<std::string, LayerUsage> layers_;  // by container id

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace berth::stats
