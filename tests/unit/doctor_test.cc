// berthd doctor: each check's pass and fail case, against fixture trees (cgroup layouts,
// /proc status files, CNI and registry directories) and synthetic runtime probe results.
#include "doctor/doctor.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.h"

namespace berth::doctor {
namespace {

namespace fs = std::filesystem;

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berth-doctor-test-" + RandomHex(4));
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }

  void Write(const fs::path& rel, const std::string& text) {
    ASSERT_TRUE(MakeDirs((dir_ / rel).parent_path()).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ / rel, text).ok());
  }
  // A v1 hierarchy directory as the kernel shows it (cgroup.procs inside).
  void V1(const std::string& name) { Write(fs::path("cg") / name / "cgroup.procs", ""); }

  // A /proc/self/status with the given CapEff and Seccomp lines.
  fs::path Status(const std::string& cap_eff, bool seccomp = true) {
    std::string text = "Name:\tberthd\nCapInh:\t0000000000000000\nCapEff:\t" + cap_eff + "\n";
    if (seccomp) text += "Seccomp:\t0\nSeccomp_filters:\t0\n";
    Write("status", text);
    return dir_ / "status";
  }

  fs::path dir_;
};

TEST_F(DoctorTest, CgroupLayouts) {
  // Nothing mounted.
  EXPECT_EQ(DetectCgroups(dir_ / "cg").layout, CgroupLayout::kNone);
  EXPECT_EQ(CheckCgroups(DetectCgroups(dir_ / "cg")).outcome, Outcome::kFail);

  // Hybrid as on systemd's default of Debian 10/11: v1 controllers plus a v2 tree at unified.
  for (const char* c : {"cpu,cpuacct", "memory", "pids", "devices", "freezer", "cpuset", "blkio",
                        "hugetlb", "systemd"}) {
    V1(c);
  }
  Write("cg/unified/cgroup.controllers", "");
  CgroupInfo hybrid = DetectCgroups(dir_ / "cg");
  EXPECT_EQ(hybrid.layout, CgroupLayout::kHybrid);
  EXPECT_EQ(hybrid.v2_path, dir_ / "cg" / "unified");
  EXPECT_EQ(hybrid.v1_controllers,
            (std::vector<std::string>{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer",
                                      "hugetlb", "memory", "name=systemd", "pids"}));
  Check c = CheckCgroups(hybrid);
  EXPECT_EQ(c.outcome, Outcome::kPass) << c.summary << " / " << c.why;
  EXPECT_EQ(c.details["layout"], "hybrid");
  EXPECT_NE(c.why.find("crun refuses"), std::string::npos) << c.why;

  // Without the unified tree it is plain v1; a missing required controller fails and says
  // how to mount it.
  ASSERT_TRUE(RemoveAll(dir_ / "cg" / "unified").ok());
  ASSERT_TRUE(RemoveAll(dir_ / "cg" / "pids").ok());
  CgroupInfo v1 = DetectCgroups(dir_ / "cg");
  EXPECT_EQ(v1.layout, CgroupLayout::kV1);
  c = CheckCgroups(v1);
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.why.find("pids"), std::string::npos) << c.why;
  EXPECT_NE(c.fix.find("mount -t cgroup"), std::string::npos) << c.fix;

  // Pure v2.
  ASSERT_TRUE(RemoveAll(dir_ / "cg").ok());
  Write("cg/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  CgroupInfo v2 = DetectCgroups(dir_ / "cg");
  EXPECT_EQ(v2.layout, CgroupLayout::kV2);
  EXPECT_EQ(CheckCgroups(v2).outcome, Outcome::kPass) << CheckCgroups(v2).summary;
  // v2 with memory not delegated: fail, and the fix names cgroup.subtree_control.
  Write("cg/cgroup.controllers", "cpu io pids\n");
  c = CheckCgroups(DetectCgroups(dir_ / "cg"));
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.fix.find("cgroup.subtree_control"), std::string::npos) << c.fix;
}

