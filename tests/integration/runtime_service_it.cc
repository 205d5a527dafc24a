// Integration tests of the CRI RuntimeService: pod sandboxes and containers driven through a
// real berthd over its gRPC Unix socket, with runc, berth-monitor, berth-pause and (for the
// bridge test) Debian's CNI plugins, running a busybox image the suite builds and serves from
// a registry on 127.0.0.1.
//
// Every test walks a lifecycle and checks the state the CRI API reports after each step, and
// ends by checking that nothing of it is left on the host: no mount under the berthd temp dir,
// no process of its containers or pods (by id on the command line, by PID namespace), nothing
// in the runc state dir, no container cgroup, no bundle or writable layer; for CNI pods the
// host-local address released and the veth gone.
//
// Needs root (namespaces, mounts, runc). Traffic goes only to 127.0.0.1 and to the address of
// the pod the bridge test creates.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

namespace berth::testing {
namespace {

// ---------------------------------------------------------------------------------------------
// 1. The whole lifecycle of a host-network pod and one container.

TEST_F(RuntimeServiceIT, HostNetworkPodAndContainerLifecycle) {
  cri::PodSandboxConfig pod = PodConfig("hostnet", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  ASSERT_FALSE(pod_id.empty());

  // READY, with metadata, labels and annotations exactly as given.
  {
    std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod_id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->id(), pod_id);
    EXPECT_EQ(st->state(), cri::SANDBOX_READY);
    EXPECT_EQ(st->metadata().name(), pod.metadata().name());
    EXPECT_EQ(st->metadata().uid(), pod.metadata().uid());
    EXPECT_EQ(st->metadata().namespace_(), kPodNamespace);
    EXPECT_EQ(st->metadata().attempt(), 1u);
    EXPECT_GT(st->created_at(), 0);
    EXPECT_EQ(AsMap(st->labels()), AsMap(pod.labels()));
    EXPECT_EQ(AsMap(st->annotations()), AsMap(pod.annotations()));
    EXPECT_EQ(st->linux().namespaces().options().network(), cri::NODE);
    EXPECT_EQ(st->linux().namespaces().options().pid(), cri::CONTAINER);
    EXPECT_FALSE(st->runtime_handler().empty());
  }
  {
    std::vector<cri::PodSandbox> all = ListPods({});
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id(), pod_id);
    EXPECT_EQ(all[0].state(), cri::SANDBOX_READY);
    EXPECT_EQ(all[0].metadata().name(), pod.metadata().name());
    EXPECT_EQ(AsMap(all[0].labels()), AsMap(pod.labels()));
    EXPECT_EQ(AsMap(all[0].annotations()), AsMap(pod.annotations()));
    EXPECT_THAT(PodIds(PodFilterId(pod_id)), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterId(pod_id.substr(0, 10))), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterId(std::string(64, 'f'))), IsEmpty());
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_READY)), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_NOTREADY)), IsEmpty());
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "hostnet"}})), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "hostnet"}, {"berth.io/suite", "runtime-it"}})),
                UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "other"}})), IsEmpty());
    EXPECT_THAT(PodIds(PodFilterLabels({{"app", "hostnet"}, {"missing", "x"}})), IsEmpty());
  }

  // CREATED.
  cri::ContainerConfig cfg =
      CtrConfig("main", {"/bin/sh", "-c", "echo hello; echo err >&2; sleep 1000"});
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  const fs::path log_path = LogDir() / "hostnet" / "main.log";
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->id(), id);
    EXPECT_EQ(st->state(), cri::CONTAINER_CREATED);
    EXPECT_EQ(st->metadata().name(), "main");
    EXPECT_GT(st->created_at(), 0);
    EXPECT_EQ(st->started_at(), 0);
    EXPECT_EQ(st->finished_at(), 0);
    EXPECT_EQ(st->image().image(), image_);
    EXPECT_EQ(st->image_id(), busybox_->config_digest.str());
    EXPECT_FALSE(st->image_ref().empty());
    EXPECT_EQ(st->log_path(), log_path.string());
    EXPECT_EQ(AsMap(st->labels()), AsMap(cfg.labels()));
    EXPECT_EQ(AsMap(st->annotations()), AsMap(cfg.annotations()));
    std::vector<cri::Container> listed = ListCtrs();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].id(), id);
    EXPECT_EQ(listed[0].pod_sandbox_id(), pod_id);
    EXPECT_EQ(listed[0].state(), cri::CONTAINER_CREATED);
    EXPECT_EQ(listed[0].metadata().name(), "main");
    EXPECT_EQ(AsMap(listed[0].labels()), AsMap(cfg.labels()));
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_CREATED)), UnorderedElementsAre(id));
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_RUNNING)), IsEmpty());
    cri::ContainerFilter by_pod;
    by_pod.set_pod_sandbox_id(pod_id);
    EXPECT_THAT(CtrIds(by_pod), UnorderedElementsAre(id));
    cri::ContainerFilter by_label;
    (*by_label.mutable_label_selector())["ctr"] = "main";
    EXPECT_THAT(CtrIds(by_label), UnorderedElementsAre(id));
    (*by_label.mutable_label_selector())["ctr"] = "other";
    EXPECT_THAT(CtrIds(by_label), IsEmpty());
    cri::ContainerFilter by_id;
    by_id.set_id(id);
    EXPECT_THAT(CtrIds(by_id), UnorderedElementsAre(id));
  }

  // RUNNING.
  IT_ASSERT_GRPC_OK(StartCtr(id));
  int64_t started_at = 0;
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
    EXPECT_GT(st->started_at(), 0);
    EXPECT_GE(st->started_at(), st->created_at());
    EXPECT_EQ(st->finished_at(), 0);
    started_at = st->started_at();
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_RUNNING)), UnorderedElementsAre(id));
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_CREATED)), IsEmpty());
  }

  // ExecSync: output, exit codes, timeout.
  {
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(id, {"echo", "hi"}, 10, &r));
    EXPECT_EQ(r.stdout(), "hi\n");
    EXPECT_EQ(r.stderr(), "");
    EXPECT_EQ(r.exit_code(), 0);
  }
  {
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(id, {"sh", "-c", "exit 7"}, 10, &r));
    EXPECT_EQ(r.exit_code(), 7);
  }
  {
    cri::ExecSyncResponse r;
    auto t0 = Clock::now();
    grpc::Status s = Exec(id, {"sleep", "5"}, 1, &r);
    auto took = Clock::now() - t0;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(s);
    EXPECT_LT(took, std::chrono::milliseconds(4500)) << "the 1 s exec timeout was not enforced";
  }

  // The CRI log file.
  {
    std::string log = WaitForLog(
        log_path,
        [](const std::string& l) {
          return LogHasRecord(l, "stdout", "hello") && LogHasRecord(l, "stderr", "err");
        },
        std::chrono::seconds(5));
    EXPECT_TRUE(LogHasRecord(log, "stdout", "hello")) << "log:\n" << log;
    EXPECT_TRUE(LogHasRecord(log, "stderr", "err")) << "log:\n" << log;
  }

  // EXITED: sh ignores SIGTERM as PID 1, so the grace period runs out and SIGKILL follows.
  {
    auto t0 = Clock::now();
    IT_EXPECT_GRPC_OK(StopCtr(id, 2));
    auto took = Clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(1800))
        << "StopContainer did not wait the grace period";
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
    EXPECT_EQ(st->exit_code(), 137);
    EXPECT_FALSE(st->reason().empty()) << "an exited container needs a reason";
    EXPECT_GE(st->finished_at(), started_at);
    EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_EXITED)), UnorderedElementsAre(id));
  }
  IT_EXPECT_GRPC_OK(StopCtr(id, 2));  // idempotent
  EXPECT_EQ(CtrStatusOf(id)->state(), cri::CONTAINER_EXITED);

  // Removed.
  IT_EXPECT_GRPC_OK(RemoveCtr(id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  {
    cri::ContainerStatusResponse resp;
    grpc::Status s = CtrStatus(id, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
  }
  IT_EXPECT_GRPC_OK(RemoveCtr(id));                    // idempotent
  IT_EXPECT_GRPC_OK(RemoveCtr(std::string(64, 'e')));  // unknown

  // NOTREADY.
  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  {
    std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod_id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::SANDBOX_NOTREADY);
    EXPECT_EQ(AsMap(st->labels()), AsMap(pod.labels()));
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_NOTREADY)), UnorderedElementsAre(pod_id));
    EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_READY)), IsEmpty());
  }
  IT_EXPECT_GRPC_OK(StopPod(pod_id));  // idempotent
  EXPECT_EQ(PodStatusOf(pod_id)->state(), cri::SANDBOX_NOTREADY);

  // Removed.
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListPods({}), IsEmpty());
  {
    cri::PodSandboxStatusResponse resp;
    grpc::Status s = PodStatus(pod_id, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));  // idempotent
  const std::string unknown(64, 'd');
  IT_EXPECT_GRPC_OK(StopPod(unknown));
  IT_EXPECT_GRPC_OK(RemovePod(unknown));

  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 2. Containers that end on their own.

