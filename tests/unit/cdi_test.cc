// CDI spec parsing (JSON and YAML), name resolution across spec directories and the edits
// applied to an OCI spec. Pure logic except Resolve, which reads spec files from temp dirs, and
// ApplyEdits, which stats /dev/null.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>

#include "cdi/cdi_registry.h"
#include "cdi/cdi_spec.h"
#include "common/fs.h"

namespace berth::cdi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kYamlSpec[] = R"(---
cdiVersion: "0.6.0"
kind: example.com/gpu   # a comment
containerEdits:
  env:
  - VENDOR_LIB=/opt/vendor
devices:
- name: gpu0
  containerEdits:
    env: ["GPU=0"]
    deviceNodes:
    - path: /dev/vendor-gpu0
      hostPath: /dev/null
      permissions: rw
      fileMode: 0660
      uid: 1000
    mounts:
    - hostPath: /usr/lib/vendor
      containerPath: /opt/vendor
      options: [ro, nosuid]
    hooks:
    - hookName: createContainer
      path: /usr/bin/vendor-hook
      args: [vendor-hook, --gpu, "0"]
      timeout: 5
    additionalGids: [44]
- name: "gpu1"
  containerEdits:
    env: ['GPU=1']
)";

TEST(CdiSpecTest, ParsesYaml) {
  auto spec = ParseSpec(kYamlSpec, "gpu.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->version, "0.6.0");
  EXPECT_EQ(spec->vendor, "example.com");
  EXPECT_EQ(spec->device_class, "gpu");
  EXPECT_THAT(spec->edits.env, ElementsAre("VENDOR_LIB=/opt/vendor"));
  ASSERT_EQ(spec->devices.size(), 2u);
  const Device& d = spec->devices[0];
  EXPECT_EQ(d.name, "gpu0");
  EXPECT_THAT(d.edits.env, ElementsAre("GPU=0"));
  ASSERT_EQ(d.edits.device_nodes.size(), 1u);
  EXPECT_EQ(d.edits.device_nodes[0].path, "/dev/vendor-gpu0");
  EXPECT_EQ(d.edits.device_nodes[0].host_path, "/dev/null");
  EXPECT_EQ(d.edits.device_nodes[0].permissions, "rw");
  EXPECT_EQ(d.edits.device_nodes[0].file_mode, 0660u);  // YAML 1.1 octal, as yaml.v2 reads it
  EXPECT_EQ(d.edits.device_nodes[0].uid, 1000u);
  EXPECT_FALSE(d.edits.device_nodes[0].gid.has_value());
  ASSERT_EQ(d.edits.mounts.size(), 1u);
  EXPECT_THAT(d.edits.mounts[0].options, ElementsAre("ro", "nosuid"));
  ASSERT_EQ(d.edits.hooks.size(), 1u);
  EXPECT_THAT(d.edits.hooks[0].args, ElementsAre("vendor-hook", "--gpu", "0"));
  EXPECT_EQ(d.edits.hooks[0].timeout, 5);
  EXPECT_THAT(d.edits.additional_gids, ElementsAre(44u));
  EXPECT_THAT(spec->devices[1].edits.env, ElementsAre("GPU=1"));
}

TEST(CdiSpecTest, ParsesJson) {
  auto spec = ParseSpec(R"({"cdiVersion":"1.0.0","kind":"vendor.io/net","devices":[
      {"name":"nic","containerEdits":{"deviceNodes":[{"path":"/dev/net/tun","type":"c",
       "major":10,"minor":200}]}}]})",
                        "net.json");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_EQ(spec->devices.size(), 1u);
  EXPECT_EQ(spec->devices[0].edits.device_nodes[0].major, 10);
  EXPECT_EQ(spec->devices[0].edits.device_nodes[0].minor, 200);
}

