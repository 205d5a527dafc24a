// Integration tests of what newer kubelets (1.27 and later) ask of a runtime: idempotent
// stop/remove of objects that are gone, ephemeral debug containers sharing a target's PID
// namespace (kubectl debug --target), stop signals, supplemental groups policies and the
// identity a container really runs as, in-place pod resize and CDI devices. Each drives a
// real berthd with runc over its CRI socket and ends with the fixture's leak checks.
//
// Needs root (namespaces, mounts, runc). No network traffic but to the registry on 127.0.0.1.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include <sys/sysmacros.h>

#include <sstream>

namespace berth::testing {
namespace {

class KubeletFeaturesIT : public RuntimeServiceIT {};

// ---------------------------------------------------------------------------------------------
// Stop and remove are idempotent, also for ids berthd never knew or already forgot (CRI: "must
// not return an error if the container has already been stopped/removed"; containerd 2 and
// CRI-O answer OK for all four). The kubelet retries stops after its own restarts.

TEST_F(KubeletFeaturesIT, StopAndRemoveOfGoneObjectsSucceed) {
  const std::string never_ctr(64, 'c'), never_pod(64, 'p');
  IT_EXPECT_GRPC_OK(StopCtr(never_ctr, 0));
  IT_EXPECT_GRPC_OK(StopCtr(never_ctr, 10));
  IT_EXPECT_GRPC_OK(RemoveCtr(never_ctr));
  IT_EXPECT_GRPC_OK(StopPod(never_pod));
  IT_EXPECT_GRPC_OK(RemovePod(never_pod));

  cri::PodSandboxConfig pod = PodConfig("gone", cri::NODE, cri::CONTAINER);
  std::string pod_id, id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("sleeper", {"sleep", "1000"}), &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  // Removed while running (RemoveContainer kills it first), then every call again.
  IT_ASSERT_GRPC_OK(RemoveCtr(id));
  {
    cri::ContainerStatusResponse resp;
    EXPECT_EQ(CtrStatus(id, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  IT_EXPECT_GRPC_OK(StopCtr(id, 0));
  IT_EXPECT_GRPC_OK(StopCtr(id, 30));
  IT_EXPECT_GRPC_OK(RemoveCtr(id));
  EXPECT_THAT(ListCtrs(), IsEmpty());

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  EXPECT_THAT(ListPods({}), IsEmpty());
  // A stop by a prefix that names nothing is no error either.
  IT_EXPECT_GRPC_OK(StopCtr("0123456789abcdef", 0));
  ExpectNoLeaks("after stopping and removing gone objects");
}

// ---------------------------------------------------------------------------------------------
// kubectl debug --target=<c>: an ephemeral container created later in a running pod, in the
// PID namespace of the target container, sees the target's processes.

TEST_F(KubeletFeaturesIT, DebugContainerSeesTargetProcesses) {
  cri::PodSandboxConfig pod = PodConfig("debug", cri::NODE, cri::CONTAINER);
  std::string pod_id, app, debug;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("app", {"sleep", "4242"}), &app));
  IT_ASSERT_GRPC_OK(StartCtr(app));
  WaitForState(app, cri::CONTAINER_RUNNING, std::chrono::seconds(10));

  // As the kubelet creates an ephemeral container: later, with pid TARGET and target_id.
  cri::ContainerConfig dbg = CtrConfig("debugger", {"sleep", "1000"});
  auto* ns = dbg.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(cri::TARGET);
  ns->set_target_id(app);
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, dbg, &debug));
  IT_ASSERT_GRPC_OK(StartCtr(debug));

  const int app_pid = CtrPid(app), debug_pid = CtrPid(debug);
  ASSERT_GT(app_pid, 0);
  ASSERT_GT(debug_pid, 0);
  EXPECT_EQ(PidNamespaceOf(debug_pid), PidNamespaceOf(app_pid))
      << "the debug container is not in its target's PID namespace";
  EXPECT_NE(PidNamespaceOf(app_pid), PidNamespaceOf(::getpid()));