TEST_F(RuntimeServiceIT, ContainersThatExitByThemselves) {
  cri::PodSandboxConfig pod = PodConfig("selfexit", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  std::string failing, succeeding;
  IT_ASSERT_GRPC_OK(
      CreateCtr(pod_id, pod, CtrConfig("fails", {"/bin/sh", "-c", "exit 3"}), &failing));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("succeeds", {"true"}), &succeeding));
  IT_ASSERT_GRPC_OK(StartCtr(failing));
  IT_ASSERT_GRPC_OK(StartCtr(succeeding));

  cri::ContainerStatus f = WaitForState(failing, cri::CONTAINER_EXITED, std::chrono::seconds(10));
  EXPECT_EQ(f.exit_code(), 3);
  EXPECT_EQ(f.reason(), "Error");
  EXPECT_GT(f.started_at(), 0);
  EXPECT_GE(f.finished_at(), f.started_at());
  cri::ContainerStatus s =
      WaitForState(succeeding, cri::CONTAINER_EXITED, std::chrono::seconds(10));
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.reason(), "Completed");
  EXPECT_GE(s.finished_at(), s.started_at());
  EXPECT_THAT(CtrIds(CtrFilterState(cri::CONTAINER_EXITED)),
              UnorderedElementsAre(failing, succeeding));

  // What an exited container still allows, and what not.
  cri::ExecSyncResponse r;
  EXPECT_FALSE(Exec(failing, {"true"}, 5, &r).ok()) << "ExecSync in an exited container";
  grpc::Status again = StartCtr(failing);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(again);
  IT_EXPECT_GRPC_OK(StopCtr(failing, 1));
  EXPECT_EQ(CtrStatusOf(failing)->exit_code(), 3) << "stopping an exited container changed it";

  // RemovePodSandbox takes its containers along.
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  EXPECT_THAT(ListPods({}), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 3. A pod on a CNI bridge network.

TEST_F(RuntimeServiceIT, CniBridgePod) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("bridge"));
  const std::string& bridge = net.bridge;
  const std::string& prefix = net.prefix;
  const std::string& net_name = net.name;
  const fs::path& ipam_dir = net.ipam_dir;

  cri::PodSandboxConfig pod = PodConfig("bridged", cri::POD, cri::CONTAINER);
  const std::string hostname = StrCat("rt-", RandomHex(3));
  pod.set_hostname(hostname);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  std::optional<cri::PodSandboxStatus> st = PodStatusOf(pod_id);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::SANDBOX_READY);
  const std::string ip = st->network().ip();
  ASSERT_TRUE(ip.starts_with(prefix)) << "pod IP \"" << ip << "\" not in " << prefix << "0/24";
  ASSERT_TRUE(ParseIpv4(ip).has_value()) << ip;
  EXPECT_EQ(st->linux().namespaces().options().network(), cri::POD);
  const fs::path ip_file = ipam_dir / net_name / ip;
  EXPECT_TRUE(Exists(ip_file)) << "host-local recorded no lease at " << ip_file;
  const std::vector<std::string> veths = DirEntries(fs::path("/sys/class/net") / bridge / "brif");
  EXPECT_EQ(veths.size(), 1u) << "ports of " << bridge << ": " << ::testing::PrintToString(veths);

  // A container showing the pod's hostname and address, then answering one TCP connection.
  const bool have_ip = HasApplet("ip");
  const bool have_nc = HasApplet("nc");
  std::string script = "hostname; cat /etc/hostname; ";
  script += have_ip                 ? "ip addr; "
            : HasApplet("ifconfig") ? "ifconfig; "
                                    : "cat /proc/net/fib_trie; ";
  script += "echo shown; ";
  if (have_nc) script += "echo pong | nc -l -p 8080";
  cri::ContainerConfig cfg = CtrConfig("net", {"/bin/sh", "-c", script});
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  const fs::path log_path = LogDir() / "bridged" / "net.log";
  std::string log = WaitForLog(
      log_path, [](const std::string& l) { return LogHasRecord(l, "stdout", "shown"); },
      std::chrono::seconds(10));
  ASSERT_TRUE(LogHasRecord(log, "stdout", "shown")) << "log:\n" << log;
  EXPECT_TRUE(LogHasRecord(log, "stdout", hostname)) << "hostname not shown; log:\n" << log;
  EXPECT_GE(CountOf(log, StrCat("stdout F ", hostname, "\n")), 2)
      << "hostname and /etc/hostname must both be " << hostname << "; log:\n"
      << log;
  EXPECT_THAT(log, HasSubstr(ip)) << "the pod IP is not on an interface of the container";
  EXPECT_EQ(CtrStatusOf(id)->state(), have_nc ? cri::CONTAINER_RUNNING : cri::CONTAINER_EXITED);

  if (have_nc) {
    StatusOr<std::string> answer = UnavailableError("not tried");
    auto deadline = Clock::now() + std::chrono::seconds(10);
    // nc may not listen yet: retry while the connection is refused.
    while (Clock::now() < deadline) {
      answer = TcpExchange(ip, 8080, "hello-from-test\n", std::chrono::seconds(5));
      if (answer.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(answer.ok()) << "TCP to the pod at " << ip
                             << ":8080: " << answer.status().ToString();
    EXPECT_EQ(*answer, "pong\n");
    cri::ContainerStatus done = WaitForState(id, cri::CONTAINER_EXITED, std::chrono::seconds(10));
    EXPECT_EQ(done.exit_code(), 0);
    log = ReadOr(log_path);
    EXPECT_TRUE(LogHasRecord(log, "stdout", "hello-from-test")) << "log:\n" << log;
  } else {
    std::cerr << "busybox has no nc applet: TCP check skipped\n";
  }

  // StopPodSandbox tears the network down: address released, veth gone.
  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  EXPECT_EQ(PodStatusOf(pod_id)->state(), cri::SANDBOX_NOTREADY);
  EXPECT_FALSE(Exists(ip_file)) << "host-local lease " << ip << " not released by StopPodSandbox";
  for (const std::string& v : veths) {
    EXPECT_FALSE(Exists(fs::path("/sys/class/net") / v)) << "veth " << v << " still exists";
  }
  EXPECT_THAT(DirEntries(fs::path("/sys/class/net") / bridge / "brif"), IsEmpty());
  IT_EXPECT_GRPC_OK(StopPod(pod_id));  // idempotent, with the network already gone

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListPods({}), IsEmpty());
  EXPECT_THAT(ListCtrs(), IsEmpty());
  EXPECT_FALSE(Exists(ip_file));
  std::vector<std::string> leases;
  for (const std::string& e : DirEntries(ipam_dir / net_name)) {
    if (e.starts_with("10.")) leases.push_back(e);
  }
  EXPECT_THAT(leases, IsEmpty()) << "host-local leases left";
  EXPECT_THAT(DirEntries(berthd_->root() / "cni" / "results"), IsEmpty()) << "CNI cache left";
  ExpectNoLeaks("after removing the bridged pod");
}