TEST(CdiSpecTest, RejectsBadSpecsNamingTheProblem) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"cdiVersion: 0.2.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {env: [A=1]}}]",
       "cdiVersion"},
      {"cdiVersion: 9.0.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {env: [A=1]}}]",
       "not supported"},
      {"cdiVersion: 0.5.0\nkind: nokind\ndevices: [{name: x, containerEdits: {env: [A=1]}}]",
       "vendor/class"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: []", "no devices"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: -x, containerEdits: {env: [A=1]}}]",
       "bad device name"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {env: [A=1]}}, "
       "{name: x, containerEdits: {env: [A=1]}}]",
       "listed twice"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {deviceNodes: "
       "[{path: dev/x}]}}]",
       "not absolute"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {deviceNodes: "
       "[{path: /dev/x, permissions: rwx}]}}]",
       "rwm"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {hooks: "
       "[{hookName: later, path: /bin/h}]}}]",
       "not an OCI hook"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {deviceNodes: "
       "[{path: /dev/x, major: -1}]}}]",
       "out of range"},
      {"cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {env: A=1}}]",
       "list of strings"},
      {"a: &x 1\nb: *x", "anchors"},
      {"a: [1, 2", "YAML line"},
      {"{\"cdiVersion\": ", "not valid JSON"},
      {"- just\n- a list", "not a CDI spec"},
      {"---\na: 1\n---\nb: 2", "more than one"},
  };
  for (const Case& c : cases) {
    auto spec = ParseSpec(c.text, "bad.yaml");
    ASSERT_FALSE(spec.ok()) << c.text;
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(spec.status().message(), HasSubstr(c.message)) << c.text;
    EXPECT_THAT(spec.status().message(), HasSubstr("bad.yaml")) << c.text;
  }
}

TEST(CdiSpecTest, YamlScalarsAreTypedLikeYamlV2) {
  auto j = ParseYaml("a: 0x10\nb: 010\nc: '010'\nd: yes\ne: ~\nf: 1.5\ng: -3\nh: 0o17\ni: text");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["a"], 16);
  EXPECT_EQ((*j)["b"], 8);
  EXPECT_EQ((*j)["c"], "010");
  EXPECT_EQ((*j)["d"], true);
  EXPECT_TRUE((*j)["e"].is_null());
  EXPECT_EQ((*j)["f"], 1.5);
  EXPECT_EQ((*j)["g"], -3);
  EXPECT_EQ((*j)["h"], 15);
  EXPECT_EQ((*j)["i"], "text");
  std::string deep(200, '[');
  auto nested = ParseYaml(deep);
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(nested.status().message(), HasSubstr("deeply"));
}

TEST(CdiSpecTest, QualifiedNames) {
  auto q = ParseQualifiedName("nvidia.com/gpu=all");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->vendor, "nvidia.com");
  EXPECT_EQ(q->device_class, "gpu");
  EXPECT_EQ(q->name, "all");
  EXPECT_EQ(q->str(), "nvidia.com/gpu=all");
  for (const char* bad : {"gpu0", "nvidia.com/gpu", "nvidia.com=gpu/x", "/gpu=x", "a.com/=x",
                          "a.com/b=", "a.com/b=x y", "a.com/b.c=x"}) {
    EXPECT_EQ(ParseQualifiedName(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CdiSpecTest, RequestedDevicesMergesFieldAndAnnotations) {
  EXPECT_THAT(
      RequestedDevices({"a.com/x=1", "a.com/x=2"}, {{"cdi.k8s.io/claim", "a.com/x=2, b.com/y=3"},
                                                    {"other/key", "c.com/z=4"},
                                                    {"cdi.k8s.io/more", "d.com/w=5"}}),
      ElementsAre("a.com/x=1", "a.com/x=2", "b.com/y=3", "d.com/w=5"));
}

class CdiResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cdi-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "etc");
    fs::create_directories(dir_ / "run");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(dir_ / rel, text).ok());
  }
  std::vector<std::string> Dirs() const {
    return {(dir_ / "etc").string(), (dir_ / "run").string()};
  }
  fs::path dir_;
};

