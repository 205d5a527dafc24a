// ProbeRuntime against the real runc of this host, and against stand-in
// runtimes (shell scripts) that fail the way broken installations do.
#include "oci/runtime_probe.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs.h"

namespace berth::oci {
namespace {

namespace fs = std::filesystem;

class RuntimeProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / StrCat("berth-probe-test-", RandomHex(4));
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  std::string Script(const std::string& name, const std::string& body) {
    fs::path p = dir_ / name;
    std::ofstream(p) << "#!/bin/sh\n" << body;
    ::chmod(p.c_str(), 0755);
    return p.string();
  }

  // Cgroups whose name starts with "berth-probe-" in any v1 hierarchy or v2.
  static int LeftoverCgroups() {
    int n = 0;
    std::error_code ec;
    for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      for (const auto& e : fs::directory_iterator(hierarchy.path(), ec)) {
        if (e.path().filename().string().starts_with("berth-probe-")) ++n;
      }
    }
    return n;
  }

  fs::path dir_;
};

TEST(RuntimeFeaturesTest, RroNeedsRuntimeAndKernel) {
  const std::string with_rro = R"({"ociVersionMin":"1.0.0","mountOptions":["ro","rro","bind"]})";
  EXPECT_TRUE(ParseRuntimeFeatures(with_rro, true).recursive_read_only_mounts);
  EXPECT_FALSE(ParseRuntimeFeatures(with_rro, false).recursive_read_only_mounts);
  EXPECT_FALSE(
      ParseRuntimeFeatures(R"({"mountOptions":["ro","bind"]})", true).recursive_read_only_mounts);
  EXPECT_FALSE(ParseRuntimeFeatures("not json", true).recursive_read_only_mounts);
  EXPECT_FALSE(ParseRuntimeFeatures(with_rro, true).user_namespaces);
}

TEST_F(RuntimeProbeTest, RuncRunsAContainerAndLeavesNothing) {
  ProbeOptions opts;
  opts.binary = "/usr/sbin/runc";
  if (::access(opts.binary.c_str(), X_OK) != 0) opts.binary = "/usr/bin/runc";
  opts.probe_binary = BERTH_PAUSE_PATH;
  opts.work_dir = (dir_ / "work").string();
  const int cgroups_before = LeftoverCgroups();
  RuntimeProbe p = ProbeRuntime(opts);
  EXPECT_TRUE(p.works) << p.error;
  EXPECT_EQ(p.error, "");
  // runc 1.1 knows "rro" and this kernel has mount_setattr.
  EXPECT_EQ(p.features.recursive_read_only_mounts, KernelHasMountSetattr());
  EXPECT_FALSE(fs::exists(opts.work_dir));
  EXPECT_EQ(LeftoverCgroups(), cgroups_before);
}

TEST_F(RuntimeProbeTest, FailingRuntimeReportsItsError) {
  ProbeOptions opts;
  opts.binary = Script("fake-runtime", "echo 'cgroups in hybrid mode not supported' >&2\nexit 1\n");
  opts.probe_binary = BERTH_PAUSE_PATH;
  opts.work_dir = (dir_ / "work").string();
  RuntimeProbe p = ProbeRuntime(opts);
  EXPECT_FALSE(p.works);
  EXPECT_EQ(p.error, "cgroups in hybrid mode not supported");
  EXPECT_FALSE(p.features.recursive_read_only_mounts);
  EXPECT_FALSE(fs::exists(opts.work_dir));
}

TEST_F(RuntimeProbeTest, RuntimeThatDoesNotRunTheProcessFails) {
  // Exits 0 without running anything: the probe needs the container's output.
  ProbeOptions opts;
  opts.binary = Script("lying-runtime", "exit 0\n");
  opts.probe_binary = BERTH_PAUSE_PATH;
  opts.work_dir = (dir_ / "work").string();
  RuntimeProbe p = ProbeRuntime(opts);
  EXPECT_FALSE(p.works);
  EXPECT_NE(p.error.find("did not print"), std::string::npos) << p.error;
}

TEST_F(RuntimeProbeTest, MissingBinaries) {
  ProbeOptions opts;
  opts.binary = (dir_ / "no-such-runtime").string();
  opts.probe_binary = BERTH_PAUSE_PATH;
  opts.work_dir = (dir_ / "work").string();
  RuntimeProbe p = ProbeRuntime(opts);
  EXPECT_FALSE(p.works);
  EXPECT_NE(p.error.find("no-such-runtime"), std::string::npos) << p.error;

  opts.binary = Script("ok-runtime", "exit 0\n");
  opts.probe_binary = (dir_ / "no-such-pause").string();
  p = ProbeRuntime(opts);
  EXPECT_FALSE(p.works);
  EXPECT_NE(p.error.find("no-such-pause"), std::string::npos) << p.error;
}

}  // namespace
}  // namespace berth::oci
