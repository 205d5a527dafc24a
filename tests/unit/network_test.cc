#include <gtest/gtest.h>

#include "common/fs.h"
#include "network/cni_config.h"

namespace berth::network {
namespace {

class CniConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("berth-cni-" + RandomHex(4));
    ASSERT_TRUE(MakeDirs(dir_ / "conf").ok());
    ASSERT_TRUE(MakeDirs(dir_ / "bin").ok());
    for (const char* p : {"bridge", "host-local", "portmap"}) {
      ASSERT_TRUE(WriteFileAtomic(dir_ / "bin" / p, "#!/bin/sh\n", 0755).ok());
    }
    bins_ = {(dir_ / "nothing").string(), (dir_ / "bin").string()};
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  std::filesystem::path dir_;
  std::vector<std::string> bins_;
};

TEST_F(CniConfigTest, EmptyDirIsNotReady) {
  auto cfg = LoadDefaultNetwork(dir_ / "conf", bins_);
  EXPECT_EQ(cfg.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(cfg.status().message().find((dir_ / "conf").string()), std::string::npos);
}

TEST_F(CniConfigTest, FirstUsableConfigInNameOrder) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "conf" / "05-broken.conflist", "{not json").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ / "conf" / "07-missing.conflist",
                              R"({"cniVersion":"1.0.0","name":"m","plugins":[{"type":"flannel"}]})")
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ / "conf" / "20-b.conflist",
                              R"({"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]})")
                  .ok());
  ASSERT_TRUE(
      WriteFileAtomic(
          dir_ / "conf" / "10-a.conflist",
          R"({"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"},{"type":"portmap"}]})")
          .ok());
  auto cfg = LoadDefaultNetwork(dir_ / "conf", bins_);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->name, "a");
  EXPECT_EQ(cfg->plugin_types, (std::vector<std::string>{"bridge", "portmap"}));
}

TEST_F(CniConfigTest, MissingPluginNamed) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "conf" / "10.conflist",
                              R"({"cniVersion":"1.0.0","name":"a","plugins":[{"type":"calico"}]})")
                  .ok());
  auto cfg = LoadDefaultNetwork(dir_ / "conf", bins_);
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("calico"), std::string::npos);
}

TEST_F(CniConfigTest, SingleConfIsWrapped) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "conf" / "10.conf",
                              R"({"cniVersion":"0.4.0","name":"single","type":"bridge"})")
                  .ok());
  auto cfg = LoadDefaultNetwork(dir_ / "conf", bins_);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->name, "single");
  EXPECT_EQ(cfg->plugin_types, std::vector<std::string>{"bridge"});
}

}  // namespace
}  // namespace berth::network

namespace berth::network {
namespace {

TEST(CniConfigParseTest, WrongTypesAreErrorsNotCrashes) {
  auto cfg = ParseNetworkConfig("/x/10.conflist",
                                R"({"cniVersion":1,"name":7,"plugins":[{"type":"bridge"}]})");
  EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument);
  cfg = ParseNetworkConfig("/x/10.conf", R"({"cniVersion":1,"name":["a"],"type":"bridge"})");
  EXPECT_FALSE(cfg.ok());
}

}  // namespace
}  // namespace berth::network
