#include "runtime/v1/api.grpc.pb.h"
// (the CRI header first: its Signal enum clashes with <signal.h>)

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include "bench/cri_call.h"
#include "bench/lifecycle_bench.h"
#include "common/fs.h"

namespace berth::bench {

namespace {

namespace cri = runtime::v1;
using Stub = cri::RuntimeService::Stub;

enum Phase {
  kPodStart,
  kContainerCreate,
  kContainerStart,
  kExecSync,
  kContainerStopRemove,
  kPodStopRemove,
  kTotal,
  kPhaseCount
};
constexpr const char* kPhaseNames[kPhaseCount] = {
    "pod_start", "container_create",      "container_start",
    "exec_sync", "container_stop_remove", "pod_stop_remove",
    "total"};

std::unique_ptr<Stub> Connect(const std::string& endpoint) {
  return cri::RuntimeService::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
}

void SetNamespaces(const LifecycleBenchOptions& o, cri::NamespaceOption* ns) {
  ns->set_pid(cri::CONTAINER);
  ns->set_network(o.host_network ? cri::NODE : cri::POD);
}

cri::PodSandboxConfig PodConfig(const LifecycleBenchOptions& o, const std::string& name) {
  cri::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_uid(name + "-uid");
  c.mutable_metadata()->set_namespace_("berth-bench");
  // As the kubelet: a pod in the node's network keeps the node's hostname.
  if (!o.host_network) c.set_hostname(name);
  if (!o.log_dir.empty()) c.set_log_directory((std::filesystem::path(o.log_dir) / name).string());
  SetNamespaces(o, c.mutable_linux()->mutable_security_context()->mutable_namespace_options());
  return c;
}

// A pod and the one container in it; empty ids are not created (yet).
struct Pod {
  std::string pod_id;
  std::string container_id;
  cri::PodSandboxConfig config;
};

Status RunPod(Stub& stub, const LifecycleBenchOptions& o, const std::string& name, Pod* pod) {
  pod->config = PodConfig(o, name);
  // The kubelet creates the pod's log directory before RunPodSandbox.
  if (!o.log_dir.empty()) RETURN_IF_ERROR(MakeDirs(pod->config.log_directory()));
  cri::RunPodSandboxRequest req;
  *req.mutable_config() = pod->config;
  cri::RunPodSandboxResponse resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::RunPodSandbox, req, &resp, StrCat("RunPodSandbox ", name)));
  pod->pod_id = resp.pod_sandbox_id();
  return OkStatus();
}

Status CreateContainer(Stub& stub, const LifecycleBenchOptions& o, Pod* pod) {
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod->pod_id);
  *req.mutable_sandbox_config() = pod->config;
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name("sleep");
  c->mutable_image()->set_image(o.image);
  c->add_command("sleep");
  c->add_command("3600");
  if (!o.log_dir.empty()) c->set_log_path("sleep.log");
  SetNamespaces(o, c->mutable_linux()->mutable_security_context()->mutable_namespace_options());
  cri::CreateContainerResponse resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::CreateContainer, req, &resp,
                          StrCat("CreateContainer in pod ", pod->pod_id)));
  pod->container_id = resp.container_id();
  return OkStatus();
}

Status StartContainer(Stub& stub, const Pod& pod) {
  cri::StartContainerRequest req;
  req.set_container_id(pod.container_id);
  cri::StartContainerResponse resp;
  return CriCall(stub, &Stub::StartContainer, req, &resp,
                 StrCat("StartContainer ", pod.container_id));
}

Status ExecEcho(Stub& stub, const Pod& pod) {
  cri::ExecSyncRequest req;
  req.set_container_id(pod.container_id);
  req.add_cmd("echo");
  req.add_cmd("hi");
  req.set_timeout(30);
  cri::ExecSyncResponse resp;
  RETURN_IF_ERROR(
      CriCall(stub, &Stub::ExecSync, req, &resp, StrCat("ExecSync ", pod.container_id)));
  if (resp.exit_code() != 0 || resp.stdout() != "hi\n") {
    return InternalError(StrCat("ExecSync `echo hi` in container ", pod.container_id,
                                ": exit code ", resp.exit_code(), ", stdout \"", resp.stdout(),
                                "\", stderr \"", resp.stderr(), "\""));
  }
  return OkStatus();
}

