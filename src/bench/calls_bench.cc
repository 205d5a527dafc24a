#include "runtime/v1/api.grpc.pb.h"
// (the CRI header first: its Signal enum clashes with <signal.h>)

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>

#include "bench/calls_bench.h"
#include "bench/cri_call.h"
#include "bench/proc_cpu.h"
#include "common/fs.h"

namespace berth::bench {

namespace {

namespace cri = runtime::v1;
using Stub = cri::RuntimeService::Stub;
using Clock = std::chrono::steady_clock;

// Pods that stay ready and hold the containers of the list measurement.
constexpr int kReadyPods = 10;

double ElapsedMs(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

cri::PodSandboxConfig PodConfig(const std::string& name) {
  cri::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_uid(name + "-uid");
  c.mutable_metadata()->set_namespace_("berth-bench");
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(cri::NODE);
  ns->set_pid(cri::CONTAINER);
  (*c.mutable_labels())["bench"] = "calls";
  return c;
}

struct Pod {
  std::string id;
  cri::PodSandboxConfig config;
};

class Driver {
 public:
  explicit Driver(const CallsBenchOptions& o)
      : o_(o),
        stub_(cri::RuntimeService::NewStub(
            grpc::CreateChannel(o.endpoint, grpc::InsecureChannelCredentials()))) {}

  Stub& stub() { return *stub_; }

  StatusOr<Pod> RunPod(const std::string& name) {
    Pod p;
    p.config = PodConfig(name);
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = p.config;
    cri::RunPodSandboxResponse resp;
    RETURN_IF_ERROR(CriCall(*stub_, &Stub::RunPodSandbox, req, &resp, "RunPodSandbox " + name));
    p.id = resp.pod_sandbox_id();
    pods_.push_back(p.id);
    return p;
  }

  Status StopPod(const std::string& id) {
    cri::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse resp;
    return CriCall(*stub_, &Stub::StopPodSandbox, req, &resp, "StopPodSandbox " + id);
  }

  StatusOr<std::string> CreateContainer(const Pod& pod, const std::string& name,
                                        std::vector<std::string> cmd) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod.id);
    *req.mutable_sandbox_config() = pod.config;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(o_.image);
    for (auto& a : cmd) c->add_command(std::move(a));
    (*c->mutable_labels())["bench"] = "calls";
    c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
        cri::CONTAINER);
    cri::CreateContainerResponse resp;
    RETURN_IF_ERROR(CriCall(*stub_, &Stub::CreateContainer, req, &resp, "CreateContainer " + name));
    return resp.container_id();
  }

  Status StartContainer(const std::string& id) {
    cri::StartContainerRequest req;
    req.set_container_id(id);
    cri::StartContainerResponse resp;
    return CriCall(*stub_, &Stub::StartContainer, req, &resp, "StartContainer " + id);
  }

  Status ContainerStatus(const std::string& id, cri::ContainerStatusResponse* resp) {
    cri::ContainerStatusRequest req;
    req.set_container_id(id);
    return CriCall(*stub_, &Stub::ContainerStatus, req, resp, "ContainerStatus " + id);
  }

  Status StopContainer(const std::string& id) {
    cri::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(0);
    cri::StopContainerResponse resp;
    return CriCall(*stub_, &Stub::StopContainer, req, &resp, "StopContainer " + id);
  }

  Status RemoveContainer(const std::string& id) {
    cri::RemoveContainerRequest req;
    req.set_container_id(id);
    cri::RemoveContainerResponse resp;
    return CriCall(*stub_, &Stub::RemoveContainer, req, &resp, "RemoveContainer " + id);
  }

  // Stops and removes every pod this run made (with their containers).
  Status RemoveAll() {
    Status first = OkStatus();
    for (const std::string& id : pods_) {
      Status s = StopPod(id);
      if (s.ok()) {
        cri::RemovePodSandboxRequest req;
        req.set_pod_sandbox_id(id);
        cri::RemovePodSandboxResponse resp;
        s = CriCall(*stub_, &Stub::RemovePodSandbox, req, &resp, "RemovePodSandbox " + id);
      }
      if (!s.ok() && first.ok()) first = s;
    }
    pods_.clear();
    return first;
  }

 private:
  const CallsBenchOptions& o_;
  std::unique_ptr<Stub> stub_;
  std::vector<std::string> pods_;
};

