// Failure injection: every way RunPodSandbox, CreateContainer and StartContainer can fail
// half way must leave nothing behind, answer with an error a person can act on, and leave
// berthd able to run the next pod.
//
// Two stand-ins fail on command. `flaky-runc` is an OCI runtime (runtime handler "flaky")
// that runs the host's runc but fails a subcommand when the file faults/runtime-<verb>
// exists, or runs it and then reports failure when faults/runtime-<verb>-after exists (the
// runtime did the work, then died). `flaky-bridge` is a CNI plugin that does the same with
// faults/cni-<COMMAND>[-after] around Debian's bridge plugin.
//
// Pods get a cgroup parent of their own, so that a leaked container cgroup shows up as a
// directory under it.
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

namespace berth::testing {
namespace {

class FailureInjectionIT : public RuntimeServiceIT {
 protected:
  void BeforeDaemonStart() override {
    faults_ = berthd_->dir() / "faults";
    IT_ASSERT_OK(MakeDirs(faults_));
    const std::string runc = FindRunc();
    ASSERT_FALSE(runc.empty()) << "runc not found";
    runtime_wrapper_ = berthd_->dir() / "flaky-runc";
    IT_ASSERT_OK(WriteFileAtomic(runtime_wrapper_,
                                 StrCat(R"(#!/bin/sh
# The runtime subcommand is the first argument that is not a global flag.
verb=
skip=
for a in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case "$a" in
    --root|--log|--log-format|--criu) skip=1 ;;
    -*) ;;
    *) verb=$a; break ;;
  esac
done
F=)",
                                        faults_.string(), R"(
if [ -e "$F/runtime-$verb" ]; then
  echo "injected failure of runtime $verb" >&2
  exit 1
fi
if [ -e "$F/runtime-$verb-after" ]; then
  )",
                                        runc, R"( "$@"
  echo "injected failure after runtime $verb" >&2
  exit 1
fi
exec )",
                                        runc, R"( "$@"
)"),
                                 0755));
    const fs::path cni_bin = berthd_->dir() / "cni-bin";
    IT_ASSERT_OK(MakeDirs(cni_bin));
    IT_ASSERT_OK(WriteFileAtomic(cni_bin / "flaky-bridge",
                                 StrCat(R"(#!/bin/sh
F=)",
                                        faults_.string(), R"(
B=)",
                                        kCniBinDir, R"(/bridge
if [ -e "$F/cni-$CNI_COMMAND" ]; then
  printf '{"cniVersion":"1.0.0","code":11,"msg":"injected failure of CNI %s"}\n' "$CNI_COMMAND"
  exit 1
fi
if [ -e "$F/cni-$CNI_COMMAND-after" ]; then
  "$B" >/dev/null
  printf '{"cniVersion":"1.0.0","code":11,"msg":"injected failure after CNI %s"}\n' "$CNI_COMMAND"
  exit 1
fi
exec "$B"
)"),
                                 0755));
    cni_bin_dirs_ = StrCat(cni_bin.string(), ":", kCniBinDir);
  }

  std::vector<std::string> DaemonArgs() override {
    return {"--cni-bin-dir", cni_bin_dirs_, "--runtime-handler",
            StrCat("flaky=", runtime_wrapper_.string())};
  }

  static std::string FindRunc() {
    for (const char* p : {"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"}) {
      if (::access(p, X_OK) == 0) return p;
    }
    return "";
  }

  void Fault(const std::string& name) { IT_ASSERT_OK(WriteFileAtomic(faults_ / name, "")); }
  void ClearFaults() {
    for (const std::string& f : DirEntries(faults_)) fs::remove(faults_ / f);
  }

  // A pod on the flaky runtime with a cgroup parent of its own (removed after the test).
  cri::PodSandboxConfig FlakyPod(const std::string& name, cri::NamespaceMode network,
                                 cri::NamespaceMode pid) {
    cri::PodSandboxConfig pod = PodConfig(name, network, pid);
    const std::string parent = StrCat("berth-fi-", RandomHex(4));
    pod.mutable_linux()->set_cgroup_parent("/" + parent);
    cgroup_parents_.push_back(parent);
    RemoveCgroupsAfterTest(parent);
    return pod;
  }

  // Container cgroups under the pods' cgroup parents, in every hierarchy.
  std::vector<std::string> ContainerCgroups() {
    std::vector<std::string> out;
    for (const std::string& parent : cgroup_parents_) {
      for (std::string& cg : CgroupsBelow(parent)) out.push_back(std::move(cg));
    }
    return out;
  }

  // Nothing of any container is left while the pod itself stays: no container listed, no
  // bundle, writable layer, rootfs mount, runtime state, cgroup, monitor or runtime process.
  void ExpectNoContainerLeft(const std::string& when) {
    SCOPED_TRACE("container leak check " + when);
    EXPECT_THAT(CtrIds(), IsEmpty()) << "containers listed";
    EXPECT_THAT(DirEntries(berthd_->state() / "containers"), IsEmpty()) << "bundles left";
    EXPECT_THAT(DirEntries(berthd_->root() / "containers"), IsEmpty()) << "writable layers left";
    EXPECT_THAT(MountsUnder(berthd_->state() / "containers"), IsEmpty()) << "rootfs mounted";
    EXPECT_THAT(MountsUnder(berthd_->root() / "containers"), IsEmpty()) << "rootfs mounted";
    EXPECT_THAT(DirEntries(berthd_->state() / "runtimes" / "flaky"), IsEmpty())
        << "runtime state left";
    std::vector<std::string> cgroups;
    std::vector<std::string> procs;
    auto deadline = Clock::now() + std::chrono::seconds(3);
    do {
      cgroups = ContainerCgroups();
      procs.clear();
      for (int pid : AllPids()) {
        if (pid == ::getpid() || pid == berthd_->pid()) continue;
        std::string cmdline = CmdlineOf(pid);
        if (cmdline.starts_with("berth-pause ")) continue;  // the pod's own, while it exists
        if (cmdline.find(berthd_->dir().string()) != std::string::npos) {
          procs.push_back(StrCat(pid, " ", cmdline));
        }
      }
      if (cgroups.empty() && procs.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (Clock::now() < deadline);
    EXPECT_THAT(cgroups, IsEmpty()) << "container cgroups left (a process may live in them)";
    EXPECT_THAT(procs, IsEmpty()) << "monitor or runtime processes left";
  }

  // A container of `pod` runs and answers an exec: berthd still works.
  void ExpectContainerRuns(const std::string& pod_id, const cri::PodSandboxConfig& pod,
                           const std::string& name) {
    std::string id;
    IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig(name, {"sleep", "60"}), &id));
    IT_ASSERT_GRPC_OK(StartCtr(id));
    EXPECT_EQ(ExecOut(id, {"echo", "alive"}), "alive\n");
    IT_EXPECT_GRPC_OK(RemoveCtr(id));
  }

  // A pod of the flaky handler, running: where most tests start.
  struct FlakyPodRun {
    cri::PodSandboxConfig config;
    std::string id;
  };
  void RunFlakyPod(const std::string& name, cri::NamespaceMode network, cri::NamespaceMode pid,
                   FlakyPodRun* pod) {
    pod->config = FlakyPod(name, network, pid);
    IT_ASSERT_GRPC_OK(RunPod(pod->config, &pod->id, "flaky"));
  }

  // A container of `pod` running `cmd`, removed by the fixture if the test stops early.
  void StartFlakyContainer(const FlakyPodRun& pod, const std::string& name,
                           const std::vector<std::string>& cmd, std::string* id) {
    IT_ASSERT_GRPC_OK(CreateCtr(pod.id, pod.config, CtrConfig(name, cmd), id));
    ctr_ids_.insert(*id);
    IT_ASSERT_GRPC_OK(StartCtr(*id));
  }

  // Where every test ends: the pod removed, and nothing of it or its containers left.
  void RemovePodLeavingNothing(const FlakyPodRun& pod,
                               const std::string& when = "after removing the pod") {
    IT_ASSERT_GRPC_OK(RemovePod(pod.id));
    ExpectNoLeaks(when);
  }

  fs::path faults_;
  fs::path runtime_wrapper_;
  std::string cni_bin_dirs_;
  std::vector<std::string> cgroup_parents_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(FailureInjectionIT, StatusListsWorkingHandlersWithFeatures) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  cri::StatusRequest req;
  req.set_verbose(true);
  cri::StatusResponse resp;
  IT_ASSERT_GRPC_OK(berthd_->runtime().Status(&ctx, req, &resp));
  std::map<std::string, cri::RuntimeHandler> handlers;
  for (const auto& h : resp.runtime_handlers()) handlers[h.name()] = h;
  ASSERT_TRUE(handlers.contains("runc"));
  ASSERT_TRUE(handlers.contains("flaky"));
  ASSERT_TRUE(handlers.contains("")) << "no default handler listed";
  EXPECT_TRUE(handlers["flaky"].features().recursive_read_only_mounts());
  // A wrapper of runc: what runc can do with user namespaces, it can.
  EXPECT_EQ(handlers["flaky"].features().user_namespaces(),
            handlers["runc"].features().user_namespaces());
  // crun works only on pure cgroup v2 hosts; the default follows.
  const bool v2 = Exists("/sys/fs/cgroup/cgroup.controllers");
  EXPECT_EQ(handlers.contains("crun"), v2);
  nlohmann::json info = nlohmann::json::parse(resp.info().at("runtimeHandlers"));
  if (!v2) {
    ASSERT_TRUE(info.contains("crun"));
    EXPECT_FALSE(info["crun"]["works"].get<bool>());
    EXPECT_THAT(info["crun"]["error"].get<std::string>(), HasSubstr("cgroup"));
  }
  nlohmann::json config = nlohmann::json::parse(resp.info().at("config"));
  EXPECT_EQ(config["defaultRuntime"], v2 ? "crun" : "runc");

  // A pod asking for crun where it cannot run is refused up front.
  if (!v2) {
    std::string id;
    grpc::Status s = RunPod(PodConfig("on-crun", cri::NODE, cri::CONTAINER), &id, "crun");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("cannot run containers on this host"));
    EXPECT_THAT(PodIds(), IsEmpty());
  }
}