// Stop (timeout 0) and remove the container, if it was created.
Status RemoveContainer(Stub& stub, Pod* pod) {
  if (pod->container_id.empty()) return OkStatus();
  cri::StopContainerRequest stop;
  stop.set_container_id(pod->container_id);
  stop.set_timeout(0);
  cri::StopContainerResponse stop_resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::StopContainer, stop, &stop_resp,
                          StrCat("StopContainer ", pod->container_id)));
  cri::RemoveContainerRequest rm;
  rm.set_container_id(pod->container_id);
  cri::RemoveContainerResponse rm_resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::RemoveContainer, rm, &rm_resp,
                          StrCat("RemoveContainer ", pod->container_id)));
  pod->container_id.clear();
  return OkStatus();
}

// Removes the container (if any), then stops and removes the pod (if created).
Status RemovePod(Stub& stub, Pod* pod) {
  RETURN_IF_ERROR(RemoveContainer(stub, pod));
  if (pod->pod_id.empty()) return OkStatus();
  cri::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(pod->pod_id);
  cri::StopPodSandboxResponse stop_resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::StopPodSandbox, stop, &stop_resp,
                          StrCat("StopPodSandbox ", pod->pod_id)));
  cri::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(pod->pod_id);
  cri::RemovePodSandboxResponse rm_resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::RemovePodSandbox, rm, &rm_resp,
                          StrCat("RemovePodSandbox ", pod->pod_id)));
  pod->pod_id.clear();
  return OkStatus();
}

// The pod's IP address from PodSandboxStatus; FailedPrecondition if it has none
// although it should be in its own (CNI) network.
StatusOr<std::string> PodIp(Stub& stub, const LifecycleBenchOptions& o, const Pod& pod) {
  cri::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(pod.pod_id);
  cri::PodSandboxStatusResponse resp;
  RETURN_IF_ERROR(
      CriCall(stub, &Stub::PodSandboxStatus, req, &resp, StrCat("PodSandboxStatus ", pod.pod_id)));
  const std::string& ip = resp.status().network().ip();
  if (ip.empty() && !o.host_network) {
    return FailedPreconditionError(
        StrCat("pod ", pod.pod_id, " has no IP address: no CNI network"));
  }
  return ip;
}

// Removes every pod, trying all of them; returns the first error.
Status RemovePods(Stub& stub, std::vector<Pod>& pods) {
  Status first = OkStatus();
  for (Pod& pod : pods) {
    Status s = RemovePod(stub, &pod);
    if (first.ok()) first = s;
  }
  return first;
}

std::string PodName(const LifecycleBenchOptions& o, std::string_view kind, int n) {
  return StrCat(o.name_prefix, "-", kind, "-", getpid(), "-", n);
}

}  // namespace

StatusOr<std::vector<PhaseTimes>> RunLifecycleBench(const LifecycleBenchOptions& options) {
  auto stub = Connect(options.endpoint);
  std::vector<PhaseTimes> phases(kPhaseCount);
  for (int p = 0; p < kPhaseCount; ++p) phases[p].phase = kPhaseNames[p];
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < options.iterations; ++i) {
    Pod pod;
    ScopeGuard rollback([&] { (void)RemovePod(*stub, &pod); });
    Clock::time_point begin = Clock::now();
    auto timed = [&](Phase phase, const auto& step) -> Status {
      Clock::time_point t0 = Clock::now();
      Status s = step();
      phases[phase].ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      return s;
    };
    RETURN_IF_ERROR(
        timed(kPodStart, [&] { return RunPod(*stub, options, PodName(options, "lc", i), &pod); }));
    RETURN_IF_ERROR(timed(kContainerCreate, [&] { return CreateContainer(*stub, options, &pod); }));
    RETURN_IF_ERROR(timed(kContainerStart, [&] { return StartContainer(*stub, pod); }));
    RETURN_IF_ERROR(timed(kExecSync, [&] { return ExecEcho(*stub, pod); }));
    RETURN_IF_ERROR(timed(kContainerStopRemove, [&] { return RemoveContainer(*stub, &pod); }));
    RETURN_IF_ERROR(timed(kPodStopRemove, [&] { return RemovePod(*stub, &pod); }));
    phases[kTotal].ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
    rollback.Cancel();
  }
  return phases;
}

