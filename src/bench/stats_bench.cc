#include "runtime/v1/api.grpc.pb.h"
// (the CRI header first: its Signal enum clashes with <signal.h>)

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "bench/cri_call.h"
#include "bench/proc_cpu.h"
#include "bench/stats_bench.h"
#include "common/fs.h"

namespace berth::bench {

namespace {

namespace cri = runtime::v1;
namespace fs = std::filesystem;
using Stub = cri::RuntimeService::Stub;
using Clock = std::chrono::steady_clock;

struct Pod {
  std::string pod_id, container_id;
};

double HelpersCpuMs(const std::vector<int>& pids) {
  double sum = 0;
  for (int p : pids) sum += CpuMs(p);
  return sum;
}

Status StartPods(Stub& stub, const StatsBenchOptions& o, std::vector<Pod>& pods) {
  for (int i = 0; i < o.containers; ++i) {
    const std::string name = StrCat(o.name_prefix, "-", ::getpid(), "-", i);
    cri::PodSandboxConfig config;
    config.mutable_metadata()->set_name(name);
    config.mutable_metadata()->set_uid(name + "-uid");
    config.mutable_metadata()->set_namespace_("berth-bench");
    if (!o.host_network) config.set_hostname(name);
    if (!o.log_dir.empty()) {
      config.set_log_directory((fs::path(o.log_dir) / name).string());
      RETURN_IF_ERROR(MakeDirs(config.log_directory()));
    }
    config.mutable_linux()->set_cgroup_parent(StrCat(o.cgroup_root, "/pod", i));
    auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_pid(cri::CONTAINER);
    ns->set_network(o.host_network ? cri::NODE : cri::POD);
    cri::RunPodSandboxRequest run;
    *run.mutable_config() = config;
    cri::RunPodSandboxResponse ran;
    RETURN_IF_ERROR(CriCall(stub, &Stub::RunPodSandbox, run, &ran, StrCat("RunPodSandbox ", name)));
    pods.push_back({ran.pod_sandbox_id(), ""});
    cri::CreateContainerRequest create;
    create.set_pod_sandbox_id(ran.pod_sandbox_id());
    *create.mutable_sandbox_config() = config;
    auto* c = create.mutable_config();
    c->mutable_metadata()->set_name("sleep");
    c->mutable_image()->set_image(o.image);
    c->add_command("sleep");
    c->add_command("3600");
    if (!o.log_dir.empty()) c->set_log_path("sleep.log");
    *c->mutable_linux()->mutable_security_context()->mutable_namespace_options() = *ns;
    cri::CreateContainerResponse created;
    RETURN_IF_ERROR(CriCall(stub, &Stub::CreateContainer, create, &created,
                            StrCat("CreateContainer in ", name)));
    pods.back().container_id = created.container_id();
    cri::StartContainerRequest start;
    start.set_container_id(created.container_id());
    cri::StartContainerResponse started;
    RETURN_IF_ERROR(CriCall(stub, &Stub::StartContainer, start, &started,
                            StrCat("StartContainer ", created.container_id())));
  }
  return OkStatus();
}

void RemovePods(Stub& stub, const std::vector<Pod>& pods) {
  for (const Pod& p : pods) {
    cri::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(p.pod_id);
    cri::StopPodSandboxResponse stopped;
    (void)CriCall(stub, &Stub::StopPodSandbox, stop, &stopped, "StopPodSandbox");
    cri::RemovePodSandboxRequest rm;
    rm.set_pod_sandbox_id(p.pod_id);
    cri::RemovePodSandboxResponse removed;
    (void)CriCall(stub, &Stub::RemovePodSandbox, rm, &removed, "RemovePodSandbox");
  }
}

// The pods' cgroup parents, in every hierarchy, deepest first (runtimes make
// parents and never remove them).
void RemoveCgroupTree(const std::string& root) {
  if (root.empty() || root == "/") return;
  std::vector<fs::path> bases = {fs::path("/sys/fs/cgroup") / fs::path(root).relative_path()};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    bases.push_back(e.path() / fs::path(root).relative_path());
  }
  for (const fs::path& base : bases) {
    std::vector<fs::path> dirs;
    for (auto it = fs::recursive_directory_iterator(base, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory()) dirs.push_back(it->path());
    }
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.string().size() > b.string().size();
    });
    for (const fs::path& d : dirs) ::rmdir(d.c_str());
    ::rmdir(base.c_str());
  }
}