TEST_F(FailureInjectionIT, RuntimeCreateFailuresLeaveNothing) {
  FlakyPodRun pod;
  ASSERT_NO_FATAL_FAILURE(RunFlakyPod("create-faults", cri::NODE, cri::POD, &pod));

  for (const std::string fault : {"runtime-create", "runtime-create-after"}) {
    SCOPED_TRACE(fault);
    Fault(fault);
    std::string id;
    grpc::Status s = CreateCtr(pod.id, pod.config, CtrConfig("doomed", {"sleep", "60"}), &id);
    EXPECT_FALSE(s.ok()) << fault << " did not fail CreateContainer";
    EXPECT_THAT(s.error_message(), HasSubstr("injected failure")) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("doomed")) << "error does not name the container";
    ExpectNoContainerLeft("after " + fault);
    ClearFaults();
  }
  // The name is free again, and the pod works.
  ASSERT_NO_FATAL_FAILURE(ExpectContainerRuns(pod.id, pod.config, "doomed"));
  ExpectNoContainerLeft("after the working container was removed");
  RemovePodLeavingNothing(pod);
}

TEST_F(FailureInjectionIT, RuntimeStartFailuresLeaveAnExitedContainer) {
  FlakyPodRun pod;
  ASSERT_NO_FATAL_FAILURE(RunFlakyPod("start-faults", cri::NODE, cri::CONTAINER, &pod));

  for (const std::string fault : {"runtime-start", "runtime-start-after"}) {
    SCOPED_TRACE(fault);
    std::string id;
    IT_ASSERT_GRPC_OK(CreateCtr(pod.id, pod.config, CtrConfig("unlucky", {"sleep", "60"}), &id));
    Fault(fault);
    grpc::Status s = StartCtr(id);
    EXPECT_FALSE(s.ok()) << fault << " did not fail StartContainer";
    EXPECT_THAT(s.error_message(), HasSubstr("injected failure")) << Describe(s);
    ClearFaults();
    // Reported as exited with StartError, and its process is gone (whether the runtime
    // had started it or not).
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
    EXPECT_EQ(st->reason(), "StartError");
    EXPECT_EQ(st->exit_code(), 128);
    EXPECT_THAT(st->message(), HasSubstr("injected failure"));
    EXPECT_NE(st->finished_at(), 0);
    std::vector<std::string> cgroups = ContainerCgroups();
    for (const std::string& cg : cgroups) {
      EXPECT_EQ(Trim(ReadOr(fs::path(cg) / "cgroup.procs")), "")
          << "a process still runs in " << cg;
    }
    // Starting it again is refused; removing it cleans up.
    s = StartCtr(id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
    IT_ASSERT_GRPC_OK(RemoveCtr(id));
    ExpectNoContainerLeft("after removing the container " + fault + " failed");
  }
  ASSERT_NO_FATAL_FAILURE(ExpectContainerRuns(pod.id, pod.config, "unlucky"));
  RemovePodLeavingNothing(pod);
}

TEST_F(FailureInjectionIT, FailedRollbackKeepsTheContainerAsUnknownUntilRemoved) {
  FlakyPodRun pod;
  ASSERT_NO_FATAL_FAILURE(RunFlakyPod("rollback", cri::NODE, cri::CONTAINER, &pod));

  // The runtime creates the container but reports failure, and then cannot delete it.
  Fault("runtime-create-after");
  Fault("runtime-delete");
  std::string unused;
  grpc::Status s = CreateCtr(pod.id, pod.config, CtrConfig("stuck", {"sleep", "60"}), &unused);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error_message(), HasSubstr("UNKNOWN")) << Describe(s);
  std::vector<cri::Container> listed = ListCtrs();
  ASSERT_EQ(listed.size(), 1u) << "the half-created container must stay visible";
  const std::string id = listed[0].id();
  ctr_ids_.insert(id);
  EXPECT_EQ(listed[0].state(), cri::CONTAINER_UNKNOWN);
  std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::CONTAINER_UNKNOWN);
  EXPECT_EQ(st->reason(), "CreateError");
  EXPECT_THAT(st->message(), HasSubstr("injected failure of runtime delete"));
  // The name stays reserved while the container exists.
  s = CreateCtr(pod.id, pod.config, CtrConfig("stuck", {"sleep", "60"}), &unused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(s);

  // Removal fails while the runtime still fails, and works once it recovers.
  s = RemoveCtr(id);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error_message(), HasSubstr("injected failure of runtime delete"));
  EXPECT_EQ(CtrIds().size(), 1u);
  ClearFaults();
  IT_ASSERT_GRPC_OK(RemoveCtr(id));
  ExpectNoContainerLeft("after removing the UNKNOWN container");
  RemovePodLeavingNothing(pod);
}