StatusOr<std::vector<std::string>> StartRunningPods(const LifecycleBenchOptions& options, int n) {
  auto stub = Connect(options.endpoint);
  std::vector<Pod> pods(n);
  ScopeGuard rollback([&] { (void)RemovePods(*stub, pods); });
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    RETURN_IF_ERROR(RunPod(*stub, options, PodName(options, "keep", i), &pods[i]));
    RETURN_IF_ERROR(CreateContainer(*stub, options, &pods[i]));
    RETURN_IF_ERROR(StartContainer(*stub, pods[i]));
    ids.push_back(pods[i].pod_id);
  }
  rollback.Cancel();
  return ids;
}

Status RemovePodsById(const std::string& endpoint, const std::vector<std::string>& pod_ids) {
  auto stub = Connect(endpoint);
  Status first = OkStatus();
  for (const std::string& id : pod_ids) {
    cri::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse stop_resp;
    Status s =
        CriCall(*stub, &Stub::StopPodSandbox, stop, &stop_resp, StrCat("StopPodSandbox ", id));
    if (s.ok()) {
      cri::RemovePodSandboxRequest rm;
      rm.set_pod_sandbox_id(id);
      cri::RemovePodSandboxResponse rm_resp;
      s = CriCall(*stub, &Stub::RemovePodSandbox, rm, &rm_resp, StrCat("RemovePodSandbox ", id));
    }
    if (first.ok()) first = s;
  }
  return first;
}

StatusOr<uint64_t> ReadRssKb(int pid) {
  std::string path = StrCat("/proc/", pid, "/status");
  ASSIGN_OR_RETURN(std::string status, ReadFile(path));
  size_t at = status.find("\nVmRSS:");
  if (at == std::string::npos) return NotFoundError(StrCat("no VmRSS in ", path));
  return std::stoull(status.substr(at + 7));
}

namespace {

// Helpers named `name` whose command line mentions one of `ids`: their count and
// summed RSS. Processes that exit while being read are skipped.
void SumHelpers(const std::string& name, const std::vector<std::string>& ids, MemoryResult* r) {
  // /proc/<pid>/comm holds at most 15 characters of the program name.
  std::string comm = name.substr(0, 15) + "\n";
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string pid = entry.path().filename();
    if (!std::all_of(pid.begin(), pid.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      continue;
    }
    auto c = ReadFile(entry.path() / "comm");
    if (!c.ok() || *c != comm) continue;
    auto cmdline = ReadFile(entry.path() / "cmdline");
    if (!cmdline.ok()) continue;
    std::replace(cmdline->begin(), cmdline->end(), '\0', ' ');
    cmdline->push_back(' ');
    bool ours = std::any_of(ids.begin(), ids.end(), [&](const std::string& id) {
      return cmdline->find(" " + id + " ") != std::string::npos;
    });
    if (!ours) continue;
    auto rss = ReadRssKb(std::stoi(pid));
    if (!rss.ok()) continue;
    ++r->helpers;
    r->helpers_rss_kb += *rss;
  }
}

}  // namespace

StatusOr<MemoryResult> RunMemoryBench(const LifecycleBenchOptions& options) {
  auto stub = Connect(options.endpoint);
  std::vector<Pod> pods(options.memory_pods);
  ScopeGuard rollback([&] { (void)RemovePods(*stub, pods); });
  MemoryResult result;
  result.pods = options.memory_pods;
  std::vector<std::string> ids;
  for (int i = 0; i < options.memory_pods; ++i) {
    Pod& pod = pods[i];
    RETURN_IF_ERROR(RunPod(*stub, options, PodName(options, "mem", i), &pod));
    RETURN_IF_ERROR(CreateContainer(*stub, options, &pod));
    RETURN_IF_ERROR(StartContainer(*stub, pod));
    ASSIGN_OR_RETURN(std::string ip, PodIp(*stub, options, pod));
    if (i == 0) result.first_pod_ip = ip;
    ids.push_back(pod.pod_id);
    ids.push_back(pod.container_id);
  }
  // Let helpers finish their start-up work (and free its memory) before reading.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  if (options.daemon_pid > 0) {
    ASSIGN_OR_RETURN(result.daemon_rss_kb, ReadRssKb(options.daemon_pid));
  }
  if (!options.helper_name.empty()) SumHelpers(options.helper_name, ids, &result);
  rollback.Cancel();
  RETURN_IF_ERROR(RemovePods(*stub, pods));
  return result;
}

}  // namespace berth::bench
