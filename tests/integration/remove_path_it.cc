// Integration tests of the paths the kubelet calls most and that run no OCI runtime: the
// runtime's state of a container is deleted by its berth-monitor when the container exits
// (before the exit file appears), so RemoveContainer only unmounts and deletes records; and
// ContainerStatus / List* answer from berthd's memory, with exits arriving through the bundle
// watcher, also after a restart and for exits that happened while berthd was down.
//
// Every test drives a real berthd over its socket with runc and berth-monitor, and ends with
// the fixture's leak checks (nothing in the runc state dir, no cgroup, process or mount).
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

namespace berth::testing {
namespace {

class RemovePathIT : public RuntimeServiceIT {
 protected:
  fs::path RuncState(const std::string& id) const {
    return berthd_->state() / "runtimes" / "runc" / id;
  }

  // The container's cgroups (a pod without a cgroup parent puts them at the top of every
  // hierarchy, as the fixture's leak check expects).
  static std::vector<std::string> CgroupsOf(const std::string& id) {
    std::vector<std::string> out;
    for (const std::string& ctrl : DirEntries("/sys/fs/cgroup")) {
      const fs::path cg = fs::path("/sys/fs/cgroup") / ctrl / id;
      if (Exists(cg)) out.push_back(cg.string());
    }
    return out;
  }

  std::string StartedCtr(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                         const std::string& name, std::vector<std::string> cmd) {
    std::string id;
    EXPECT_TRUE(CreateCtr(pod_id, pod, CtrConfig(name, std::move(cmd)), &id).ok());
    ctr_ids_.insert(id);
    EXPECT_TRUE(StartCtr(id).ok());
    return id;
  }
};

TEST_F(RemovePathIT, ExitedContainersKeepNoRuntimeStateAndRemoveNeedsNoRuntime) {
  cri::PodSandboxConfig pod = PodConfig("rmpath", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  // Exits on its own.
  const std::string done = StartedCtr(pod_id, pod, "done", {"sh", "-c", "exit 3"});
  cri::ContainerStatus st = WaitForState(done, cri::CONTAINER_EXITED, std::chrono::seconds(10));
  EXPECT_EQ(st.exit_code(), 3);
  EXPECT_EQ(st.reason(), "Error");
  // EXITED is reported only once the monitor has had runc delete the container.
  EXPECT_FALSE(Exists(RuncState(done))) << "runc state of an exited container kept";
  EXPECT_THAT(CgroupsOf(done), IsEmpty()) << "cgroups of an exited container kept";
  const std::string running_cg = StartedCtr(pod_id, pod, "cg", {"sleep", "60"});
  EXPECT_THAT(CgroupsOf(running_cg), ::testing::Not(IsEmpty()))
      << "CgroupsOf finds no cgroup of a container";
  IT_ASSERT_GRPC_OK(RemoveCtr(running_cg));

  // Stopped.
  const std::string stopped = StartedCtr(pod_id, pod, "stopped", {"sleep", "60"});
  ASSERT_TRUE(Exists(RuncState(stopped))) << "runc keeps its state in " << RuncState(stopped);
  IT_ASSERT_GRPC_OK(StopCtr(stopped, 0));
  EXPECT_EQ(CtrStatusOf(stopped)->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(CtrStatusOf(stopped)->exit_code(), 137);
  EXPECT_FALSE(Exists(RuncState(stopped))) << "runc state kept after StopContainer returned";

  // Created, never started, then stopped.
  std::string created;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("created", {"sleep", "60"}), &created));
  ctr_ids_.insert(created);
  ASSERT_TRUE(Exists(RuncState(created)));
  IT_ASSERT_GRPC_OK(StopCtr(created, 0));
  EXPECT_EQ(CtrStatusOf(created)->state(), cri::CONTAINER_EXITED);
  EXPECT_FALSE(Exists(RuncState(created)));

  // Nothing is left for RemoveContainer but mounts, directories and records (that it runs
  // no runtime is shown by FailureInjectionIT.RemoveOfAnExitedContainerRunsNoRuntime).
  for (const std::string& id : {done, stopped, created}) {
    IT_EXPECT_GRPC_OK(RemoveCtr(id));
    IT_EXPECT_GRPC_OK(RemoveCtr(id));  // idempotent
  }
  EXPECT_THAT(CtrIds(), IsEmpty());
  EXPECT_THAT(DirEntries(berthd_->state() / "runtimes" / "runc"), IsEmpty());

  // A running container is still killed and cleaned up by RemoveContainer.
  const std::string running = StartedCtr(pod_id, pod, "running", {"sleep", "60"});
  IT_EXPECT_GRPC_OK(RemoveCtr(running));
  EXPECT_FALSE(Exists(RuncState(running)));
  EXPECT_THAT(CgroupsOf(running), IsEmpty());

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

TEST_F(RemovePathIT, StatusAndListComeFromMemoryAndSeeExitsAfterARestart) {
  cri::PodSandboxConfig pod = PodConfig("restart", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  const std::string a = StartedCtr(pod_id, pod, "a", {"sleep", "60"});
  const std::string b = StartedCtr(pod_id, pod, "b", {"sleep", "60"});
  const int pid_a = CtrPid(a);
  ASSERT_GT(pid_a, 0);

  IT_ASSERT_OK(berthd_->Restart());
  EXPECT_EQ(CtrStatusOf(a)->state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(CtrStatusOf(b)->state(), cri::CONTAINER_RUNNING);
  EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_RUNNING)), UnorderedElementsAre(a, b));
  std::optional<cri::PodSandboxStatus> ps = PodStatusOf(pod_id);
  ASSERT_TRUE(ps.has_value());
  EXPECT_EQ(ps->state(), cri::SANDBOX_READY);

  // An exit nobody asked for (no StopContainer) reaches the restarted berthd by itself: the
  // status and the lists change without any call reading the exit file.
  ASSERT_EQ(::kill(pid_a, SIGKILL), 0);
  cri::ContainerStatus st = WaitForState(a, cri::CONTAINER_EXITED, std::chrono::seconds(10));
  EXPECT_EQ(st.exit_code(), 137);
  EXPECT_FALSE(Exists(RuncState(a)));
  EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_EXITED)), UnorderedElementsAre(a));
  EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_RUNNING)), UnorderedElementsAre(b));
  ps = PodStatusOf(pod_id);
  ASSERT_TRUE(ps.has_value());
  {
    cri::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod_id);
    cri::PodSandboxStatusResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    IT_ASSERT_GRPC_OK(berthd_->runtime().PodSandboxStatus(&ctx, req, &resp));
    ASSERT_EQ(resp.containers_statuses_size(), 2);
    for (const auto& cs : resp.containers_statuses()) {
      EXPECT_EQ(cs.state(), cs.id() == a ? cri::CONTAINER_EXITED : cri::CONTAINER_RUNNING)
          << cs.id();
    }
  }

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