  // Inside: the target's init is PID 1 of the namespace, and ps lists both.
  std::string init = ExecOut(debug, {"cat", "/proc/1/cmdline"});
  EXPECT_EQ(init, std::string("sleep\0"
                              "4242\0",
                              11))
      << "PID 1 seen by the debug container";
  std::string listing = ExecOut(
      debug, {"sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"});
  EXPECT_THAT(listing, HasSubstr("sleep 4242"));
  EXPECT_THAT(listing, HasSubstr("sleep 1000"));
  if (HasApplet("ps")) {
    EXPECT_THAT(ExecOut(debug, {"ps"}), HasSubstr("sleep 4242"));
  }
  // The target itself sees the debugger too (one namespace, not a child of it).
  EXPECT_THAT(ExecOut(app, {"sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"}),
              HasSubstr("sleep 1000"));

  // Refused cleanly: no target id, an unknown target, a target in another pod, a target that
  // is not running.
  {
    cri::ContainerConfig bad = dbg;
    bad.mutable_metadata()->set_name("no-target");
    bad.mutable_linux()->mutable_security_context()->mutable_namespace_options()->clear_target_id();
    std::string id;
    grpc::Status s = CreateCtr(pod_id, pod, bad, &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    bad.mutable_metadata()->set_name("unknown-target");
    bad.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_target_id(
        std::string(64, 'f'));
    s = CreateCtr(pod_id, pod, bad, &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr(std::string(64, 'f')));
  }
  {
    cri::PodSandboxConfig other_pod = PodConfig("other", cri::NODE, cri::CONTAINER);
    std::string other_id, id;
    IT_ASSERT_GRPC_OK(RunPod(other_pod, &other_id));
    grpc::Status s = CreateCtr(other_id, other_pod, dbg, &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr(pod_id));
    IT_EXPECT_GRPC_OK(RemovePod(other_id));
  }
  {
    std::string done, id;
    IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("done", {"true"}), &done));
    IT_ASSERT_GRPC_OK(StartCtr(done));
    WaitForState(done, cri::CONTAINER_EXITED, std::chrono::seconds(10));
    cri::ContainerConfig late = dbg;
    late.mutable_metadata()->set_name("late");
    late.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_target_id(
        done);
    grpc::Status s = CreateCtr(pod_id, pod, late, &id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("not running"));
  }