// ---------------------------------------------------------------------------------------------
// 4. One PID namespace for the pod, with berth-pause as its init.

TEST_F(RuntimeServiceIT, SharedPidNamespaceWithPause) {
  cri::PodSandboxConfig pod = PodConfig("sharedpid", cri::NODE, cri::POD);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  EXPECT_EQ(PodStatusOf(pod_id)->linux().namespaces().options().pid(), cri::POD);
  nlohmann::json info = PodInfo(pod_id);
  ASSERT_FALSE(info.is_discarded());
  const int pause_pid = info.value("pause_pid", 0);
  ASSERT_GT(pause_pid, 0) << info.dump();
  // RunPodSandbox may answer before berth-pause has finished its exec.
  // berth-pause carries its pod's directory on its command line (recovery finds it by that).
  const std::string want_cmdline =
      StrCat("berth-pause ", (berthd_->state() / "sandboxes" / pod_id).string());
  std::string pause_cmdline;
  for (auto deadline = Clock::now() + std::chrono::seconds(2); Clock::now() < deadline;) {
    pause_cmdline = CmdlineOf(pause_pid);
    if (pause_cmdline == want_cmdline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(pause_cmdline, want_cmdline) << "pause_pid " << pause_pid << " is not berth-pause";
  const std::string pod_pidns = PidNamespaceOf(pause_pid);
  ASSERT_FALSE(pod_pidns.empty());
  tracked_pidns_.insert(pod_pidns);

  auto shared = [&](const std::string& name, const std::string& secs) {
    cri::ContainerConfig c = CtrConfig(name, {"sleep", secs});
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(cri::POD);
    return c;
  };
  std::string first, second;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, shared("first", "1001"), &first));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, shared("second", "1002"), &second));
  IT_ASSERT_GRPC_OK(StartCtr(first));
  IT_ASSERT_GRPC_OK(StartCtr(second));
  EXPECT_EQ(PidNamespaceOf(CtrPid(first)), pod_pidns);
  EXPECT_EQ(PidNamespaceOf(CtrPid(second)), pod_pidns);

  const std::string lister = HasApplet("ps") ? "ps" : "ls";
  for (const auto& [self, other] : {std::pair{first, std::string("sleep 1002")},
                                    std::pair{second, std::string("sleep 1001")}}) {
    std::string seen = lister == "ps"
                           ? ExecOut(self, {"ps"})
                           : ExecOut(self, {"sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"});
    EXPECT_THAT(seen, HasSubstr(other)) << "container " << self << " does not see " << other;
    EXPECT_THAT(seen, HasSubstr("berth-pause"));
    std::string init = ExecOut(self, {"cat", "/proc/1/cmdline"});
    EXPECT_TRUE(init.starts_with(std::string("berth-pause\0", 12))) << "PID 1 of the pod: " << init;
  }

  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  for (const auto& c : {first, second}) {
    EXPECT_EQ(CtrStatusOf(c)->state(), cri::CONTAINER_EXITED) << c;
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  EXPECT_THAT(ListPods({}), IsEmpty());
  EXPECT_NE(CmdlineOf(pause_pid), "berth-pause") << "berth-pause " << pause_pid << " survived";
  ExpectNoLeaks("after removing the shared-PID pod");
}