template <typename Req, typename Resp>
StatusOr<RpcCost> Measure(Stub& stub,
                          grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                          const std::string& name, const StatsBenchOptions& o,
                          const std::vector<int>& helpers,
                          int (*count)(const Resp&, int* with_cpu)) {
  RpcCost cost;
  cost.rpc = name;
  Resp warm;
  RETURN_IF_ERROR(CriCall(stub, method, Req(), &warm, name));
  const double d0 = CpuMs(o.daemon_pid), h0 = HelpersCpuMs(helpers);
  Resp last;
  for (int i = 0; i < o.calls; ++i) {
    Resp resp;
    auto t0 = Clock::now();
    RETURN_IF_ERROR(CriCall(stub, method, Req(), &resp, name));
    cost.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (i + 1 == o.calls) last = std::move(resp);
  }
  cost.daemon_cpu_ms = CpuMs(o.daemon_pid) - d0;
  cost.helpers_cpu_ms = HelpersCpuMs(helpers) - h0;
  cost.items = count(last, &cost.items_with_cpu);
  return cost;
}

int CountContainers(const cri::ListContainerStatsResponse& r, int* with_cpu) {
  *with_cpu = 0;
  for (const auto& s : r.stats()) *with_cpu += s.has_cpu() ? 1 : 0;
  return r.stats_size();
}

int CountPods(const cri::ListPodSandboxStatsResponse& r, int* with_cpu) {
  *with_cpu = 0;
  for (const auto& s : r.stats()) *with_cpu += s.linux().has_cpu() ? 1 : 0;
  return r.stats_size();
}

Status Poll(Stub& stub, const StatsBenchOptions& o, const std::vector<int>& helpers,
            StatsBenchResult& result) {
  const double d0 = CpuMs(o.daemon_pid), h0 = HelpersCpuMs(helpers);
  const auto start = Clock::now();
  for (int second = 0; second < o.poll_seconds; ++second) {
    std::this_thread::sleep_until(start + std::chrono::seconds(second));
    cri::ListPodSandboxResponse pods;
    RETURN_IF_ERROR(
        CriCall(stub, &Stub::ListPodSandbox, cri::ListPodSandboxRequest(), &pods, "relist"));
    cri::ListContainersResponse ctrs;
    RETURN_IF_ERROR(
        CriCall(stub, &Stub::ListContainers, cri::ListContainersRequest(), &ctrs, "relist"));
    ++result.poll_relists;
    if (second % 10 == 0) {
      cri::ListPodSandboxStatsResponse ps;
      RETURN_IF_ERROR(CriCall(stub, &Stub::ListPodSandboxStats, cri::ListPodSandboxStatsRequest(),
                              &ps, "ListPodSandboxStats"));
      cri::ListContainerStatsResponse cs;
      RETURN_IF_ERROR(CriCall(stub, &Stub::ListContainerStats, cri::ListContainerStatsRequest(),
                              &cs, "ListContainerStats"));
      ++result.poll_stats_rounds;
    }
  }
  std::this_thread::sleep_until(start + std::chrono::seconds(o.poll_seconds));
  result.poll_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.poll_daemon_cpu_ms = CpuMs(o.daemon_pid) - d0;
  result.poll_helpers_cpu_ms = HelpersCpuMs(helpers) - h0;
  return OkStatus();
}

}  // namespace

StatusOr<StatsBenchResult> RunStatsBench(const StatsBenchOptions& o) {
  if (o.daemon_pid <= 0) return InvalidArgumentError("stats bench needs --daemon-pid");
  if (o.cgroup_root.empty() || o.cgroup_root.front() != '/') {
    return InvalidArgumentError("stats bench needs an absolute --cgroup-root");
  }
  auto stub = cri::RuntimeService::NewStub(
      grpc::CreateChannel(o.endpoint, grpc::InsecureChannelCredentials()));
  std::vector<Pod> pods;
  StatsBenchResult result;
  Status s = StartPods(*stub, o, pods);
  if (s.ok()) {
    result.containers = static_cast<int>(pods.size());
    // Let the runtimes settle (containerd's first stats of a task, Berth's first sweep).
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::vector<std::string> ids;
    for (const Pod& p : pods) ids.insert(ids.end(), {p.pod_id, p.container_id});
    const std::vector<int> helpers = FindHelpers(o.helper_name, ids);
    StatusOr<RpcCost> c = Measure(*stub, &Stub::ListContainerStats, "ListContainerStats", o,
                                  helpers, CountContainers);
    StatusOr<RpcCost> p = c.ok() ? Measure(*stub, &Stub::ListPodSandboxStats, "ListPodSandboxStats",
                                           o, helpers, CountPods)
                                 : StatusOr<RpcCost>(c.status());
    if (!p.ok()) {
      s = p.status();
    } else {
      result.rpcs = {*c, *p};
      if (o.poll_seconds > 0) s = Poll(*stub, o, helpers, result);
    }
  }
  RemovePods(*stub, pods);
  RemoveCgroupTree(o.cgroup_root);
  if (!s.ok()) return s;
  return result;
}

}  // namespace berth::bench
