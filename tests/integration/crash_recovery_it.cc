// Crash recovery under load: berthd is SIGKILLed at random moments while clients churn
// through whole pod and container lifecycles (CNI bridge network, pods with and without a
// shared PID namespace). After every restart each pod and container berthd lists must have a
// coherent state (a RUNNING container has a live process and answers exec), and once the
// pods are removed nothing may be left: no mount, process, IP lease, veth, cgroup, bundle,
// writable layer or runtime state, including whatever the interrupted calls had half made.
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace berth::testing {
namespace {

class CrashRecoveryIT : public RuntimeServiceIT {
 protected:
  // One client's lifecycle loop; returns at the first failed call (berthd was killed).
  void Lifecycle(cri::RuntimeService::Stub& stub, const std::string& name, bool shared_pid) {
    auto deadline = [](grpc::ClientContext& ctx) {
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    };
    cri::PodSandboxConfig pod = PodConfig(name, cri::POD, shared_pid ? cri::POD : cri::CONTAINER);
    pod.mutable_linux()->set_cgroup_parent("/" + cgroup_parent_);
    std::string pod_id, ctr_id;
    {
      grpc::ClientContext ctx;
      deadline(ctx);
      cri::RunPodSandboxRequest req;
      *req.mutable_config() = pod;
      cri::RunPodSandboxResponse resp;
      if (!stub.RunPodSandbox(&ctx, req, &resp).ok()) return;
      pod_id = resp.pod_sandbox_id();
    }
    {
      grpc::ClientContext ctx;
      deadline(ctx);
      cri::CreateContainerRequest req;
      req.set_pod_sandbox_id(pod_id);
      *req.mutable_config() = CtrConfig("churn", {"sleep", "120"});
      *req.mutable_sandbox_config() = pod;
      cri::CreateContainerResponse resp;
      if (!stub.CreateContainer(&ctx, req, &resp).ok()) return;
      ctr_id = resp.container_id();
      std::lock_guard lock(mu_);
      seen_ctrs_.insert(ctr_id);
    }
    auto call = [&](auto method, const auto& req, auto resp) {
      grpc::ClientContext ctx;
      deadline(ctx);
      return (stub.*method)(&ctx, req, &resp).ok();
    };
    cri::StartContainerRequest start;
    start.set_container_id(ctr_id);
    if (!call(&cri::RuntimeService::Stub::StartContainer, start, cri::StartContainerResponse()))
      return;
    cri::ExecSyncRequest exec;
    exec.set_container_id(ctr_id);
    exec.add_cmd("true");
    exec.set_timeout(10);
    if (!call(&cri::RuntimeService::Stub::ExecSync, exec, cri::ExecSyncResponse())) return;
    cri::StopContainerRequest stop;
    stop.set_container_id(ctr_id);
    if (!call(&cri::RuntimeService::Stub::StopContainer, stop, cri::StopContainerResponse()))
      return;
    cri::RemoveContainerRequest rm;
    rm.set_container_id(ctr_id);
    if (!call(&cri::RuntimeService::Stub::RemoveContainer, rm, cri::RemoveContainerResponse()))
      return;
    cri::StopPodSandboxRequest stopp;
    stopp.set_pod_sandbox_id(pod_id);
    if (!call(&cri::RuntimeService::Stub::StopPodSandbox, stopp, cri::StopPodSandboxResponse()))
      return;
    cri::RemovePodSandboxRequest rmp;
    rmp.set_pod_sandbox_id(pod_id);
    if (!call(&cri::RuntimeService::Stub::RemovePodSandbox, rmp, cri::RemovePodSandboxResponse()))
      return;
    completed_++;
  }

  // Every pod and container berthd reports is in a state that matches the host.
  void ExpectCoherentState(int round) {
    SCOPED_TRACE(StrCat("after restart ", round));
    for (const cri::PodSandbox& p : ListPods(cri::PodSandboxFilter())) {
      pod_ids_.insert(p.id());
      std::string ns = PinnedNamespaceId(berthd_->state() / "sandboxes" / p.id() / "pidns");
      if (!ns.empty()) tracked_pidns_.insert(ns);
      std::optional<cri::PodSandboxStatus> st = PodStatusOf(p.id());
      ASSERT_TRUE(st.has_value());
      if (st->state() == cri::SANDBOX_READY) {
        EXPECT_TRUE(st->network().ip().starts_with(net_.prefix)) << "ready pod without an IP";
      }
    }
    bool exec_checked = false;
    for (const cri::Container& c : ListCtrs()) {
      ctr_ids_.insert(c.id());
      std::optional<cri::ContainerStatus> st = CtrStatusOf(c.id());
      ASSERT_TRUE(st.has_value());
      EXPECT_NE(st->state(), cri::CONTAINER_UNKNOWN) << c.id();
      if (st->state() == cri::CONTAINER_RUNNING) {
        int pid = CtrPid(c.id());
        EXPECT_GT(pid, 0) << "running container " << c.id() << " has no pid";
        EXPECT_TRUE(pid > 0 && ::kill(pid, 0) == 0 && !IsZombie(pid))
            << "container " << c.id() << " is listed RUNNING but its process " << pid << " is gone";
        if (pid > 0) {
          std::string ns = PidNamespaceOf(pid);
          if (!ns.empty() && ns != PidNamespaceOf(::getpid())) tracked_pidns_.insert(ns);
        }
        if (!exec_checked) {
          EXPECT_EQ(ExecOut(c.id(), {"echo", "still here"}), "still here\n");
          exec_checked = true;
        }
      } else if (st->state() == cri::CONTAINER_EXITED) {
        EXPECT_NE(st->finished_at(), 0) << c.id();
      }
    }
  }

  BridgeNetwork net_;
  std::string cgroup_parent_;
  std::mutex mu_;
  std::set<std::string> seen_ctrs_;
  std::atomic<int> completed_{0};
};

TEST_F(CrashRecoveryIT, SigkillInsideAChurnLoopLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(net_ = SetUpBridgeNetwork("bridge"));
  cgroup_parent_ = StrCat("berth-churn-", RandomHex(4));
  RemoveCgroupsAfterTest(cgroup_parent_);

  constexpr int kRounds = 6;
  constexpr int kClients = 2;
  // The kill moments come from this seed: BERTH_CHURN_SEED=<seed> replays a run's schedule
  // (the clients' progress between the kills still depends on timing).
  const char* seed_env = std::getenv("BERTH_CHURN_SEED");
  const uint32_t seed = seed_env != nullptr && *seed_env != '\0'
                            ? static_cast<uint32_t>(std::strtoul(seed_env, nullptr, 10))
                            : std::random_device{}();
  std::cerr << "churn seed " << seed << " (replay with BERTH_CHURN_SEED=" << seed << ")\n";
  RecordProperty("churn_seed", std::to_string(seed));
  std::mt19937 rng(seed);
  for (int round = 1; round <= kRounds; ++round) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int w = 0; w < kClients; ++w) {
      std::shared_ptr<cri::RuntimeService::Stub> stub =
          cri::RuntimeService::NewStub(berthd_->channel());
      clients.emplace_back([this, &stop, stub, w, round] {
        for (int i = 0; !stop; ++i) {
          Lifecycle(*stub, StrCat("churn-", round, "-", w, "-", i), (i + w) % 2 == 0);
        }
      });
    }
    // Somewhere inside a lifecycle: a pod start takes ~50 ms, a whole lifecycle ~300 ms.
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 600));
    berthd_->Kill();
    stop = true;
    for (auto& t : clients) t.join();
    IT_ASSERT_OK(berthd_->Restart(/*kill=*/true));
    ASSERT_NO_FATAL_FAILURE(ExpectCoherentState(round));
  }
  std::cerr << "lifecycles completed between the kills: " << completed_.load() << "\n";
  // After all the crashes a whole lifecycle still works.
  const int before = completed_.load();
  Lifecycle(berthd_->runtime(), "after-churn", /*shared_pid=*/true);
  EXPECT_EQ(completed_.load(), before + 1) << "a lifecycle failed after the crashes";

  for (const cri::PodSandbox& p : ListPods(cri::PodSandboxFilter())) {
    IT_EXPECT_GRPC_OK(RemovePod(p.id()));
  }
  EXPECT_THAT(PodIds(), IsEmpty());
  EXPECT_THAT(CtrIds(), IsEmpty());
  {
    std::lock_guard lock(mu_);
    ctr_ids_.insert(seen_ctrs_.begin(), seen_ctrs_.end());
  }
  EXPECT_THAT(LeasedAddresses(net_), IsEmpty()) << "IP addresses leaked";
  for (int i = 0; i < 40 && !DirEntries(fs::path("/sys/class/net") / net_.bridge / "brif").empty();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(DirEntries(fs::path("/sys/class/net") / net_.bridge / "brif"), IsEmpty())
      << "veths left on " << net_.bridge;
  std::vector<std::string> monitors;
  for (int pid : AllPids()) {
    std::string cmdline = CmdlineOf(pid);
    if (pid != berthd_->pid() && cmdline.find(berthd_->dir().string()) != std::string::npos) {
      monitors.push_back(StrCat(pid, " ", cmdline));
    }
  }
  EXPECT_THAT(monitors, IsEmpty()) << "monitor or runtime processes left";
  ExpectNoLeaks("after removing every pod");
  EXPECT_THAT(CgroupsBelow(cgroup_parent_), IsEmpty()) << "container cgroups left";
}

}  // namespace
}  // namespace berth::testing