TEST_F(RemovePathIT, ExitsWhileBerthdIsDownAreRecoveredWithoutRuntimeState) {
  cri::PodSandboxConfig pod = PodConfig("downtime", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  const std::string quits = StartedCtr(pod_id, pod, "quits", {"sh", "-c", "sleep 1; exit 5"});
  const std::string killed = StartedCtr(pod_id, pod, "killed", {"sleep", "60"});
  const std::string stays = StartedCtr(pod_id, pod, "stays", {"sleep", "60"});
  const int pid_killed = CtrPid(killed);
  ASSERT_GT(pid_killed, 0);

  berthd_->Kill();
  ASSERT_EQ(::kill(pid_killed, SIGKILL), 0);
  // Both exits happen while berthd is down; their monitors delete runc's state and write the
  // exit files on their own.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while ((Exists(RuncState(quits)) || Exists(RuncState(killed))) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(Exists(RuncState(quits)));
  EXPECT_FALSE(Exists(RuncState(killed)));
  EXPECT_TRUE(Exists(RuncState(stays)));
  IT_ASSERT_OK(berthd_->Start(DaemonArgs()));

  std::optional<cri::ContainerStatus> st = CtrStatusOf(quits);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st->exit_code(), 5);
  st = CtrStatusOf(killed);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st->exit_code(), 137);
  EXPECT_EQ(CtrStatusOf(stays)->state(), cri::CONTAINER_RUNNING);
  EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_EXITED)), UnorderedElementsAre(quits, killed));

  IT_EXPECT_GRPC_OK(RemoveCtr(quits));
  IT_EXPECT_GRPC_OK(RemoveCtr(killed));
  EXPECT_THAT(DirEntries(berthd_->state() / "runtimes" / "runc"), UnorderedElementsAre(stays));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

}  // namespace
}  // namespace berth::testing