// The monitor deletes the runtime's state when the container exits, so removing an exited
// container runs no runtime: it works while every runtime delete fails.
TEST_F(FailureInjectionIT, RemoveOfAnExitedContainerRunsNoRuntime) {
  FlakyPodRun pod;
  ASSERT_NO_FATAL_FAILURE(RunFlakyPod("rm-no-runtime", cri::NODE, cri::CONTAINER, &pod));
  std::string id;
  ASSERT_NO_FATAL_FAILURE(StartFlakyContainer(pod, "quick", {"sh", "-c", "exit 2"}, &id));
  EXPECT_EQ(WaitForState(id, cri::CONTAINER_EXITED, std::chrono::seconds(10)).exit_code(), 2);
  EXPECT_THAT(DirEntries(berthd_->state() / "runtimes" / "flaky"), IsEmpty())
      << "runtime state of an exited container kept";
  Fault("runtime-delete");
  IT_EXPECT_GRPC_OK(RemoveCtr(id));
  ClearFaults();
  ExpectNoContainerLeft("after removing the exited container");
  RemovePodLeavingNothing(pod);
}

// When the monitor's delete fails at the exit, the container is reported EXITED all the same,
// and RemoveContainer deletes the runtime's state itself (and fails while it cannot).
TEST_F(FailureInjectionIT, FailedDeleteAtExitIsFinishedByRemove) {
  FlakyPodRun pod;
  ASSERT_NO_FATAL_FAILURE(RunFlakyPod("rm-late-delete", cri::NODE, cri::CONTAINER, &pod));
  std::string id;
  ASSERT_NO_FATAL_FAILURE(StartFlakyContainer(pod, "sleeper", {"sleep", "60"}, &id));
  Fault("runtime-delete");
  IT_ASSERT_GRPC_OK(StopCtr(id, 0));
  std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st->exit_code(), 137);
  EXPECT_THAT(DirEntries(berthd_->state() / "runtimes" / "flaky"), UnorderedElementsAre(id))
      << "the failed delete should have left the runtime's state";
  grpc::Status s = RemoveCtr(id);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.error_message(), HasSubstr("injected failure of runtime delete")) << Describe(s);
  ClearFaults();
  IT_EXPECT_GRPC_OK(RemoveCtr(id));
  ExpectNoContainerLeft("after the remove finished the delete");
  RemovePodLeavingNothing(pod);
}