  // The debug container stops on its own, the target keeps running.
  IT_EXPECT_GRPC_OK(StopCtr(debug, 0));
  EXPECT_EQ(CtrStatusOf(debug)->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(CtrStatusOf(app)->state(), cri::CONTAINER_RUNNING);
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after removing the debugged pod");
}

// ---------------------------------------------------------------------------------------------
// Stop signals: ContainerConfig.stop_signal wins over the image's StopSignal, which wins over
// SIGTERM; the process sees the signal (a shell trap says which one it got and exits with a code
// of its own), and ContainerStatus.stop_signal says which signal stops the container.

// A CRI Signal by its enum name (<signal.h> defines macros named like its constants).
cri::Signal CriSignal(const char* name) {
  cri::Signal s = cri::RUNTIME_DEFAULT;
  EXPECT_TRUE(cri::Signal_Parse(name, &s)) << name;
  return s;
}

TEST_F(KubeletFeaturesIT, StopSignalReachesTheProcess) {
  // The suite's busybox image with StopSignal SIGUSR2, pushed under a tag of its own.
  StatusOr<ImageSpec> spec = BusyboxImageSpec(MediaTypes::kDocker);
  IT_ASSERT_OK(spec.status());
  spec->stop_signal = "SIGUSR2";
  StatusOr<BuiltImage> built = BuildImage(*spec);
  IT_ASSERT_OK(built.status());
  IT_ASSERT_OK(
      PushImage(PushTarget{registry_->url(), "", "", "", ""}, kRepo, "stopsignal", *built));
  const std::string usr2_image = StrCat(registry_->host(), "/", kRepo, ":stopsignal");
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(usr2_image);
    cri::PullImageResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->images().PullImage(&ctx, req, &resp));
  }

  cri::PodSandboxConfig pod = PodConfig("stopsig", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  // Each signal has its own exit code; the shell is PID 1 of its namespace, so only trapped
  // signals reach it at all.
  const std::vector<std::string> trapper = {
      "sh", "-c",
      "trap 'echo got-USR1; exit 41' USR1; trap 'echo got-USR2; exit 42' USR2; "
      "trap 'echo got-TERM; exit 43' TERM; echo ready; while true; do sleep 1; done"};
  struct Case {
    std::string name, image;
    cri::Signal configured;
    cri::Signal reported;
    std::string log_line;
    int exit_code;
  };
  const std::vector<Case> cases = {
      {"configured", usr2_image, CriSignal("SIGUSR1"), CriSignal("SIGUSR1"), "got-USR1", 41},
      {"from-image", usr2_image, cri::RUNTIME_DEFAULT, CriSignal("SIGUSR2"), "got-USR2", 42},
      {"default", image_, cri::RUNTIME_DEFAULT, CriSignal("SIGTERM"), "got-TERM", 43},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    cri::ContainerConfig cfg = CtrConfig(c.name, trapper);
    cfg.mutable_image()->set_image(c.image);
    cfg.set_stop_signal(c.configured);
    std::string id;
    IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
    EXPECT_EQ(CtrStatusOf(id)->stop_signal(), c.reported);
    IT_ASSERT_GRPC_OK(StartCtr(id));
    const fs::path log = LogDir() / "stopsig" / (c.name + ".log");
    WaitForLog(
        log, [](const std::string& l) { return LogHasRecord(l, "stdout", "ready"); },
        std::chrono::seconds(10));
    IT_EXPECT_GRPC_OK(StopCtr(id, 30));
    cri::ContainerStatus st = WaitForState(id, cri::CONTAINER_EXITED, std::chrono::seconds(5));
    EXPECT_EQ(st.exit_code(), c.exit_code) << "the trap of the expected signal did not run";
    EXPECT_EQ(st.stop_signal(), c.reported);
    std::string text = WaitForLog(
        log, [&](const std::string& l) { return LogHasRecord(l, "stdout", c.log_line); },
        std::chrono::seconds(5));
    EXPECT_TRUE(LogHasRecord(text, "stdout", c.log_line)) << text;
  }
  // A real-time signal by its CRI name.
  {
    cri::ContainerConfig cfg = CtrConfig("realtime", {"sleep", "1000"});
    cfg.set_stop_signal(CriSignal("SIGRTMINPLUS3"));
    std::string id;
    IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
    EXPECT_EQ(CtrStatusOf(id)->stop_signal(), CriSignal("SIGRTMINPLUS3"));
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the stop signal containers");
}

// ---------------------------------------------------------------------------------------------
// Supplemental groups policy: Merge adds the groups the image's /etc/group gives the user,
// Strict only the primary group and the listed ones. ContainerStatus.user reports the identity
// the kernel shows for the container's init, which is what `id` sees inside.

std::set<int64_t> Numbers(const std::string& text) {
  std::set<int64_t> out;
  std::istringstream in(text);
  int64_t v;
  while (in >> v) out.insert(v);
  return out;
}

TEST_F(KubeletFeaturesIT, SupplementalGroupsPolicyAndContainerUser) {
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StatusResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->runtime().Status(&ctx, cri::StatusRequest(), &resp));
    EXPECT_TRUE(resp.features().supplemental_groups_policy());
  }
  cri::PodSandboxConfig pod = PodConfig("groups", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  struct Case {
    std::string name;
    cri::SupplementalGroupsPolicy policy;
    std::set<int64_t> groups;
  };
  // berthuser (1234:1234) is a member of berthextra (5678) in the image's /etc/group.
  const std::vector<Case> cases = {
      {"merge", cri::Merge, {kBerthUserGid, kBerthExtraGid, 4000}},
      {"strict", cri::Strict, {kBerthUserGid, 4000}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    cri::ContainerConfig cfg = CtrConfig(c.name, {"sleep", "1000"});
    auto* sc = cfg.mutable_linux()->mutable_security_context();
    sc->mutable_run_as_user()->set_value(kBerthUserUid);
    sc->add_supplemental_groups(4000);
    sc->set_supplemental_groups_policy(c.policy);
    std::string id;
    IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
    IT_ASSERT_GRPC_OK(StartCtr(id));
    EXPECT_EQ(Numbers(ExecOut(id, {"id", "-G"})), c.groups);
    EXPECT_EQ(Trim(ExecOut(id, {"id", "-u"})), StrCat(kBerthUserUid));
    // What the status says is what the kernel says of the init.
    std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
    ASSERT_TRUE(st.has_value());
    const cri::LinuxContainerUser& user = st->user().linux();
    EXPECT_EQ(user.uid(), kBerthUserUid);
    EXPECT_EQ(user.gid(), kBerthUserGid);
    EXPECT_EQ(
        std::set<int64_t>(user.supplemental_groups().begin(), user.supplemental_groups().end()),
        c.groups);
    const std::string proc_status = ReadOr(StrCat("/proc/", CtrPid(id), "/status"));
    const size_t at = proc_status.find("Groups:");
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(Numbers(proc_status.substr(at + 7, proc_status.find('\n', at) - at - 7)), c.groups);
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the groups containers");
}

// ---------------------------------------------------------------------------------------------
// In-place pod resize: UpdatePodSandboxResources sizes the pod cgroup, UpdateContainerResources
// the container's, in the order the kubelet uses (grow the pod first, shrink it last); the
// container keeps running as the same process throughout.

// The value of a cgroup file of `dir` (below every hierarchy's root), v1 or v2.
std::string CgroupValue(const std::string& dir, const std::string& v1_controller,
                        const std::string& v1_file, const std::string& v2_file) {
  if (ReadOr("/sys/fs/cgroup/cgroup.controllers").find("memory") != std::string::npos) {
    return Trim(ReadOr(StrCat("/sys/fs/cgroup", dir, "/", v2_file), "<missing>"));
  }
  return Trim(ReadOr(StrCat("/sys/fs/cgroup/", v1_controller, dir, "/", v1_file), "<missing>"));
}

TEST_F(KubeletFeaturesIT, PodResizeInPlace) {
  const std::string top = StrCat("berthresize", RandomHex(3));
  const std::string pod_cgroup = StrCat("/", top, "/pod-", RandomHex(3));
  RemoveCgroupsAfterTest(top);
  cri::PodSandboxConfig pod = PodConfig("resize", cri::NODE, cri::CONTAINER);
  pod.mutable_linux()->set_cgroup_parent(pod_cgroup);
  std::string pod_id, id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  cri::ContainerConfig cfg = CtrConfig("app", {"sleep", "1000"});
  cfg.mutable_linux()->mutable_resources()->set_cpu_period(100000);
  cfg.mutable_linux()->mutable_resources()->set_cpu_quota(50000);
  cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  const int pid = CtrPid(id);
  const int64_t started_at = CtrStatusOf(id)->started_at();
  ASSERT_GT(pid, 0);
  const std::string ctr_cgroup = StrCat(pod_cgroup, "/", id);

  auto quota = [&](const std::string& dir) {
    std::string v = CgroupValue(dir, "cpu", "cpu.cfs_quota_us", "cpu.max");
    return v.substr(0, v.find(' '));
  };
  auto memory = [&](const std::string& dir) {
    return CgroupValue(dir, "memory", "memory.limit_in_bytes", "memory.max");
  };
  auto resize_pod = [&](int64_t cpu_quota, int64_t mem, int64_t overhead_mem) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::UpdatePodSandboxResourcesRequest req;
    req.set_pod_sandbox_id(pod_id);
    req.mutable_resources()->set_cpu_period(100000);
    req.mutable_resources()->set_cpu_quota(cpu_quota);
    req.mutable_resources()->set_memory_limit_in_bytes(mem);
    req.mutable_overhead()->set_memory_limit_in_bytes(overhead_mem);
    cri::UpdatePodSandboxResourcesResponse resp;
    return berthd_->runtime().UpdatePodSandboxResources(&ctx, req, &resp);
  };
  auto resize_ctr = [&](int64_t cpu_quota, int64_t mem) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::UpdateContainerResourcesRequest req;
    req.set_container_id(id);
    req.mutable_linux()->set_cpu_period(100000);
    req.mutable_linux()->set_cpu_quota(cpu_quota);
    req.mutable_linux()->set_memory_limit_in_bytes(mem);
    cri::UpdateContainerResourcesResponse resp;
    return berthd_->runtime().UpdateContainerResources(&ctx, req, &resp);
  };
  EXPECT_EQ(quota(ctr_cgroup), "50000");
  EXPECT_EQ(memory(ctr_cgroup), StrCat(64 << 20));

  // Grow: the pod first, then the container.
  IT_ASSERT_GRPC_OK(resize_pod(300000, 256 << 20, 16 << 20));
  EXPECT_EQ(quota(pod_cgroup), "300000");
  EXPECT_EQ(memory(pod_cgroup), StrCat((256 + 16) << 20)) << "resources + overhead";
  IT_ASSERT_GRPC_OK(resize_ctr(200000, 128 << 20));
  EXPECT_EQ(quota(ctr_cgroup), "200000");
  EXPECT_EQ(memory(ctr_cgroup), StrCat(128 << 20));
  // Shrink: the container first, then the pod.
  IT_ASSERT_GRPC_OK(resize_ctr(40000, 48 << 20));
  IT_ASSERT_GRPC_OK(resize_pod(60000, 96 << 20, 0));
  EXPECT_EQ(quota(pod_cgroup), "60000");
  EXPECT_EQ(memory(pod_cgroup), StrCat(96 << 20));
  EXPECT_EQ(quota(ctr_cgroup), "40000");
  EXPECT_EQ(memory(ctr_cgroup), StrCat(48 << 20));

  // No restart: same process, same start time, still running; the pod record has the new size.
  std::optional<cri::ContainerStatus> st = CtrStatusOf(id);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(st->started_at(), started_at);
  EXPECT_EQ(CtrPid(id), pid);
  EXPECT_EQ(st->resources().linux().cpu_quota(), 40000);
  nlohmann::json info = PodInfo(pod_id);
  EXPECT_EQ(info["config"]["resources"]["memory_limit_in_bytes"], 96 << 20) << info.dump();
  // The container's process is in the resized pod cgroup.
  EXPECT_THAT(ReadOr(StrCat("/proc/", pid, "/cgroup")), HasSubstr(ctr_cgroup));

  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::UpdatePodSandboxResourcesRequest req;
    req.set_pod_sandbox_id(std::string(64, 'a'));
    cri::UpdatePodSandboxResourcesResponse resp;
    EXPECT_EQ(berthd_->runtime().UpdatePodSandboxResources(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  IT_EXPECT_GRPC_OK(StopPod(pod_id));
  EXPECT_EQ(resize_pod(100000, 1 << 30, 0).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after resizing the pod");
}

// ---------------------------------------------------------------------------------------------
// CDI devices: a spec in a temp spec dir exposes the host's /dev/null under another name, with
// an env var and a bind mount; asked for by ContainerConfig.CDI_devices or a cdi.k8s.io/
// annotation, the container gets all three. An unknown device fails CreateContainer naming it.

std::string HexDevice(dev_t rdev) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%x:%x", major(rdev), minor(rdev));
  return buf;
}

class CdiDevicesIT : public KubeletFeaturesIT {
 protected:
  fs::path SpecDir() const { return berthd_->dir() / "cdi-run"; }
  void BeforeDaemonStart() override {
    IT_ASSERT_OK(MakeDirs(berthd_->dir() / "cdi-etc"));
    IT_ASSERT_OK(MakeDirs(SpecDir()));
    IT_ASSERT_OK(MakeDirs(berthd_->dir() / "cdi-data"));
    IT_ASSERT_OK(
        WriteFileAtomic(berthd_->dir() / "cdi-data" / "firmware.bin", "vendor firmware\n"));
    const std::string yaml = StrCat(
        "cdiVersion: \"0.6.0\"\n"
        "kind: berth.test/null\n"
        "containerEdits:\n"
        "  env: [BERTH_CDI_VENDOR=test]\n"
        "devices:\n"
        "- name: null0\n"
        "  containerEdits:\n"
        "    env: [BERTH_CDI_DEVICE=null0]\n"
        "    deviceNodes:\n"
        "    - path: /dev/berth-null0\n"
        "      hostPath: /dev/null\n"
        "      permissions: rw\n"
        "    mounts:\n"
        "    - hostPath: ",
        (berthd_->dir() / "cdi-data").string(),
        "\n"
        "      containerPath: /opt/berth-cdi\n"
        "      options: [ro]\n");
    IT_ASSERT_OK(WriteFileAtomic(SpecDir() / "berth-null.yaml", yaml));
    IT_ASSERT_OK(WriteFileAtomic(
        berthd_->dir() / "cdi-etc" / "zero.json",
        R"({"cdiVersion":"1.0.0","kind":"berth.test/zero","devices":[{"name":"zero0",
            "containerEdits":{"env":["BERTH_CDI_DEVICE=zero0"],
            "deviceNodes":[{"path":"/dev/berth-zero0","hostPath":"/dev/zero"}]}}]})"));
  }
  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> args = DefaultArgs();
    args.push_back("--cdi-spec-dir");
    args.push_back(StrCat((berthd_->dir() / "cdi-etc").string(), ":", SpecDir().string()));
    return args;
  }
};

