// The native exec path (runtime.exec_mode = "native", oci/native_exec.h) against `runc exec`
// (exec_mode = "runc"): each process setting an exec gets must be what the container's init
// got from runc (user, groups, capabilities, no_new_privs, seccomp, cgroups, working directory,
// environment), checked through a real berthd under both modes. And the CVE-2019-5736 class:
// a process in the container cannot reach the exec helper's or the exec'd process's
// /proc/<pid>/exe or descriptors while they still run berthd's code.
#include "common/proc.h"
#include "runtime_fixture.h"  // first: see support/berthd_process.h

namespace berth::testing {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string FileSha256(const std::string& path) {
  auto data = ReadFile(path);
  return data.ok() ? Sha256::Of(*data).str() : "unreadable";
}

// "Key:\tvalue" lines of /proc/<pid>/status.
std::map<std::string, std::string> StatusFields(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const std::string& line : Lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == '\t' || value.front() == ' ')) value.erase(0, 1);
    out[line.substr(0, colon)] = Trim(value);
  }
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class NativeExecIT : public RuntimeServiceIT, public ::testing::WithParamInterface<const char*> {
 protected:
  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> args = DefaultArgs();
    args.push_back(StrCat("--exec-mode=", GetParam()));
    return args;
  }
};

// Every process setting of an exec equals the init's (which runc applied from the same
// config.json), and has the value the container config asks for.
TEST_P(NativeExecIT, ProcessSettingsAreTheContainers) {
  cri::PodSandboxConfig pod = PodConfig("nexec", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  cri::ContainerConfig cfg = CtrConfig("settings", {"sleep", "3600"});
  auto* sc = cfg.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(1000);
  sc->mutable_run_as_group()->set_value(2000);
  sc->add_supplemental_groups(3000);
  sc->add_supplemental_groups(4000);
  sc->mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  sc->mutable_capabilities()->add_drop_capabilities("CHOWN");
  sc->set_no_new_privs(true);
  sc->mutable_seccomp()->set_profile_type(cri::SecurityProfile::RuntimeDefault);
  cfg.set_working_dir("/tmp");
  auto* env = cfg.add_envs();
  env->set_key("GREETING");
  env->set_value("hello world");
  std::string id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  const int init = CtrPid(id);
  ASSERT_GT(init, 0);

  // User, groups, capabilities, no_new_privs, seccomp: /proc/self/status of the exec.
  auto mine = StatusFields(ExecOut(id, {"cat", "/proc/self/status"}));
  auto inits = StatusFields(ReadOr(StrCat("/proc/", init, "/status")));
  for (const char* key : {"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                          "NoNewPrivs", "Seccomp", "Seccomp_filters"}) {
    EXPECT_EQ(mine[key], inits[key]) << key << " of the exec differs from the init's";
  }
  EXPECT_EQ(mine["Uid"], "1000\t1000\t1000\t1000");
  EXPECT_EQ(mine["Gid"], "2000\t2000\t2000\t2000");
  EXPECT_THAT(mine["Groups"], HasSubstr("3000 4000"));
  EXPECT_EQ(mine["NoNewPrivs"], "1");
  EXPECT_EQ(mine["Seccomp"], "2") << "no seccomp filter";
  // A non-root user keeps the container's capabilities as its bounding set only.
  const uint64_t bounding = std::stoull(mine["CapBnd"], nullptr, 16);
  EXPECT_TRUE(bounding & (1ULL << 12)) << "CAP_NET_ADMIN was added";
  EXPECT_FALSE(bounding & (1ULL << 0)) << "CAP_CHOWN was dropped";
  EXPECT_FALSE(bounding & (1ULL << 21)) << "CAP_SYS_ADMIN is not a default capability";
  EXPECT_EQ(ExecOut(id, {"id"}), "uid=1000 gid=2000 groups=2000,3000,4000\n");

  // Cgroups: the init's, in every hierarchy.
  EXPECT_EQ(ExecOut(id, {"cat", "/proc/self/cgroup"}), ReadOr(StrCat("/proc/", init, "/cgroup")));
  // Namespaces: the init's.
  for (const char* ns : {"mnt", "pid", "net", "ipc", "uts"}) {
    char link[64] = {};
    ASSERT_GT(::readlink(StrCat("/proc/", init, "/ns/", ns).c_str(), link, sizeof link - 1), 0);
    EXPECT_EQ(ExecOut(id, {"readlink", StrCat("/proc/self/ns/", ns)}), StrCat(link, "\n")) << ns;
  }
  // Working directory and environment (runc adds HOME from the container's passwd).
  EXPECT_EQ(ExecOut(id, {"pwd"}), "/tmp\n");
  std::vector<std::string> exec_env = Lines(ExecOut(id, {"env"}));
  std::string init_environ = ReadOr(StrCat("/proc/", init, "/environ"));
  std::vector<std::string> init_env;
  for (size_t start = 0; start < init_environ.size();) {
    size_t end = init_environ.find('\0', start);
    if (end == std::string::npos) end = init_environ.size();
    init_env.push_back(init_environ.substr(start, end - start));
    start = end + 1;
  }
  EXPECT_EQ(Sorted(exec_env), Sorted(init_env));
  EXPECT_THAT(exec_env, ::testing::Contains("GREETING=hello world"));
  EXPECT_THAT(exec_env, ::testing::Contains(::testing::StartsWith("HOME=")));

  // The seccomp filter denies what the profile denies: unshare(CLONE_NEWUSER) needs no
  // capability (see the unconfined container below), the default profile refuses it.
  cri::ExecSyncResponse r;
  IT_EXPECT_GRPC_OK(Exec(id, {"unshare", "-U", "true"}, 10, &r));
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_THAT(r.stderr(), HasSubstr("Operation not permitted"));

  cri::ContainerConfig open_cfg = CtrConfig("unconfined", {"sleep", "3600"});
  std::string open_id;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, open_cfg, &open_id));
  IT_ASSERT_GRPC_OK(StartCtr(open_id));
  IT_EXPECT_GRPC_OK(Exec(open_id, {"unshare", "-U", "true"}, 10, &r));
  EXPECT_EQ(r.exit_code(), 0) << "unshare -U without seccomp: " << r.stderr();
  auto open_status = StatusFields(ExecOut(open_id, {"cat", "/proc/self/status"}));
  EXPECT_EQ(open_status["Seccomp"], "0");
  EXPECT_EQ(open_status["NoNewPrivs"], "0");
  EXPECT_EQ(ExecOut(open_id, {"id"}), "uid=0(root) gid=0(root) groups=0(root)\n");
  auto open_init = StatusFields(ReadOr(StrCat("/proc/", CtrPid(open_id), "/status")));
  for (const char* key : {"Uid", "Gid", "Groups", "CapPrm", "CapEff", "CapBnd", "Seccomp"}) {
    EXPECT_EQ(open_status[key], open_init[key]) << key << " of the exec differs from the init's";
  }
  EXPECT_NE(std::stoull(open_status["CapEff"], nullptr, 16) & 1, 0u) << "root keeps CAP_CHOWN";

  // Exit codes, a timeout that kills, and a missing executable, as with runc.
  IT_EXPECT_GRPC_OK(Exec(id, {"sh", "-c", "exit 7"}, 10, &r));
  EXPECT_EQ(r.exit_code(), 7);
  auto start = Clock::now();
  grpc::Status timed = Exec(id, {"sleep", "30"}, 1, &r);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(timed.ok() && r.exit_code() == 0) << "a timed-out exec reported success";
  EXPECT_FALSE(Exec(id, {"no-such-program"}, 10, &r).ok());
  EXPECT_EQ(ExecOut(id, {"sh", "-c", "ps -o comm | grep -c sleep"}), "1\n")
      << "the timed-out sleep was not killed";

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the execs");
}

