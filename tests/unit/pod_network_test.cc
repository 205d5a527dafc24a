// The default pod network: CIDR parsing, template rendering, and when berthd writes (and does
// not write) its config.
#include "network/pod_network.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "network/cni_config.h"

namespace berth::network {
namespace {

namespace fs = std::filesystem;

TEST(PodCidrTest, ParsesOneOrDualStack) {
  StatusOr<std::vector<PodCidr>> one = ParsePodCidrs("10.244.1.0/24");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].cidr, "10.244.1.0/24");
  EXPECT_FALSE((*one)[0].ipv6);

  StatusOr<std::vector<PodCidr>> dual = ParsePodCidrs("10.244.0.0/16, fd00:10:244:0:0::/64");
  ASSERT_TRUE(dual.ok()) << dual.status().ToString();
  ASSERT_EQ(dual->size(), 2u);
  EXPECT_EQ((*dual)[1].cidr, "fd00:10:244::/64");  // canonical form
  EXPECT_TRUE((*dual)[1].ipv6);
}

TEST(PodCidrTest, RejectsWhatHostLocalCannotUse) {
  for (const char* bad : {"10.244.0.0", "10.244.0.1/24", "10.244.0.0/33", "10.0.0.0/31",
                          "banana/24", "10.0.0.0/24,10.1.0.0/24", "10.0.0.0/24,", "10.0.0.0/-1",
                          "fd00::1/64", "10.0.0.0/24,fd00::/64,fd01::/64"}) {
    StatusOr<std::vector<PodCidr>> r = ParsePodCidrs(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // inet_pton stops at a NUL; the bytes after it must not be ignored.
  using namespace std::string_view_literals;
  EXPECT_EQ(ParsePodCidrs("10.0.0.0\0junk/24"sv).status().code(), StatusCode::kInvalidArgument);
  StatusOr<std::vector<PodCidr>> r = ParsePodCidrs("10.244.0.1/24");
  EXPECT_NE(r.status().message().find("host bits"), std::string::npos) << r.status().message();
}

TEST(PodNetworkTemplateTest, BuiltinRendersBridgeHostLocalPortmapLoopback) {
  StatusOr<std::vector<PodCidr>> cidrs = ParsePodCidrs("10.88.0.0/16,fd00:88::/64");
  ASSERT_TRUE(cidrs.ok());
  StatusOr<std::string> text =
      RenderPodNetwork(BuiltinPodNetworkTemplate(), {*cidrs, "/run/berth/cni/networks"}, "b");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  StatusOr<NetworkConfigList> list = ParseNetworkConfig("x.conflist", *text);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->plugin_types, (std::vector<std::string>{"bridge", "portmap", "loopback"}));
  nlohmann::json j = nlohmann::json::parse(*text);
  const nlohmann::json& ipam = j["plugins"][0]["ipam"];
  EXPECT_EQ(ipam["type"], "host-local");
  EXPECT_EQ(ipam["dataDir"], "/run/berth/cni/networks");
  EXPECT_EQ(ipam["ranges"],
            nlohmann::json::parse(R"([[{"subnet":"10.88.0.0/16"}],[{"subnet":"fd00:88::/64"}]])"));
  EXPECT_EQ(ipam["routes"], nlohmann::json::parse(R"([{"dst":"0.0.0.0/0"},{"dst":"::/0"}])"));
  EXPECT_EQ(j["plugins"][0]["bridge"], "berth0");
  EXPECT_EQ(j["plugins"][1]["capabilities"]["portMappings"], true);
}

TEST(PodNetworkTemplateTest, BadTemplatesAreInvalidArgument) {
  PodNetworkParams p{*ParsePodCidrs("10.1.0.0/24"), "/d"};
  StatusOr<std::string> r = RenderPodNetwork(R"({"name": "{{.Nope}}"})", p, "/etc/t.json");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("{{.Nope}}"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("/etc/t.json"), std::string::npos);
  r = RenderPodNetwork(R"({"name": "{{.PodCIDR")", p, "t");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = RenderPodNetwork(R"({"name": "n", "subnet": "{{.PodCIDR}}"})", p, "t");  // no plugins
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("plugins"), std::string::npos) << r.status().message();
  r = RenderPodNetwork(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge",)"
                       R"("subnet":"{{.PodCIDR}}"}]})",
                       p, "t");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->find(R"("subnet":"10.1.0.0/24")"), std::string::npos) << *r;
}

class DefaultPodNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berth-podnet-" + RandomHex(4));
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  DefaultPodNetworkOptions Options() {
    DefaultPodNetworkOptions o;
    o.conf_dir = dir_ / "net.d";  // created on first write
    o.ipam_data_dir = (dir_ / "ipam").string();
    return o;
  }
  fs::path dir_;
};

