#include "bench/exec_bench.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "bench/cri_call.h"
#include "bench/lifecycle_bench.h"
#include "bench/proc_cpu.h"
#include "common/fs.h"
#include "runtime/v1/api.grpc.pb.h"

namespace berth::bench {

namespace {

namespace cri = ::runtime::v1;
namespace fs = std::filesystem;
using Stub = cri::RuntimeService::Stub;

Status ExecEcho(Stub& stub, const std::string& container_id) {
  cri::ExecSyncRequest req;
  req.set_container_id(container_id);
  req.add_cmd("echo");
  req.add_cmd("hi");
  req.set_timeout(30);
  cri::ExecSyncResponse resp;
  RETURN_IF_ERROR(CriCall(stub, &Stub::ExecSync, req, &resp, "ExecSync"));
  if (resp.exit_code() != 0 || resp.stdout() != "hi\n") {
    return InternalError(StrCat("ExecSync `echo hi`: exit code ", resp.exit_code(), ", stdout \"",
                                resp.stdout(), "\", stderr \"", resp.stderr(), "\""));
  }
  return OkStatus();
}

}  // namespace

StatusOr<ExecBenchResult> RunExecBench(const ExecBenchOptions& o) {
  if (o.daemon_pid <= 0) return InvalidArgumentError("exec bench needs the daemon's pid");
  LifecycleBenchOptions lc;
  lc.endpoint = o.endpoint;
  lc.image = o.image;
  lc.host_network = o.host_network;
  lc.name_prefix = o.name_prefix;
  ASSIGN_OR_RETURN(std::vector<std::string> pods, StartRunningPods(lc, 1));
  auto stub = cri::RuntimeService::NewStub(
      grpc::CreateChannel(o.endpoint, grpc::InsecureChannelCredentials()));
  auto run = [&]() -> StatusOr<ExecBenchResult> {
    cri::ListContainersRequest list;
    list.mutable_filter()->set_pod_sandbox_id(pods[0]);
    cri::ListContainersResponse containers;
    RETURN_IF_ERROR(CriCall(*stub, &Stub::ListContainers, list, &containers, "ListContainers"));
    if (containers.containers_size() != 1) return InternalError("the bench pod has no container");
    const std::string id = containers.containers(0).id();
    for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(ExecEcho(*stub, id));
    const std::vector<int> helpers = FindHelpers(o.helper_name, {pods[0], id});
    auto helpers_cpu = [&] {
      double sum = 0;
      for (int p : helpers) sum += CpuWithChildrenMs(p);
      return sum;
    };
    ExecBenchResult r;
    const double daemon0 = CpuWithChildrenMs(o.daemon_pid), helpers0 = helpers_cpu();
    for (int i = 0; i < o.iterations; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      RETURN_IF_ERROR(ExecEcho(*stub, id));
      r.ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    r.daemon_cpu_ms = CpuWithChildrenMs(o.daemon_pid) - daemon0;
    r.helpers_cpu_ms = helpers_cpu() - helpers0;
    return r;
  };
  auto result = run();
  Status removed = RemovePodsById(o.endpoint, pods);
  if (!result.ok()) return result.status();
  RETURN_IF_ERROR(removed);
  return result;
}

}  // namespace berth::bench