TEST_F(FailureInjectionIT, CniAddFailuresLeaveNothing) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("flaky-bridge"));
  for (const std::string fault : {"cni-ADD", "cni-ADD-after"}) {
    SCOPED_TRACE(fault);
    Fault(fault);
    std::string id;
    grpc::Status s = RunPod(FlakyPod("net-faults", cri::POD, cri::POD), &id, "flaky");
    EXPECT_FALSE(s.ok()) << fault << " did not fail RunPodSandbox";
    EXPECT_THAT(s.error_message(), HasSubstr("injected failure")) << Describe(s);
    EXPECT_THAT(PodIds(), IsEmpty()) << "a failed pod is listed";
    EXPECT_THAT(LeasedAddresses(net), IsEmpty()) << "address leased by the failed ADD kept";
    EXPECT_THAT(DirEntries(fs::path("/sys/class/net") / net.bridge / "brif"), IsEmpty())
        << "veth of the failed pod left on " << net.bridge;
    ExpectNoLeaks("after " + fault);
    ClearFaults();
  }
  // The network works once the plugin does.
  FlakyPodRun pod;
  ASSERT_NO_FATAL_FAILURE(RunFlakyPod("net-ok", cri::POD, cri::POD, &pod));
  std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod.id);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->network().ip().starts_with(net.prefix)) << st->network().ip();
  EXPECT_EQ(LeasedAddresses(net).size(), 1u);
  ASSERT_NO_FATAL_FAILURE(ExpectContainerRuns(pod.id, pod.config, "after-faults"));
  IT_ASSERT_GRPC_OK(RemovePod(pod.id));
  EXPECT_THAT(LeasedAddresses(net), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

TEST_F(FailureInjectionIT, CniDelFailureKeepsThePodForARetry) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("flaky-bridge"));
  FlakyPodRun pod;
  ASSERT_NO_FATAL_FAILURE(RunFlakyPod("del-faults", cri::POD, cri::CONTAINER, &pod));
  ASSERT_EQ(LeasedAddresses(net).size(), 1u);

  Fault("cni-DEL");
  grpc::Status s = StopPod(pod.id);
  EXPECT_FALSE(s.ok()) << "StopPodSandbox hid a failed CNI DEL";
  EXPECT_THAT(s.error_message(), HasSubstr("injected failure of CNI DEL")) << Describe(s);
  s = RemovePod(pod.id);
  EXPECT_FALSE(s.ok()) << "RemovePodSandbox hid a failed CNI DEL";
  EXPECT_EQ(PodIds().size(), 1u) << "the pod must stay for the kubelet's retry";
  EXPECT_EQ(LeasedAddresses(net).size(), 1u);

  ClearFaults();
  IT_ASSERT_GRPC_OK(StopPod(pod.id));
  std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod.id);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::SANDBOX_NOTREADY);
  EXPECT_THAT(LeasedAddresses(net), IsEmpty());
  RemovePodLeavingNothing(pod, "after the retried removal");
}

}  // namespace
}  // namespace berth::testing