// An exec that races the end of the container (its init killed from outside, as an OOM kill or
// a StopContainer would) is FAILED_PRECONDITION whichever step notices, never the runtime's
// UNKNOWN "container does not exist": before the monitor wrote the exit file, while the init is a
// zombie, and after it was reaped.
TEST_P(NativeExecIT, ExecIntoAContainerWhoseInitDiedIsFailedPrecondition) {
  cri::PodSandboxConfig pod = PodConfig("nexecdead", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  for (int round = 0; round < 4; ++round) {
    std::string id;
    IT_ASSERT_GRPC_OK(
        CreateCtr(pod_id, pod, CtrConfig(StrCat("dead", round), {"sleep", "3600"}), &id));
    IT_ASSERT_GRPC_OK(StartCtr(id));
    const int init = CtrPid(id);
    ASSERT_GT(init, 0);
    // Later rounds give the monitor more time to notice, so each step gets its turn.
    ASSERT_EQ(::kill(init, SIGKILL), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(round * round * 5));
    cri::ExecSyncResponse r;
    grpc::Status s = Exec(id, {"true"}, 10, &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << "round " << round << ": " << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr(id)) << "round " << round;
  }
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the execs into dead containers");
}

INSTANTIATE_TEST_SUITE_P(ExecModes, NativeExecIT, ::testing::Values("native", "runc"),
                         [](const auto& info) { return std::string(info.param); });

// ---------------------------------------------------------------------------------------------
// CVE-2019-5736 class: the helper and the process before its execve() run berthd's code, and
// /proc/<pid>/exe of both is berthd's binary. berthd stops them there for this test
// (BERTH_TEST_EXEC_STOP) and a process of a container in the same (host) PID namespace, with
// the same uid and capabilities as the exec'd process, tries to reach them.

constexpr char kStopMarker[] = "berth-test-stop-here";

class NativeExecAttackIT : public RuntimeServiceIT {
 protected:
  void BeforeDaemonStart() override { ::setenv("BERTH_TEST_EXEC_STOP", kStopMarker, 1); }
  void TearDown() override {
    RuntimeServiceIT::TearDown();
    ::unsetenv("BERTH_TEST_EXEC_STOP");
  }
  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> args = DefaultArgs();
    args.push_back("--exec-mode=native");
    return args;
  }

  // berthd's child that is stopped (state T) and runs berthd's binary; 0 after 10 s.
  pid_t StoppedChildOfBerthd() {
    for (int i = 0; i < 500; ++i) {
      for (const std::string& name : DirEntries("/proc")) {
        std::optional<pid_t> pid = ParseDecimal<pid_t>(name);
        std::optional<ProcessStat> stat = pid ? ReadProcessStat(*pid) : std::nullopt;
        if (stat && stat->state == 'T' && stat->ppid == berthd_->pid()) return *pid;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }

  // From the attacker container: every way to the stopped process's binary and descriptors.
  // Each line is "<what> <exit code>"; a descriptor that opens adds "open-fd-N" or
  // "write-fd-N". (Listing the names in /proc/<pid>/fd needs only CAP_DAC_OVERRIDE, opening
  // them needs ptrace access.)
  std::string Attack(const std::string& attacker, pid_t target) {
    const std::string p = StrCat("/proc/", target);
    std::string script;
    script += StrCat("readlink ", p, "/exe >/dev/null 2>&1; echo readlink-exe $?; ");
    script += StrCat("head -c1 ", p, "/exe >/dev/null 2>&1; echo read-exe $?; ");
    script += StrCat("echo x 2>/dev/null >>", p, "/exe; echo write-exe $?; ");
    script += StrCat("for fd in 0 1 2 3 4 5 6 7 8 9 10; do ");
    script += StrCat("echo x 2>/dev/null >", p, "/fd/$fd && echo write-fd-$fd; ");
    script += StrCat("head -c0 ", p, "/fd/$fd 2>/dev/null && echo open-fd-$fd; done; ");
    script += StrCat("head -c1 ", p, "/mem >/dev/null 2>&1; echo read-mem $?; ");
    script += StrCat("ls ", p, "/root/ >/dev/null 2>&1; echo list-root $?");
    return ExecOut(attacker, {"sh", "-c", script});
  }
};

TEST_F(NativeExecAttackIT, ContainerCannotReachTheHelperOrTheProcessBeforeExec) {
  const std::string binary = BERTHD_PATH;
  const std::string hash_before = FileSha256(binary);
  cri::PodSandboxConfig pod = PodConfig("attack", cri::NODE, cri::NODE);  // host PID namespace
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  std::string target, attacker;
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("target", {"sleep", "3600"}), &target));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("attacker", {"sleep", "3600"}), &attacker));
  IT_ASSERT_GRPC_OK(StartCtr(target));
  IT_ASSERT_GRPC_OK(StartCtr(attacker));

  // The control: the attacker reaches a process of the same uid and capabilities that is
  // dumpable (the target's init), so the refusals below are the exec path's doing.
  const int target_init = CtrPid(target);
  ASSERT_GT(target_init, 0);
  const std::string control = Attack(attacker, target_init);
  EXPECT_THAT(control, HasSubstr("readlink-exe 0")) << control;
  EXPECT_THAT(control, HasSubstr("list-root 0")) << control;
  EXPECT_THAT(control, HasSubstr("open-fd-1")) << control;

  cri::ExecSyncResponse resp;
  grpc::Status exec_status;
  pid_t helper = 0, process = 0;
  std::thread exec([&] {
    exec_status = Exec(target, {"sh", "-c", "echo ran", kStopMarker}, 60, &resp);
  });
  // Whatever fails below, nothing stays stopped.
  ScopeGuard join([&] {
    if (helper > 0) ::kill(helper, SIGCONT);
    if (process > 0) ::kill(process, SIGCONT);
    exec.join();
  });
  // 1. The helper, in the container's namespaces and cgroups, before it clones the process.
  helper = StoppedChildOfBerthd();
  ASSERT_GT(helper, 0) << "the exec helper did not stop";
  EXPECT_EQ(ReadOr(StrCat("/proc/", helper, "/cgroup")),
            ReadOr(StrCat("/proc/", target_init, "/cgroup")))
      << "the helper is not in the container's cgroups yet";
  EXPECT_THAT(ReadOr(StrCat("/proc/", helper, "/status")), HasSubstr("NoNewPrivs:\t0"));
  std::string got = Attack(attacker, helper);
  for (const char* what : {"readlink-exe", "read-exe", "write-exe", "read-mem", "list-root"}) {
    EXPECT_THAT(got, HasSubstr(StrCat(what, " 1"))) << "helper: " << got;
  }
  EXPECT_THAT(got, ::testing::Not(HasSubstr("-fd-"))) << "helper: " << got;
  ::kill(helper, SIGCONT);
  // 2. The process, with the container's uid, capabilities and seccomp filter, before execve.
  process = StoppedChildOfBerthd();
  ASSERT_GT(process, 0) << "the exec'd process did not stop";
  char exe[PATH_MAX] = {};
  ASSERT_GT(::readlink(StrCat("/proc/", process, "/exe").c_str(), exe, sizeof exe - 1), 0);
  EXPECT_EQ(fs::path(exe), fs::canonical(binary)) << "not berthd's code any more";
  auto process_status = StatusFields(ReadOr(StrCat("/proc/", process, "/status")));
  auto init_status = StatusFields(ReadOr(StrCat("/proc/", target_init, "/status")));
  EXPECT_EQ(process_status["CapEff"], init_status["CapEff"]);
  EXPECT_EQ(process_status["Uid"], init_status["Uid"]);
  got = Attack(attacker, process);
  for (const char* what : {"readlink-exe", "read-exe", "write-exe", "read-mem", "list-root"}) {
    EXPECT_THAT(got, HasSubstr(StrCat(what, " 1"))) << "process: " << got;
  }
  EXPECT_THAT(got, ::testing::Not(HasSubstr("-fd-"))) << "process: " << got;
  ::kill(process, SIGCONT);
  exec.join();
  join.Cancel();
  IT_EXPECT_GRPC_OK(exec_status);
  EXPECT_EQ(resp.stdout(), "ran\n");
  EXPECT_EQ(resp.exit_code(), 0);
  // After execve the process is the container's binary, no longer berthd's.
  EXPECT_EQ(FileSha256(binary), hash_before) << "berthd's binary changed";

  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the attack");
}

}  // namespace
}  // namespace berth::testing