TEST_F(CdiDevicesIT, CdiDeviceNodeEnvAndMountReachTheContainer) {
  cri::PodSandboxConfig pod = PodConfig("cdi", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  struct stat null_st {
  }, zero_st{};
  ASSERT_EQ(::stat("/dev/null", &null_st), 0);
  ASSERT_EQ(::stat("/dev/zero", &zero_st), 0);

  // By the CRI field.
  cri::ContainerConfig cfg = CtrConfig("by-field", {"sleep", "1000"});
  cfg.add_cdi_devices()->set_name("berth.test/null=null0");
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  EXPECT_EQ(Trim(ExecOut(id, {"stat", "-c", "%F %t:%T", "/dev/berth-null0"})),
            StrCat("character special file ", HexDevice(null_st.st_rdev)));
  std::string env = ExecOut(id, {"env"});
  EXPECT_THAT(env, HasSubstr("BERTH_CDI_DEVICE=null0\n"));
  EXPECT_THAT(env, HasSubstr("BERTH_CDI_VENDOR=test\n"));
  // The device is usable (the device cgroup allows it), the mount read-only.
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "echo data > /dev/berth-null0 && echo written"}), "written\n");
  EXPECT_EQ(ExecOut(id, {"cat", "/opt/berth-cdi/firmware.bin"}), "vendor firmware\n");
  {
    cri::ExecSyncResponse r;
    IT_EXPECT_GRPC_OK(Exec(id, {"touch", "/opt/berth-cdi/new"}, 10, &r));
    EXPECT_NE(r.exit_code(), 0) << "the CDI mount is read-only";
  }

  // By annotation (what DRA drivers' claims become), from the other spec dir; the spec file
  // is read at create time, so a spec written after berthd started counts.
  IT_ASSERT_OK(
      WriteFileAtomic(SpecDir() / "late.json",
                      R"({"cdiVersion":"0.5.0","kind":"berth.test/late","devices":[{"name":"l0",
          "containerEdits":{"env":["BERTH_CDI_LATE=yes"]}}]})"));
  cri::ContainerConfig ann = CtrConfig("by-annotation", {"sleep", "1000"});
  (*ann.mutable_annotations())["cdi.k8s.io/claim-1"] = "berth.test/zero=zero0,berth.test/late=l0";
  std::string id2;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, ann, &id2));
  IT_ASSERT_GRPC_OK(StartCtr(id2));
  EXPECT_EQ(Trim(ExecOut(id2, {"stat", "-c", "%t:%T", "/dev/berth-zero0"})),
            HexDevice(zero_st.st_rdev));
  EXPECT_EQ(ExecOut(id2, {"sh", "-c", "head -c 4 /dev/berth-zero0 | wc -c"}), "4\n");
  EXPECT_THAT(ExecOut(id2, {"env"}), HasSubstr("BERTH_CDI_LATE=yes\n"));

  // Unknown or malformed devices: a clear error naming the device; nothing is left behind.
  {
    cri::ContainerConfig bad = CtrConfig("unknown", {"sleep", "1000"});
    bad.add_cdi_devices()->set_name("berth.test/null=null9");
    std::string bad_id;
    grpc::Status s = CreateCtr(pod_id, pod, bad, &bad_id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("berth.test/null=null9"));
    bad.mutable_metadata()->set_name("malformed");
    bad.clear_cdi_devices();
    (*bad.mutable_annotations())["cdi.k8s.io/x"] = "not-a-cdi-name";
    s = CreateCtr(pod_id, pod, bad, &bad_id);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("not-a-cdi-name"));
  }
  EXPECT_EQ(ListCtrs().size(), 2u);
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the CDI containers");
}