TEST_F(DoctorTest, RuntimeHandlersExplainCrunOnHybridHosts) {
  CgroupInfo hybrid;
  hybrid.layout = CgroupLayout::kHybrid;
  hybrid.v2_path = "/sys/fs/cgroup/unified";
  hybrid.v2_controllers = {"hugetlb"};
  HandlerFinding runc{"runc", "runc", "/usr/sbin/runc", "runc version 1.1.5", true, {}};
  runc.probe.works = true;
  HandlerFinding crun{"crun", "crun", "/usr/bin/crun", "crun version 1.8.1", true, {}};
  crun.probe.error = "cgroups in hybrid mode not supported, drop all controllers from cgroupv2";
  HandlerFinding kata{"kata", "/opt/kata/bin/kata-runtime", "", "", false, {}};
  std::vector<HandlerFinding> handlers = {crun, runc, kata};
  EXPECT_EQ(ChooseDefaultHandler(handlers, ""), "runc");
  EXPECT_EQ(ChooseDefaultHandler(handlers, "crun"), "crun");

  std::vector<Check> checks = CheckRuntimeHandlers(handlers, "runc", hybrid);
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[0].name, "runtime-handler/crun");
  EXPECT_EQ(checks[0].outcome, Outcome::kWarn);
  EXPECT_NE(checks[0].why.find("hybrid"), std::string::npos) << checks[0].why;
  EXPECT_NE(checks[0].why.find("hugetlb"), std::string::npos) << checks[0].why;
  EXPECT_NE(checks[0].fix.find("systemd.unified_cgroup_hierarchy=1"), std::string::npos);
  EXPECT_EQ(checks[1].outcome, Outcome::kPass);
  EXPECT_EQ(checks[2].name, "runtime-handler/kata");
  EXPECT_EQ(checks[2].outcome, Outcome::kWarn);  // missing, and not the default
  EXPECT_NE(checks[2].fix.find("runtime.handlers.kata = \"\""), std::string::npos);
  EXPECT_EQ(checks[3].name, "default-runtime");
  EXPECT_EQ(checks[3].outcome, Outcome::kPass);

  // crun as the configured default on this host: the host cannot run pods.
  checks = CheckRuntimeHandlers(handlers, "crun", hybrid);
  EXPECT_EQ(checks[0].outcome, Outcome::kFail);
  EXPECT_NE(checks[0].fix.find("runtime.default_handler = \"runc\""), std::string::npos);
  EXPECT_EQ(checks[3].outcome, Outcome::kFail);
  Report r;
  r.checks = checks;
  EXPECT_FALSE(r.CanRunPods());
  EXPECT_EQ(r.ToJson()["canRunPods"], false);
  EXPECT_NE(r.ToText().find("cannot run pods"), std::string::npos) << r.ToText();

  // No runtime at all.
  checks = CheckRuntimeHandlers({kata}, ChooseDefaultHandler({kata}, ""), hybrid);
  EXPECT_EQ(checks.back().outcome, Outcome::kFail);
  EXPECT_NE(checks.back().fix.find("apt-get install runc"), std::string::npos);
}

TEST_F(DoctorTest, OomScoreAdjNeedsCapSysResource) {
  Write("adj", "-999\n");
  Check c = CheckOomScoreAdj(Status("000001ffffffffff"), dir_ / "adj");
  EXPECT_EQ(c.outcome, Outcome::kPass) << c.summary;
  EXPECT_EQ(c.details["capSysResource"], true);
  // Bit 24 clear, as in this kind of sandbox: 0x1fffeffffff.
  Write("adj", "0\n");
  c = CheckOomScoreAdj(Status("000001fffeffffff"), dir_ / "adj");
  EXPECT_EQ(c.outcome, Outcome::kWarn);
  EXPECT_EQ(c.details["capSysResource"], false);
  EXPECT_NE(c.summary.find("CAP_SYS_RESOURCE"), std::string::npos) << c.summary;
  EXPECT_FALSE(c.fix.empty());
}

TEST_F(DoctorTest, Seccomp) {
  Write("actions", "kill_process kill_thread trap errno user_notif trace log allow\n");
  EXPECT_EQ(CheckSeccomp(Status("0"), dir_ / "actions").outcome, Outcome::kPass);
  Check c = CheckSeccomp(Status("0", /*seccomp=*/false), dir_ / "actions");
  EXPECT_EQ(c.outcome, Outcome::kWarn);
  EXPECT_NE(c.fix.find("CONFIG_SECCOMP"), std::string::npos);
  EXPECT_EQ(CheckSeccomp(Status("0"), dir_ / "missing").outcome, Outcome::kWarn);
}

TEST_F(DoctorTest, OverlayfsAndHelpers) {
  Write("filesystems", "nodev\tsysfs\nnodev\ttmpfs\n\text4\n");
  Check c = CheckOverlayfs(dir_ / "filesystems", dir_ / "root");
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.fix.find("modprobe overlay"), std::string::npos);
  if (::geteuid() == 0) {  // a real overlay mount on the test's temp filesystem
    Write("filesystems", "nodev\tsysfs\nnodev\toverlay\n");
    c = CheckOverlayfs(dir_ / "filesystems", dir_ / "root" / "not-yet");
    EXPECT_EQ(c.outcome, Outcome::kPass) << c.summary;
    EXPECT_EQ(c.details["testedOn"], dir_.string());
  }
  EXPECT_EQ(CheckHelpers("/usr/bin/berth-monitor", "/usr/bin/berth-pause").outcome, Outcome::kPass);
  c = CheckHelpers("", "/usr/bin/berth-pause");
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.summary.find("berth-monitor"), std::string::npos);
}