// ---------------------------------------------------------------------------------------------
// 5. Containers outlive a SIGKILL of berthd, and exits while it is down are not lost.

TEST_F(RuntimeServiceIT, ContainersSurviveDaemonKill) {
  cri::PodSandboxConfig pod = PodConfig("survivor", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  std::string longer, shorter;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("long", {"sleep", "1000"}), &longer));
  IT_ASSERT_GRPC_OK(
      CreateCtr(pod_id, pod, CtrConfig("short", {"/bin/sh", "-c", "sleep 2; exit 5"}), &shorter));
  IT_ASSERT_GRPC_OK(StartCtr(longer));
  IT_ASSERT_GRPC_OK(StartCtr(shorter));
  const int long_pid = CtrPid(longer);
  ASSERT_GT(long_pid, 0);
  EXPECT_EQ(CtrStatusOf(longer)->state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(CtrStatusOf(shorter)->state(), cri::CONTAINER_RUNNING);

  berthd_->Kill();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // "short" exits meanwhile
  EXPECT_EQ(CmdlineOf(long_pid), "sleep 1000") << "the container died with berthd";
  const int64_t restart_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  IT_ASSERT_OK(berthd_->Start(DefaultArgs()));

  EXPECT_THAT(PodIds(PodFilterState(cri::SANDBOX_READY)), UnorderedElementsAre(pod_id));
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(longer);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
    EXPECT_EQ(CtrPid(longer), long_pid);
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(longer, {"echo", "still here"}, 10, &r));
    EXPECT_EQ(r.stdout(), "still here\n");
    EXPECT_EQ(r.exit_code(), 0);
  }
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(shorter);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state(), cri::CONTAINER_EXITED);
    EXPECT_EQ(st->exit_code(), 5);
    EXPECT_EQ(st->reason(), "Error");
    EXPECT_GT(st->finished_at(), st->started_at());
    EXPECT_LT(st->finished_at(), restart_ns) << "the exit time must be when it happened";
  }

  // And it can still stop what it did not see start.
  IT_EXPECT_GRPC_OK(StopCtr(longer, 0));
  EXPECT_EQ(CtrStatusOf(longer)->state(), cri::CONTAINER_EXITED);
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 6. Bad input: clear error codes, and nothing half-made left behind.