// Create, start, status, stop (timeout 0), remove of one container at a time
// in one ready pod, each call timed.
Status Lifecycle(Driver& d, const CallsBenchOptions& o, std::vector<CallCost>* out) {
  ASSIGN_OR_RETURN(Pod pod, d.RunPod(StrCat(o.name_prefix, "-lc-", ::getpid())));
  const char* names[] = {"CreateContainer", "StartContainer",  "ContainerStatus",
                         "StopContainer",   "RemoveContainer", "CreateContainer+StartContainer"};
  std::vector<CallCost> costs(std::size(names));
  for (size_t i = 0; i < costs.size(); ++i) costs[i].rpc = names[i];
  for (int i = 0; i <= o.iterations; ++i) {  // the first one warms up, not counted
    auto t0 = Clock::now();
    ASSIGN_OR_RETURN(std::string id, d.CreateContainer(pod, StrCat("c", i), {"sleep", "3600"}));
    const double create = ElapsedMs(t0);
    t0 = Clock::now();
    RETURN_IF_ERROR(d.StartContainer(id));
    const double start = ElapsedMs(t0);
    cri::ContainerStatusResponse st;
    t0 = Clock::now();
    RETURN_IF_ERROR(d.ContainerStatus(id, &st));
    const double status = ElapsedMs(t0);
    if (st.status().state() != cri::CONTAINER_RUNNING) {
      return InternalError(StrCat("container ", id, " is not running after StartContainer"));
    }
    t0 = Clock::now();
    RETURN_IF_ERROR(d.StopContainer(id));
    const double stop = ElapsedMs(t0);
    t0 = Clock::now();
    RETURN_IF_ERROR(d.RemoveContainer(id));
    const double remove = ElapsedMs(t0);
    if (i == 0) continue;
    const double values[] = {create, start, status, stop, remove, create + start};
    for (size_t k = 0; k < costs.size(); ++k) costs[k].ms.push_back(values[k]);
  }
  for (auto& c : costs) out->push_back(std::move(c));
  return d.RemoveAll();
}

template <typename S, typename Req, typename Resp>
Status Measure(S& stub, grpc::Status (S::*method)(grpc::ClientContext*, const Req&, Resp*),
               const std::string& name, const std::function<Req(int)>& request,
               const std::function<int(const Resp&)>& count, const CallsBenchOptions& o,
               int objects, std::vector<CallCost>* out) {
  CallCost cost;
  cost.rpc = name;
  cost.objects = objects;
  Resp warm;
  RETURN_IF_ERROR(CriCall(stub, method, request(0), &warm, name));
  const double cpu0 = CpuMs(o.daemon_pid);
  for (int i = 0; i < o.calls; ++i) {
    Req req = request(i);
    Resp resp;
    auto t0 = Clock::now();
    RETURN_IF_ERROR(CriCall(stub, method, req, &resp, name));
    cost.ms.push_back(ElapsedMs(t0));
    if (i + 1 == o.calls) {
      cost.items = count(resp);
      cost.bytes = resp.ByteSizeLong();
    }
  }
  cost.daemon_cpu_ms = CpuMs(o.daemon_pid) - cpu0;
  out->push_back(std::move(cost));
  return OkStatus();
}

Status MeasureCalls(Driver& d, const CallsBenchOptions& o, int n,
                    const std::vector<std::string>* pod_ids,
                    const std::vector<std::string>* container_ids, std::vector<CallCost>* out);

// Grows to `n` pods and `n` containers, then times each status and list call.
Status MeasureWithObjects(Driver& d, const CallsBenchOptions& o, int n, std::vector<Pod>* ready,
                          std::vector<std::string>* pod_ids,
                          std::vector<std::string>* container_ids, std::vector<CallCost>* out) {
  while (static_cast<int>(pod_ids->size()) < n) {
    const int i = static_cast<int>(pod_ids->size());
    ASSIGN_OR_RETURN(Pod p, d.RunPod(StrCat(o.name_prefix, "-", ::getpid(), "-", i)));
    pod_ids->push_back(p.id);
    if (i < kReadyPods) {
      ready->push_back(std::move(p));
    } else {
      RETURN_IF_ERROR(d.StopPod(p.id));
    }
  }
  while (static_cast<int>(container_ids->size()) < n) {
    const int i = static_cast<int>(container_ids->size());
    const Pod& p = (*ready)[static_cast<size_t>(i) % ready->size()];
    ASSIGN_OR_RETURN(std::string id, d.CreateContainer(p, StrCat("t", i), {"true"}));
    RETURN_IF_ERROR(d.StartContainer(id));
    container_ids->push_back(id);
  }
  return MeasureCalls(d, o, n, pod_ids, container_ids, out);
}

