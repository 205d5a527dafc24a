// Stop signal names (container/stop_signal.cc), the identity read from /proc/<pid>/status
// (container/process_identity.h) and the pod cgroup writer (sandbox/pod_cgroup.h) against
// fixture cgroup trees of both versions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>

#include "common/fs.h"
#include "container/container_manager.h"
#include "container/process_identity.h"
#include "sandbox/pod_cgroup.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(StopSignalTest, ParsesNamesNumbersAndRealTimeSignals) {
  EXPECT_EQ(*container::ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*container::ParseSignal("USR1"), SIGUSR1);
  EXPECT_EQ(*container::ParseSignal("9"), 9);
  EXPECT_EQ(*container::ParseSignal("SIGRTMIN"), 34);
  EXPECT_EQ(*container::ParseSignal("SIGRTMIN+3"), 37);
  EXPECT_EQ(*container::ParseSignal("RTMAX-1"), 63);
  EXPECT_EQ(*container::ParseSignal("SIGRTMAX"), 64);
  EXPECT_EQ(*container::ParseSignal("SIGCLD"), SIGCHLD);
  EXPECT_EQ(*container::ParseSignal("SIGIOT"), SIGABRT);
  for (const char* bad : {"", "SIG", "SIGFOO", "0", "65", "123", "SIGRTMIN+", "SIGRTMIN-1", "-9"}) {
    EXPECT_EQ(container::ParseSignal(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(StopSignalTest, CanonicalNamesRoundTrip) {
  for (int n = 1; n <= 64; ++n) {
    const std::string name = container::SignalName(n);
    if (n == 32 || n == 33) {
      EXPECT_EQ(name, "") << n;  // glibc keeps these two for itself
      continue;
    }
    ASSERT_FALSE(name.empty()) << n;
    EXPECT_EQ(*container::ParseSignal(name), n) << name;
  }
  EXPECT_EQ(container::SignalName(SIGCHLD), "SIGCHLD");
  EXPECT_EQ(container::SignalName(49), "SIGRTMIN+15");
  EXPECT_EQ(container::SignalName(50), "SIGRTMAX-14");
}

TEST(StopSignalTest, ConfigWinsOverImageWhichWinsOverSigterm) {
  EXPECT_EQ(container::EffectiveStopSignal("SIGUSR1", "SIGUSR2"), "SIGUSR1");
  EXPECT_EQ(container::EffectiveStopSignal("", "SIGUSR2"), "SIGUSR2");
  EXPECT_EQ(container::EffectiveStopSignal("", "2"), "SIGINT");
  EXPECT_EQ(container::EffectiveStopSignal("", "RTMIN+1"), "SIGRTMIN+1");
  EXPECT_EQ(container::EffectiveStopSignal("", ""), "SIGTERM");
  EXPECT_EQ(container::EffectiveStopSignal("", "SIGBOGUS"), "SIGTERM");
  EXPECT_EQ(container::EffectiveStopSignal("", "33"), "33");
}

TEST(ProcessIdentityTest, ParsesProcStatus) {
  auto id = container::ParseProcStatusIdentity(
      "Name:\tsleep\nUmask:\t0022\nUid:\t1234\t1234\t1234\t1234\nGid:\t1234\t1234\t1234\t1234\n"
      "FDSize:\t64\nGroups:\t1234 4000 5678 \nNStgid:\t1\n");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->uid, 1234u);
  EXPECT_EQ(id->gid, 1234u);
  EXPECT_THAT(id->groups, ElementsAre(1234u, 4000u, 5678u));
  auto none = container::ParseProcStatusIdentity("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->groups.empty());
  EXPECT_EQ(container::ParseProcStatusIdentity("Uid:\t0\n").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(container::ParseProcStatusIdentity("Uid:\tx\nGid:\t0\nGroups:\n").status().code(),
            StatusCode::kDataLoss);
  // This process, through the real file.
  auto self = container::ReadProcessIdentity(::getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_EQ(self->uid, ::getuid());
  EXPECT_EQ(self->gid, ::getgid());
}

class PodCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podcg-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  // A cgroup dir with empty control files, as the kernel would show them.
  void MakeFiles(const fs::path& dir, std::initializer_list<const char*> files) {
    fs::create_directories(dir);
    for (const char* f : files) ASSERT_TRUE(WriteFileAtomic(dir / f, "").ok());
  }
  std::string Read(const fs::path& p) {
    auto s = ReadFile(p);
    return s.ok() ? *s : "<missing>";
  }
  fs::path root_;
};

TEST_F(PodCgroupTest, WritesV1Files) {
  const fs::path cpu = root_ / "cpu,cpuacct", memory = root_ / "memory";
  MakeFiles(cpu / "kubepods/pod1", {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"});
  MakeFiles(memory / "kubepods/pod1", {"memory.limit_in_bytes"});
  const std::string mountinfo =
      StrCat("30 25 0:26 / ", cpu.string(), " rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n",
             "31 25 0:27 / ", memory.string(), " rw,nosuid - cgroup cgroup rw,memory\n",
             "32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
  sandbox::CgroupLimits l;
  l.cpu_period = 100000;
  l.cpu_quota = 250000;
  l.cpu_shares = 512;
  l.memory_limit_in_bytes = 1 << 30;
  ASSERT_TRUE(sandbox::WriteCgroupLimits("/kubepods/pod1", l, mountinfo).ok());
  EXPECT_EQ(Read(cpu / "kubepods/pod1/cpu.cfs_quota_us"), "250000");
  EXPECT_EQ(Read(cpu / "kubepods/pod1/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Read(cpu / "kubepods/pod1/cpu.shares"), "512");
  EXPECT_EQ(Read(memory / "kubepods/pod1/memory.limit_in_bytes"), StrCat(1 << 30));
  // A missing control file is an error naming it.
  Status s = sandbox::WriteCgroupLimits("/kubepods/pod2", l, mountinfo);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("kubepods/pod2/cpu.shares"));
}

TEST_F(PodCgroupTest, WritesV2Files) {
  MakeFiles(root_ / "kubepods/pod1", {"cpu.weight", "cpu.max", "memory.max"});
  const std::string mountinfo =
      StrCat("30 25 0:26 / ", root_.string(), " rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  sandbox::CgroupLimits l;
  l.cpu_period = 100000;
  l.cpu_quota = 50000;
  l.cpu_shares = 1024;
  l.memory_limit_in_bytes = -1;
  ASSERT_TRUE(sandbox::WriteCgroupLimits("/kubepods/pod1", l, mountinfo).ok());
  EXPECT_EQ(Read(root_ / "kubepods/pod1/cpu.max"), "50000 100000");
  EXPECT_EQ(Read(root_ / "kubepods/pod1/cpu.weight"), "39");
  EXPECT_EQ(Read(root_ / "kubepods/pod1/memory.max"), "max");
  EXPECT_EQ(sandbox::CpuSharesToWeight(2), 1u);
  EXPECT_EQ(sandbox::CpuSharesToWeight(262144), 10000u);
  EXPECT_EQ(sandbox::WriteCgroupLimits("kubepods", l, mountinfo).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(sandbox::WriteCgroupLimits("/kubepods/pod1", l, "").code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace berth