TEST_F(RuntimeServiceIT, BadInputIsRejectedCleanly) {
  cri::PodSandboxConfig pod = PodConfig("badinput", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  struct Snapshot {
    std::vector<std::string> containers;
    std::multiset<std::string> mounts;
    std::vector<std::string> bundles, layers, runc;
  };
  auto snapshot = [&] {
    Snapshot s;
    s.containers = CtrIds();
    std::sort(s.containers.begin(), s.containers.end());
    s.mounts = MountsUnder(berthd_->dir());
    s.bundles = DirEntries(berthd_->state() / "containers");
    s.layers = DirEntries(berthd_->root() / "containers");
    s.runc = DirEntries(berthd_->state() / "runtimes" / "runc");
    return s;
  };
  auto expect_unchanged = [&](const Snapshot& before, const std::string& what) {
    Snapshot after = snapshot();
    EXPECT_EQ(after.containers, before.containers) << "container list changed by " << what;
    EXPECT_EQ(after.mounts, before.mounts) << "mounts changed by " << what;
    EXPECT_EQ(after.bundles, before.bundles) << "bundle dirs changed by " << what;
    EXPECT_EQ(after.layers, before.layers) << "writable layers changed by " << what;
    EXPECT_EQ(after.runc, before.runc) << "runc state changed by " << what;
  };

  {
    Snapshot before = snapshot();
    cri::ContainerConfig c = CtrConfig("noimage", {"true"});
    c.mutable_image()->set_image(StrCat(registry_->host(), "/it/never-pulled:x"));
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, c, &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "unknown image: " << Describe(s);
    expect_unchanged(before, "CreateContainer of an unknown image");
  }
  {
    Snapshot before = snapshot();
    cri::ContainerConfig c = CtrConfig("nohostpath", {"true"});
    const fs::path missing = berthd_->dir() / "no-such-host-dir";
    cri::Mount* m = c.add_mounts();
    m->set_host_path(missing.string());
    m->set_container_path("/data");
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, c, &id);
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                s.error_code() == grpc::StatusCode::NOT_FOUND)
        << "bind mount of a missing host path: " << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr(missing.string())) << "the error must name the path";
    expect_unchanged(before, "CreateContainer with a missing host path");
  }
  {
    cri::PodSandboxConfig other = PodConfig("badhandler", cri::NODE, cri::CONTAINER);
    std::string id;
    grpc::Status s = RunPod(other, &id, "no-such-handler");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    EXPECT_THAT(PodIds(), UnorderedElementsAre(pod_id));
  }
  for (const std::string& parent :
       {std::string("/kubepods/../../escape"), "/kubepods/" + std::string(300, 'x')}) {
    cri::PodSandboxConfig other = PodConfig("badcgroup", cri::POD, cri::CONTAINER);
    other.mutable_linux()->set_cgroup_parent(parent);
    Snapshot before = snapshot();
    std::string id;
    grpc::Status s = RunPod(other, &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("cgroup parent"));
    EXPECT_THAT(PodIds(), UnorderedElementsAre(pod_id));
    EXPECT_THAT(DirEntries(berthd_->state() / "sandboxes"), UnorderedElementsAre(pod_id));
    expect_unchanged(before, "RunPodSandbox with a bad cgroup parent");
  }

  std::string dup;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("dup", {"sleep", "1000"}), &dup));
  {
    Snapshot before = snapshot();
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, CtrConfig("dup", {"sleep", "1000"}), &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(s);
    expect_unchanged(before, "a duplicate CreateContainer");
  }
  IT_EXPECT_GRPC_OK(StartCtr(dup));
  {
    grpc::Status s = StartCtr(dup);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << "StartContainer twice: " << Describe(s);
    EXPECT_EQ(CtrStatusOf(dup)->state(), cri::CONTAINER_RUNNING);
  }

  {
    cri::PodSandboxConfig gone_cfg = PodConfig("gone", cri::NODE, cri::CONTAINER);
    std::string gone;
    IT_ASSERT_GRPC_OK(RunPod(gone_cfg, &gone));
    IT_ASSERT_GRPC_OK(RemovePod(gone));
    Snapshot before = snapshot();
    std::string id;
    grpc::Status s = CreateCtr(gone, gone_cfg, CtrConfig("orphan", {"true"}), &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "removed sandbox: " << Describe(s);
    s = CreateCtr(std::string(64, 'a'), gone_cfg, CtrConfig("orphan", {"true"}), &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "unknown sandbox: " << Describe(s);
    expect_unchanged(before, "CreateContainer in a removed or unknown sandbox");
  }

  // Every RPC that names an object rejects an empty id.
  {
    Snapshot before = snapshot();
    std::map<std::string, grpc::Status> results;
    std::string id;
    results["CreateContainer"] = CreateCtr("", pod, CtrConfig("noid", {"true"}), &id);
    results["StartContainer"] = StartCtr("");
    results["StopContainer"] = StopCtr("", 0);
    results["RemoveContainer"] = RemoveCtr("");
    cri::ContainerStatusResponse cs;
    results["ContainerStatus"] = CtrStatus("", &cs);
    cri::ExecSyncResponse ex;
    results["ExecSync"] = Exec("", {"true"}, 5, &ex);
    {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      cri::UpdateContainerResourcesRequest req;
      req.mutable_linux()->set_cpu_shares(512);
      cri::UpdateContainerResourcesResponse resp;
      results["UpdateContainerResources"] =
          berthd_->runtime().UpdateContainerResources(&ctx, req, &resp);
    }
    results["StopPodSandbox"] = StopPod("");
    results["RemovePodSandbox"] = RemovePod("");
    cri::PodSandboxStatusResponse ps;
    results["PodSandboxStatus"] = PodStatus("", &ps);
    for (const auto& [rpc, s] : results) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << rpc << " with an empty id: " << Describe(s);
    }
    expect_unchanged(before, "RPCs with empty ids");
    EXPECT_EQ(CtrStatusOf(dup)->state(), cri::CONTAINER_RUNNING);
    EXPECT_THAT(PodIds(), UnorderedElementsAre(pod_id));
  }

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// 7. Security context and resources.

TEST_F(RuntimeServiceIT, SecurityContextAndResources) {
  cri::PodSandboxConfig pod = PodConfig("secctx", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));

  cri::ContainerConfig user_cfg = CtrConfig("user", {"sleep", "1000"});
  user_cfg.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1234);
  cri::ContainerConfig ro_cfg = CtrConfig("readonly", {"sleep", "1000"});
  ro_cfg.mutable_linux()->mutable_security_context()->set_readonly_rootfs(true);
  std::string user, ro;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, user_cfg, &user));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, ro_cfg, &ro));
  IT_ASSERT_GRPC_OK(StartCtr(user));
  IT_ASSERT_GRPC_OK(StartCtr(ro));

  EXPECT_EQ(ExecOut(user, {"id", "-u"}), "1234\n");
  EXPECT_EQ(CtrStatusOf(user)->user().linux().uid(), 1234);
  const int user_pid = CtrPid(user);
  ASSERT_GT(user_pid, 0);
  EXPECT_THAT(ReadOr(StrCat("/proc/", user_pid, "/status")), HasSubstr("Uid:\t1234\t1234"))
      << "the container's init does not run as 1234";

  {
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(ro, {"touch", "/x"}, 10, &r));
    EXPECT_NE(r.exit_code(), 0) << "touch /x succeeded on a read-only rootfs";
    EXPECT_THAT(r.stderr(), HasSubstr("Read-only file system"));
    EXPECT_EQ(ExecOut(ro, {"id", "-u"}), "0\n") << "readonly_rootfs alone keeps root";
  }

  // UpdateContainerResources on a running container.
  constexpr int64_t kMemory = 64 << 20;
  constexpr int64_t kShares = 512;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::UpdateContainerResourcesRequest req;
    req.set_container_id(user);
    req.mutable_linux()->set_memory_limit_in_bytes(kMemory);
    req.mutable_linux()->set_cpu_shares(kShares);
    cri::UpdateContainerResourcesResponse resp;
    IT_EXPECT_GRPC_OK(berthd_->runtime().UpdateContainerResources(&ctx, req, &resp));
  }
  {
    std::optional<cri::ContainerStatus> st = CtrStatusOf(user);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->resources().linux().memory_limit_in_bytes(), kMemory);
    EXPECT_EQ(st->resources().linux().cpu_shares(), kShares);
    EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
  }
  // ... and in the container's cgroup.
  {
    std::string cgroups = ReadOr(StrCat("/proc/", user_pid, "/cgroup"));
    std::map<std::string, std::string> paths;  // controller list -> path
    size_t start = 0;
    while (start < cgroups.size()) {
      size_t end = cgroups.find('\n', start);
      if (end == std::string::npos) end = cgroups.size();
      std::string line = cgroups.substr(start, end - start);
      start = end + 1;
      size_t c1 = line.find(':'), c2 = line.find(':', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) continue;
      paths[line.substr(c1 + 1, c2 - c1 - 1)] = line.substr(c2 + 1);
    }
    if (Exists("/sys/fs/cgroup/cgroup.controllers")) {
      const fs::path dir = fs::path("/sys/fs/cgroup") / fs::path(paths[""]).relative_path();
      EXPECT_EQ(Trim(ReadOr(dir / "memory.max")), std::to_string(kMemory)) << dir;
    } else {
      std::string mem_path, cpu_path;
      for (const auto& [ctrls, p] : paths) {
        std::string list = "," + ctrls + ",";
        if (list.find(",memory,") != std::string::npos) mem_path = p;
        if (list.find(",cpu,") != std::string::npos) cpu_path = p;
      }
      ASSERT_FALSE(mem_path.empty()) << cgroups;
      ASSERT_FALSE(cpu_path.empty()) << cgroups;
      const fs::path mem = fs::path("/sys/fs/cgroup/memory") / fs::path(mem_path).relative_path();
      const fs::path cpu = fs::path("/sys/fs/cgroup/cpu") / fs::path(cpu_path).relative_path();
      EXPECT_EQ(Trim(ReadOr(mem / "memory.limit_in_bytes")), std::to_string(kMemory)) << mem;
      EXPECT_EQ(Trim(ReadOr(cpu / "cpu.shares")), std::to_string(kShares)) << cpu;
    }
  }

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListCtrs(), IsEmpty());
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// A systemd-style cgroup parent with the cgroupfs driver lands where systemd would put it.