TEST_F(CdiResolveTest, ResolvesAcrossDirsWithLaterDirsWinning) {
  Write("etc/gpu.yaml", kYamlSpec);
  Write("run/override.json",
        R"({"cdiVersion":"0.5.0","kind":"example.com/gpu","devices":[
            {"name":"gpu1","containerEdits":{"env":["GPU=dynamic"]}}]})");
  Write("etc/broken.yaml", "cdiVersion: [");
  auto edits = Resolve(Dirs(), {"example.com/gpu=gpu0", "example.com/gpu=gpu1"});
  ASSERT_TRUE(edits.ok()) << edits.status().ToString();
  // gpu0 from /etc with its spec-wide edits; gpu1 from the later dir.
  EXPECT_THAT(edits->env, ElementsAre("VENDOR_LIB=/opt/vendor", "GPU=0", "GPU=dynamic"));

  auto missing = Resolve(Dirs(), {"example.com/gpu=gpu0", "example.com/gpu=gpu7", "x.io/y=z"});
  ASSERT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("\"example.com/gpu=gpu7\""));
  EXPECT_THAT(missing.status().message(), HasSubstr("\"x.io/y=z\""));
  EXPECT_THAT(missing.status().message(), HasSubstr("broken.yaml"));  // says why a spec was skipped

  EXPECT_EQ(Resolve(Dirs(), {"gpu0"}).status().code(), StatusCode::kInvalidArgument);

  Write("etc/dup.json",
        R"({"cdiVersion":"0.5.0","kind":"example.com/gpu","devices":[
            {"name":"gpu0","containerEdits":{"env":["GPU=dup"]}}]})");
  auto conflict = Resolve(Dirs(), {"example.com/gpu=gpu0"});
  EXPECT_EQ(conflict.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(conflict.status().message(), HasSubstr("dup.json"));
}

TEST(CdiApplyTest, AppliesEditsToAnOciSpec) {
  auto spec_file = ParseSpec(kYamlSpec, "gpu.yaml");
  ASSERT_TRUE(spec_file.ok());
  ContainerEdits edits = spec_file->edits;
  edits.Append(spec_file->devices[0].edits);
  edits.env.push_back("PATH=/vendor/bin");
  json spec = {{"process", {{"env", {"PATH=/bin", "A=1"}}, {"user", {{"uid", 0}, {"gid", 0}}}}},
               {"linux", {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}}}},
               {"mounts", json::array()}};
  ASSERT_TRUE(ApplyEdits(edits, spec).ok());
  EXPECT_EQ(spec["process"]["env"],
            json({"PATH=/vendor/bin", "A=1", "VENDOR_LIB=/opt/vendor", "GPU=0"}));
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  ASSERT_EQ(spec["linux"]["devices"].size(), 1u);
  const json& node = spec["linux"]["devices"][0];
  EXPECT_EQ(node["path"], "/dev/vendor-gpu0");
  EXPECT_EQ(node["type"], "c");
  EXPECT_EQ(node["major"], major(st.st_rdev));
  EXPECT_EQ(node["minor"], minor(st.st_rdev));
  EXPECT_EQ(node["fileMode"], 0660);
  EXPECT_EQ(node["uid"], 1000);
  const json& rules = spec["linux"]["resources"]["devices"];
  ASSERT_EQ(rules.size(), 2u);  // the deny-all first, then the device
  EXPECT_EQ(rules[1]["access"], "rw");
  EXPECT_EQ(rules[1]["major"], major(st.st_rdev));
  ASSERT_EQ(spec["mounts"].size(), 1u);
  EXPECT_EQ(spec["mounts"][0]["destination"], "/opt/vendor");
  EXPECT_EQ(spec["mounts"][0]["type"], "bind");
  EXPECT_EQ(spec["mounts"][0]["options"], json({"rbind", "ro", "nosuid"}));
  ASSERT_EQ(spec["hooks"]["createContainer"].size(), 1u);
  EXPECT_EQ(spec["hooks"]["createContainer"][0]["timeout"], 5);
  EXPECT_EQ(spec["process"]["user"]["additionalGids"], json({44}));

  ContainerEdits gone;
  DeviceNode missing_node;
  missing_node.path = "/dev/nothing-here-xyz";
  gone.device_nodes.push_back(missing_node);
  Status s = ApplyEdits(gone, spec);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("/dev/nothing-here-xyz"));
}

}  // namespace
}  // namespace berth::cdi