TEST_F(DefaultPodNetworkTest, WritesOnceThenRewritesForANewCidr) {
  DefaultPodNetwork net(Options());
  StatusOr<DefaultPodNetwork::Result> r = net.Apply("10.200.0.0/24");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kWritten);
  EXPECT_EQ(r->file, dir_ / "net.d" / kDefaultNetworkFile);
  StatusOr<NetworkConfigList> loaded = ParseNetworkConfig(r->file, *ReadFile(r->file));
  ASSERT_TRUE(loaded.ok());
  EXPECT_NE(loaded->raw.find("10.200.0.0/24"), std::string::npos);

  r = net.Apply("10.200.0.0/24");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kUnchanged);

  r = net.Apply("10.201.0.0/24");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kWritten);
  EXPECT_NE(ReadFile(r->file)->find("10.201.0.0/24"), std::string::npos);
  EXPECT_EQ(ReadFile(r->file)->find("10.200.0.0/24"), std::string::npos);
}

TEST_F(DefaultPodNetworkTest, LeavesADirectoryWithAnotherConfigAlone) {
  ASSERT_TRUE(MakeDirs(dir_ / "net.d").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ / "net.d" / "10-flannel.conflist", "{}").ok());
  DefaultPodNetwork net(Options());
  StatusOr<DefaultPodNetwork::Result> r = net.Apply("10.200.0.0/24");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kOtherConfig);
  EXPECT_EQ(r->file, dir_ / "net.d" / "10-flannel.conflist");
  EXPECT_FALSE(fs::exists(dir_ / "net.d" / kDefaultNetworkFile));
  // Files libcni ignores do not count.
  ASSERT_TRUE(RemoveAll(dir_ / "net.d" / "10-flannel.conflist").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ / "net.d" / "README", "x").ok());
  r = net.Apply("10.200.0.0/24");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kWritten);
}

TEST_F(DefaultPodNetworkTest, DisabledEmptyAndBadInput) {
  DefaultPodNetworkOptions o = Options();
  o.enabled = false;
  DefaultPodNetwork off(o);
  StatusOr<DefaultPodNetwork::Result> r = off.Apply("10.200.0.0/24");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kDisabled);
  EXPECT_FALSE(fs::exists(dir_ / "net.d"));

  DefaultPodNetwork on(Options());
  r = on.Apply("");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kNoCidr);
  EXPECT_EQ(on.Apply("10.200.0.5/24").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ / "net.d"));
}

TEST_F(DefaultPodNetworkTest, TemplateFromAFile) {
  DefaultPodNetworkOptions o = Options();
  o.template_file = dir_ / "tmpl.json";
  DefaultPodNetwork net(o);
  StatusOr<DefaultPodNetwork::Result> missing = net.Apply("10.9.0.0/24");
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find(o.template_file.string()), std::string::npos)
      << missing.status().message();
  ASSERT_TRUE(WriteFileAtomic(o.template_file,
                              R"({"cniVersion":"1.0.0","name":"mine","plugins":[{"type":"ptp",)"
                              R"("ipam":{"type":"host-local","subnet":"{{.PodCIDR}}"}}]})")
                  .ok());
  StatusOr<DefaultPodNetwork::Result> r = net.Apply("10.9.0.0/24");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, DefaultPodNetwork::Outcome::kWritten);
  EXPECT_NE(ReadFile(r->file)->find(R"("subnet":"10.9.0.0/24")"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(o.template_file, "{{.Bad}}").ok());
  EXPECT_EQ(net.Apply("10.9.1.0/24").status().code(), StatusCode::kInvalidArgument);
  // The config written before is kept.
  EXPECT_NE(ReadFile(r->file)->find(R"("subnet":"10.9.0.0/24")"), std::string::npos);
}

}  // namespace
}  // namespace berth::network