// ---------------------------------------------------------------------------------------------
// Status lists a runtime handler only when it runs containers here, with the features its probe
// found; berthctl info shows the handlers and the runtime-wide features as newer crictl does.

TEST_F(KubeletFeaturesIT, StatusAndBerthctlInfoShowWhatWorks) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  cri::StatusRequest req;
  req.set_verbose(true);
  cri::StatusResponse resp;
  IT_ASSERT_GRPC_OK(berthd_->runtime().Status(&ctx, req, &resp));
  auto it = resp.info().find("runtimeHandlers");
  ASSERT_NE(it, resp.info().end());
  const nlohmann::json probed = nlohmann::json::parse(it->second, nullptr, false);
  ASSERT_TRUE(probed.is_object()) << it->second;
  std::map<std::string, const cri::RuntimeHandler*> listed;
  for (const auto& h : resp.runtime_handlers()) listed[h.name()] = &h;
  ASSERT_TRUE(listed.contains("")) << "the default handler is listed as \"\"";
  int working = 0;
  for (const auto& [name, p] : probed.items()) {
    SCOPED_TRACE(name);
    if (!p.value("works", false)) {
      EXPECT_FALSE(listed.contains(name)) << "a handler that cannot run containers is listed";
      continue;
    }
    ++working;
    ASSERT_TRUE(listed.contains(name));
    EXPECT_EQ(listed[name]->features().recursive_read_only_mounts(),
              p.value("recursiveReadOnlyMounts", false));
    EXPECT_EQ(listed[name]->features().user_namespaces(), p.value("userNamespaces", false));
  }
  EXPECT_EQ(static_cast<int>(listed.size()), working + 1);
  EXPECT_TRUE(resp.features().supplemental_groups_policy());

  const std::string endpoint = StrCat("unix://", berthd_->socket_path().string());
  const fs::path berthctl = fs::path(BERTHD_PATH).parent_path() / "berthctl";
  StatusOr<ProcessResult> r =
      RunProcess({berthctl.string(), "-r", endpoint, "info", "-q", "-o", "json"}, RunOptions{});
  IT_ASSERT_OK(r.status());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  const nlohmann::json info = nlohmann::json::parse(r->out, nullptr, false);
  ASSERT_TRUE(info.is_object()) << r->out;
  EXPECT_EQ(info["features"], nlohmann::json({{"supplemental_groups_policy", true}})) << r->out;
  ASSERT_TRUE(info["runtimeHandlers"].is_array()) << r->out;
  std::set<std::string> names;
  for (const auto& h : info["runtimeHandlers"]) names.insert(h.value("name", ""));
  std::set<std::string> want;
  for (const auto& [name, h] : listed) want.insert(name);
  EXPECT_EQ(names, want) << r->out;
  EXPECT_TRUE(info.contains("status")) << r->out;
  // Without -q the verbose info has berthd's own runtimeHandlers (every configured handler,
  // working or not, with its probe error), which wins over the list as in crictl.
  r = RunProcess({berthctl.string(), "-r", endpoint, "info", "-o", "json"}, RunOptions{});
  IT_ASSERT_OK(r.status());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  const nlohmann::json verbose = nlohmann::json::parse(r->out, nullptr, false);
  ASSERT_TRUE(verbose.is_object()) << r->out;
  EXPECT_EQ(verbose["runtimeHandlers"], probed) << r->out;
}

}  // namespace
}  // namespace berth::testing