// Times each status and list call; the status calls go round `pod_ids` and
// `container_ids`, which must not be empty.
Status MeasureCalls(Driver& d, const CallsBenchOptions& o, int n,
                    const std::vector<std::string>* pod_ids,
                    const std::vector<std::string>* container_ids, std::vector<CallCost>* out) {
  Stub& stub = d.stub();
  RETURN_IF_ERROR((Measure<Stub, cri::ListPodSandboxRequest, cri::ListPodSandboxResponse>(
      stub, &Stub::ListPodSandbox, "ListPodSandbox",
      [](int) { return cri::ListPodSandboxRequest(); },
      [](const cri::ListPodSandboxResponse& r) { return r.items_size(); }, o, n, out)));
  RETURN_IF_ERROR((Measure<Stub, cri::ListContainersRequest, cri::ListContainersResponse>(
      stub, &Stub::ListContainers, "ListContainers",
      [](int) { return cri::ListContainersRequest(); },
      [](const cri::ListContainersResponse& r) { return r.containers_size(); }, o, n, out)));
  RETURN_IF_ERROR((Measure<Stub, cri::ContainerStatusRequest, cri::ContainerStatusResponse>(
      stub, &Stub::ContainerStatus, "ContainerStatus",
      [&](int i) {
        cri::ContainerStatusRequest r;
        r.set_container_id((*container_ids)[static_cast<size_t>(i) % container_ids->size()]);
        return r;
      },
      [](const cri::ContainerStatusResponse&) { return 1; }, o, n, out)));
  RETURN_IF_ERROR((Measure<Stub, cri::PodSandboxStatusRequest, cri::PodSandboxStatusResponse>(
      stub, &Stub::PodSandboxStatus, "PodSandboxStatus",
      [&](int i) {
        cri::PodSandboxStatusRequest r;
        r.set_pod_sandbox_id((*pod_ids)[static_cast<size_t>(i) % pod_ids->size()]);
        return r;
      },
      [](const cri::PodSandboxStatusResponse&) { return 1; }, o, n, out)));
  auto images = cri::ImageService::NewStub(
      grpc::CreateChannel(o.endpoint, grpc::InsecureChannelCredentials()));
  return Measure<cri::ImageService::Stub, cri::ListImagesRequest, cri::ListImagesResponse>(
      *images, &cri::ImageService::Stub::ListImages, "ListImages",
      [](int) { return cri::ListImagesRequest(); },
      [](const cri::ListImagesResponse& r) { return r.images_size(); }, o, n, out);
}

}  // namespace

// The status and list calls against the pods and containers the endpoint
// already holds.
StatusOr<std::vector<CallCost>> MeasureExisting(Driver& d, const CallsBenchOptions& o) {
  std::vector<std::string> pod_ids, container_ids;
  cri::ListPodSandboxResponse pods;
  RETURN_IF_ERROR(CriCall(d.stub(), &Stub::ListPodSandbox, cri::ListPodSandboxRequest(), &pods,
                          "ListPodSandbox"));
  for (const auto& p : pods.items()) pod_ids.push_back(p.id());
  cri::ListContainersResponse containers;
  RETURN_IF_ERROR(CriCall(d.stub(), &Stub::ListContainers, cri::ListContainersRequest(),
                          &containers, "ListContainers"));
  for (const auto& c : containers.containers()) container_ids.push_back(c.id());
  if (pod_ids.empty() || container_ids.empty()) {
    return FailedPreconditionError("the endpoint holds no pod or no container to ask about");
  }
  std::vector<CallCost> out;
  RETURN_IF_ERROR(
      MeasureCalls(d, o, static_cast<int>(container_ids.size()), &pod_ids, &container_ids, &out));
  return out;
}

StatusOr<std::vector<CallCost>> RunCallsBench(const CallsBenchOptions& o) {
  Driver d(o);
  if (o.existing_objects) return MeasureExisting(d, o);
  std::vector<CallCost> out;
  Status s = Lifecycle(d, o, &out);
  if (!s.ok()) {
    (void)d.RemoveAll();
    return s;
  }
  std::vector<Pod> ready;
  std::vector<std::string> pod_ids, container_ids;
  std::vector<int> counts = o.objects;
  std::sort(counts.begin(), counts.end());
  for (int n : counts) {
    s = MeasureWithObjects(d, o, n, &ready, &pod_ids, &container_ids, &out);
    if (!s.ok()) break;
  }
  Status cleanup = o.keep_objects ? OkStatus() : d.RemoveAll();
  if (!s.ok()) return s;
  RETURN_IF_ERROR(cleanup);
  return out;
}

}  // namespace berth::bench