TEST_F(RuntimeServiceIT, SliceCgroupParentWithCgroupfsDriver) {
  const std::string top = StrCat("berthit", RandomHex(3));
  const std::string slice = top + "-pod1.slice";
  const std::string expanded = StrCat("/", top, ".slice/", slice);
  RemoveCgroupsAfterTest(top + ".slice");
  cri::PodSandboxConfig pod = PodConfig("sliced", cri::NODE, cri::CONTAINER);
  pod.mutable_linux()->set_cgroup_parent(slice);
  // Pod resources and overhead, as a kubelet sends them: kept, and passed on to the runtime.
  pod.mutable_linux()->mutable_resources()->set_cpu_period(100000);
  pod.mutable_linux()->mutable_resources()->set_cpu_quota(150000);
  pod.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(256 << 20);
  pod.mutable_linux()->mutable_overhead()->set_memory_limit_in_bytes(64 << 20);
  std::string pod_id, id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("in-slice", {"sleep", "60"}), &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  const int pid = CtrPid(id);
  ASSERT_GT(pid, 0);
  const std::string cgroups = ReadOr(StrCat("/proc/", pid, "/cgroup"));
  EXPECT_THAT(cgroups, HasSubstr(StrCat(":", expanded, "/", id, "\n"))) << cgroups;
  nlohmann::json info = CtrInfo(id);
  ASSERT_FALSE(info.is_discarded());
  const nlohmann::json& annotations = info["runtimeSpec"]["annotations"];
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-cpu-quota", ""), "150000");
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-memory", ""), "268435456");
  nlohmann::json pod_info = PodInfo(pod_id);
  ASSERT_FALSE(pod_info.is_discarded());
  EXPECT_EQ(pod_info["config"]["overhead"]["memory_limit_in_bytes"], 64 << 20) << pod_info.dump();
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// Recursive read-only bind mounts: a plain read-only bind leaves submounts writable, "rro"
// does not.

TEST_F(RuntimeServiceIT, RecursiveReadOnlyMountCoversSubmounts) {
  const fs::path host = berthd_->dir() / "rro-src";
  const fs::path sub = host / "sub";
  IT_ASSERT_OK(MakeDirs(sub));
  ASSERT_EQ(::mount("tmpfs", sub.c_str(), "tmpfs", 0, "size=1m"), 0) << strerror(errno);
  cleanups_.push_back([sub] { ::umount2(sub.c_str(), MNT_DETACH); });

  cri::PodSandboxConfig pod = PodConfig("rro", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  auto container = [&](const std::string& name, bool rro) {
    cri::ContainerConfig cfg = CtrConfig(name, {"sleep", "60"});
    cri::Mount* m = cfg.add_mounts();
    m->set_container_path("/data");
    m->set_host_path(host.string());
    m->set_readonly(true);
    m->set_recursive_read_only(rro);
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, cfg, &id);
    EXPECT_TRUE(s.ok()) << Describe(s);
    if (s.ok()) IT_EXPECT_GRPC_OK(StartCtr(id));
    return id;
  };
  auto touch = [&](const std::string& id, const std::string& path) {
    cri::ExecSyncResponse resp;
    grpc::Status s = Exec(id, {"touch", path}, 10, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return resp.exit_code();
  };
  const std::string plain = container("plain-ro", false);
  const std::string rro = container("rro", true);
  ASSERT_FALSE(plain.empty());
  ASSERT_FALSE(rro.empty());
  EXPECT_NE(touch(plain, "/data/top"), 0) << "read-only bind is writable";
  EXPECT_EQ(touch(plain, "/data/sub/plain"), 0)
      << "a plain ro bind should leave submounts as they are";
  EXPECT_NE(touch(rro, "/data/top"), 0);
  EXPECT_NE(touch(rro, "/data/sub/rro"), 0) << "recursive read-only left a submount writable";
  EXPECT_TRUE(Exists(sub / "plain"));
  EXPECT_FALSE(Exists(sub / "rro"));

  // rro without readonly is refused.
  cri::ContainerConfig bad = CtrConfig("rro-rw", {"sleep", "60"});
  cri::Mount* m = bad.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(host.string());
  m->set_recursive_read_only(true);
  std::string unused;
  grpc::Status s = CreateCtr(pod_id, pod, bad, &unused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("needs readonly"));

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ::umount2(sub.c_str(), MNT_DETACH);  // the test's own mount, not a leak
  ExpectNoLeaks("after removing the pod");
}

// ---------------------------------------------------------------------------------------------
// Serve first, probe later: berthd answers as soon as its state is recovered, while its
// runtime handlers are still being probed (each probe runs a container). The default handler
// here is "gated", a wrapper of runc whose probe run blocks while the file `gate` exists, so
// the test sees the probing state for as long as it wants, without timing.
class ServeBeforeProbeIT : public RuntimeServiceIT {
 protected:
  void BeforeDaemonStart() override {
    gate_ = berthd_->dir() / "gate";
    wrapper_ = berthd_->dir() / "gated-runc";
    std::string runc;
    for (const char* p : {"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"}) {
      if (runc.empty() && ::access(p, X_OK) == 0) runc = p;
    }
    ASSERT_FALSE(runc.empty()) << "runc not found";
    IT_ASSERT_OK(WriteFileAtomic(gate_, ""));
    IT_ASSERT_OK(WriteFileAtomic(
        wrapper_,
        StrCat(R"(#!/bin/sh
# Holds the start-up probe (its bundle is under <state>/probe/) while the gate exists.
case "$*" in
  */probe/*)
    i=0
    while [ -e ")",
               gate_.string(), R"(" ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done ;;
esac
exec )",
               runc, R"( "$@"
)"),
        0755));
    berthd_->set_wait_for_handler_probes(false);
  }

  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> args = DefaultArgs();
    args.insert(args.end(), {"--runtime-handler", StrCat("gated=", wrapper_.string()),
                             "--default-runtime-handler", "gated"});
    return args;
  }

  std::map<std::string, cri::RuntimeCondition> Conditions(cri::StatusResponse* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StatusRequest req;
    req.set_verbose(true);
    grpc::Status g = berthd_->runtime().Status(&ctx, req, resp);
    EXPECT_TRUE(g.ok()) << Describe(g);
    std::map<std::string, cri::RuntimeCondition> out;
    for (const auto& c : resp->status().conditions()) out[c.type()] = c;
    return out;
  }

  fs::path gate_;
  fs::path wrapper_;
};

TEST_F(ServeBeforeProbeIT, AnswersWhileProbingAndRuntimeReadyFollowsTheDefaultHandler) {
  // berthd answered Version (BerthdProcess::Start) and a pull (the fixture) while the probe
  // of its default handler cannot have finished: the gate still exists.
  ASSERT_TRUE(Exists(gate_));
  cri::StatusResponse st;
  auto cond = Conditions(&st);
  ASSERT_TRUE(cond.contains("RuntimeReady"));
  EXPECT_FALSE(cond["RuntimeReady"].status());
  EXPECT_EQ(cond["RuntimeReady"].reason(), "RuntimeHandlersProbing");
  EXPECT_THAT(cond["RuntimeReady"].message(), HasSubstr("gated"));
  nlohmann::json handlers = nlohmann::json::parse(st.info().at("runtimeHandlers"));
  EXPECT_TRUE(handlers["gated"]["probing"].get<bool>()) << handlers.dump();
  for (const auto& h : st.runtime_handlers()) {
    EXPECT_NE(h.name(), "gated") << "a handler is listed before its probe finished";
    EXPECT_NE(h.name(), "") << "a default handler is listed before its probe finished";
  }
  // Calls that need no handler answer at once.
  EXPECT_THAT(PodIds(), IsEmpty());
  // A handler that is not configured is refused at once, probing or not.
  std::string unused;
  grpc::Status unknown = RunPod(PodConfig("no-such", cri::NODE, cri::CONTAINER), &unused, "nope");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(unknown);
  EXPECT_THAT(unknown.error_message(), HasSubstr("unknown runtime handler"));

  // A pod for the default handler waits for its probe...
  std::string pod_id;
  grpc::Status run_status;
  std::atomic<bool> returned{false};
  std::thread run([&] {
    run_status = RunPod(PodConfig("waits-for-probe", cri::NODE, cri::CONTAINER), &pod_id);
    returned = true;
  });
  // However long this is, the call cannot return before the gate goes.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const bool finished_early = returned.load();
  std::map<std::string, cri::RuntimeCondition> still = Conditions(&st);
  EXPECT_FALSE(still["RuntimeReady"].status()) << "RuntimeReady while the probe is held";
  // ...and is created once the probe is let through.
  fs::remove(gate_);
  run.join();
  EXPECT_FALSE(finished_early) << "RunPodSandbox returned while the probe of its handler ran";
  IT_ASSERT_GRPC_OK(run_status);
  ASSERT_FALSE(pod_id.empty());
  EXPECT_EQ(PodStatusOf(pod_id)->runtime_handler(), "gated");

  cond = Conditions(&st);
  EXPECT_TRUE(cond["RuntimeReady"].status())
      << cond["RuntimeReady"].reason() << ": " << cond["RuntimeReady"].message();
  EXPECT_TRUE(cond["RuntimeReady"].reason().empty());
  std::set<std::string> listed;
  for (const auto& h : st.runtime_handlers()) listed.insert(h.name());
  EXPECT_TRUE(listed.contains("gated"));
  EXPECT_TRUE(listed.contains("")) << "the default handler is listed once its probe worked";

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the pod");
}

}  // namespace
}  // namespace berth::testing