TEST_F(DoctorTest, Cni) {
  config::Config cfg;
  cfg.cni_conf_dir = (dir_ / "net.d").string();
  cfg.cni_bin_dirs = {(dir_ / "bin").string()};
  // Nothing at all: no config, no plugins.
  Check c = CheckCni(cfg);
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.fix.find("containernetworking-plugins"), std::string::npos) << c.fix;
  // The default network's plugins installed: it will be written when the kubelet asks.
  for (const char* p : {"bridge", "host-local", "portmap", "loopback"}) {
    Write(fs::path("bin") / p, "#!/bin/sh\n");
    ASSERT_EQ(::chmod((dir_ / "bin" / p).c_str(), 0755), 0);
  }
  c = CheckCni(cfg);
  EXPECT_EQ(c.outcome, Outcome::kWarn) << c.summary;
  EXPECT_NE(c.why.find("99-berth-default.conflist"), std::string::npos) << c.why;
  cfg.cni_default_network = false;
  EXPECT_EQ(CheckCni(cfg).outcome, Outcome::kFail);
  // A config naming a plugin that is not installed: unusable.
  Write("net.d/10-x.conflist",
        R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"flannel"}]})");
  c = CheckCni(cfg);
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.summary.find("flannel"), std::string::npos) << c.summary;
  // A usable one after it: pass with a warning about the skipped file.
  Write("net.d/20-y.conflist",
        R"({"cniVersion":"1.0.0","name":"y","plugins":[{"type":"bridge"}]})");
  c = CheckCni(cfg);
  EXPECT_EQ(c.outcome, Outcome::kWarn) << c.summary;
  EXPECT_EQ(c.details["network"], "y");
  ASSERT_TRUE(RemoveAll(dir_ / "net.d" / "10-x.conflist").ok());
  EXPECT_EQ(CheckCni(cfg).outcome, Outcome::kPass);
}

TEST_F(DoctorTest, DiskSpaceThresholds) {
  Check c = CheckDiskSpace("disk/root", "paths.root", dir_ / "not" / "yet");
  EXPECT_EQ(c.details["filesystemOf"], dir_.string());
  EXPECT_GT(c.details["totalBytes"].get<uint64_t>(), 0u);
  DiskThresholds impossible;
  impossible.fail_free_fraction = 1.01;  // no filesystem is more than 100% free
  c = CheckDiskSpace("disk/root", "paths.root", dir_, impossible);
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.fix.find("paths.root"), std::string::npos) << c.fix;
  DiskThresholds none;
  none.fail_free_fraction = 0;
  none.warn_free_fraction = 0;
  none.fail_free_bytes = 0;
  none.fail_free_inode_fraction = 0;
  EXPECT_EQ(CheckDiskSpace("disk/root", "paths.root", dir_, none).outcome, Outcome::kPass);
}

TEST_F(DoctorTest, Socket) {
  const fs::path sock = dir_ / "s.sock";
  Check c = CheckSocket(sock);
  EXPECT_EQ(c.outcome, Outcome::kPass);
  EXPECT_EQ(c.details["state"], "absent");
  Write("s.sock", "not a socket");
  EXPECT_EQ(CheckSocket(sock).outcome, Outcome::kFail);
  ASSERT_TRUE(RemoveAll(sock).ok());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::chmod(sock.c_str(), 0660), 0);
  c = CheckSocket(sock);
  if (::geteuid() == 0) {
    EXPECT_EQ(c.outcome, Outcome::kWarn) << c.summary;  // bound, not listening: stale
    EXPECT_EQ(c.details["state"], "stale");
  }
  ASSERT_EQ(::listen(fd.get(), 1), 0);
  c = CheckSocket(sock);
  if (::geteuid() == 0) {
    EXPECT_EQ(c.outcome, Outcome::kPass) << c.summary;
    EXPECT_EQ(c.details["state"], "live");
  }
  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
  c = CheckSocket(sock);
  EXPECT_EQ(c.outcome, Outcome::kFail);
  EXPECT_NE(c.fix.find("chmod 0660"), std::string::npos) << c.fix;
}

TEST_F(DoctorTest, RegistryHosts) {
  Check c = CheckRegistryHosts(dir_ / "certs.d");
  EXPECT_EQ(c.outcome, Outcome::kPass);
  Write("certs.d/docker.io/hosts.toml",
        "server = \"https://registry-1.docker.io\"\n[host.\"https://mirror.example\"]\n"
        "  capabilities = [\"pull\"]\n");
  c = CheckRegistryHosts(dir_ / "certs.d");
  EXPECT_EQ(c.outcome, Outcome::kPass) << c.summary;
  EXPECT_NE(c.summary.find("mirror.example"), std::string::npos) << c.summary;
  Write("certs.d/bad.example/hosts.toml", "server = [\n");
  c = CheckRegistryHosts(dir_ / "certs.d");
  EXPECT_EQ(c.outcome, Outcome::kWarn);
  EXPECT_NE(c.summary.find("hosts.toml"), std::string::npos) << c.summary;
  EXPECT_TRUE(c.details["hosts"].contains("bad.example"));
}

}  // namespace
}  // namespace berth::doctor
