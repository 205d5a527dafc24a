// Tests of berthctl: the pure formatting and configuration parts against
// texts crictl v1.26.1 prints, and whole commands against an in-process fake
// CRI server on a Unix socket.

// First: the CRI header's Signal enum clashes with <signal.h> macros.
// clang-format off
#include "runtime/v1/api.grpc.pb.h"
// clang-format on

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/app.h"
#include "ctl/commands.h"
#include "ctl/endpoint.h"
#include "ctl/go_json.h"
#include "ctl/go_yaml.h"
#include "ctl/log.h"
#include "ctl/output.h"
#include "ctl/table.h"
#include "ctl/yaml_reader.h"

namespace berth::ctl {
namespace {

namespace cri = ::runtime::v1;

cri::Image BusyboxImage() {
  cri::Image img;
  img.set_id("sha256:7cfbbec8963d8f13e6c70416d6592e1cc10f47a348131290a55d43c3acab3fb9");
  img.add_repo_tags("registry.k8s.io/e2e-test-images/busybox:1.29-2");
  img.add_repo_digests(
      "registry.k8s.io/e2e-test-images/"
      "busybox@sha256:c318242786b139d18676b1c09a0ad7f15fc17f8f16a5b2e625cd0dc8c9703d51");
  img.set_size(732686);
  return img;
}

// ---------------------------------------------------------------- JSON -----

TEST(GoJsonTest, ImageLikeJsonpbWithEmitDefaults) {
  cri::Image img;
  img.set_id("sha256:abc");
  img.add_repo_tags("docker.io/library/busybox:1.0");
  img.set_size(1234);
  EXPECT_EQ(MarshalProtoJson(img),
            "{\n"
            "  \"id\": \"sha256:abc\",\n"
            "  \"repoTags\": [\n"
            "    \"docker.io/library/busybox:1.0\"\n"
            "  ],\n"
            "  \"repoDigests\": [\n"
            "  ],\n"
            "  \"size\": \"1234\",\n"
            "  \"uid\": null,\n"
            "  \"username\": \"\",\n"
            "  \"spec\": null,\n"
            "  \"pinned\": false\n"
            "}");
}

TEST(GoJsonTest, NestedMessagesListsAndSortedMaps) {
  cri::ListImagesResponse resp;
  cri::Image* img = resp.add_images();
  img->set_id("x");
  img->mutable_uid()->set_value(1000);
  (*img->mutable_spec()->mutable_annotations())["b"] = "2";
  (*img->mutable_spec()->mutable_annotations())["a"] = "<1>";
  std::string json = MarshalProtoJson(resp);
  EXPECT_NE(json.find("{\n  \"images\": [\n    {\n      \"id\": \"x\",\n"), std::string::npos)
      << json;
  EXPECT_NE(json.find("      \"uid\": {\n        \"value\": \"1000\"\n      },\n"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("        \"annotations\": {\n"
                      "          \"a\": \"\\u003c1\\u003e\",\n"
                      "          \"b\": \"2\"\n"
                      "        },\n"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.substr(json.size() - 11), "    }\n  ]\n}");
  cri::ListImagesResponse empty;
  EXPECT_EQ(MarshalProtoJson(empty), "{\n  \"images\": [\n  ]\n}");
}

TEST(GoJsonTest, EnumsByNameAndInt32AsNumbers) {
  cri::PortMapping pm;
  pm.set_protocol(cri::UDP);
  pm.set_container_port(80);
  EXPECT_EQ(MarshalProtoJson(pm),
            "{\n  \"protocol\": \"UDP\",\n  \"containerPort\": 80,\n  \"hostPort\": 0,\n"
            "  \"hostIp\": \"\"\n}");
}

TEST(GoJsonTest, QuoteEscapesLikeGo) {
  EXPECT_EQ(GoJsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(GoJsonQuote("<&>"), "\"\\u003c\\u0026\\u003e\"");
  EXPECT_EQ(GoJsonQuote("\n\t\r\x01"), "\"\\n\\t\\r\\u0001\"");
  EXPECT_EQ(GoJsonQuote("h\xc3\xa9"), "\"h\xc3\xa9\"");
  EXPECT_EQ(GoJsonQuote("bad\xff"), "\"bad\\ufffd\"");
  EXPECT_EQ(GoJsonQuote("\xe2\x80\xa8"), "\"\\u2028\"");
}

TEST(GoJsonTest, FloatsLikeGo) {
  EXPECT_EQ(GoJsonFloat(1.5, 64), "1.5");
  EXPECT_EQ(GoJsonFloat(100, 64), "100");
  EXPECT_EQ(GoJsonFloat(1e21, 64), "1e+21");
  EXPECT_EQ(GoJsonFloat(1e-7, 64), "1e-7");
  EXPECT_EQ(GoJsonFloat(0.1f, 32), "0.1");
  EXPECT_EQ(GoFormatFloat(1e6, 'g', 64), "1e+06");
  EXPECT_EQ(GoFormatFloat(123456, 'g', 64), "123456");
  EXPECT_EQ(GoFormatFloat(0.0001, 'g', 64), "0.0001");
  EXPECT_EQ(GoFormatFloat(0.00001, 'g', 64), "1e-05");
}

TEST(GoJsonTest, IndentLikeGoJsonIndent) {
  StatusOr<std::string> out = IndentJson(R"({"a":[1, 2],"b":{}, "c":[] ,"d":"x y:{"})");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(
      *out,
      "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": \"x y:{\"\n}");
  // jsonpb's multi-line empty list collapses to [].
  StatusOr<std::string> reflowed = IndentJson("{\n  \"l\": [\n  ]\n}");
  ASSERT_TRUE(reflowed.ok());
  EXPECT_EQ(*reflowed, "{\n  \"l\": []\n}");
  EXPECT_FALSE(IndentJson("{\"a\":").ok());
  EXPECT_FALSE(IndentJson("").ok());
}

TEST(GoJsonTest, StatusInfoEmbedsJsonValuesAndQuotesOthers) {
  std::map<std::string, std::string> info = {
      {"config", R"({"x":1})"}, {"note", "plain text"}, {"num", "42"}};
  std::string doc = StatusInfoJson(R"({"s":true})", info);
  EXPECT_EQ(doc, R"({"status":{"s":true},"config":{"x":1},"note":"plain text","num":42})");
  StatusOr<std::string> text = StatusInfoOutput(R"({"s":true})", info, "json");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "{\n  \"status\": {\n    \"s\": true\n  },\n  \"config\": {\n    \"x\": 1\n  },\n"
            "  \"note\": \"plain text\",\n  \"num\": 42\n}\n");
  StatusOr<std::string> table = StatusInfoOutput("{}", {}, "table");
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(*table, "Don't support \"table\" format\n");
  EXPECT_EQ(StatusInfoOutput("{}", {}, "go-template").status().code(), StatusCode::kUnimplemented);
}

// ---------------------------------------------------------------- YAML -----

TEST(GoYamlTest, ImagesResponseLikeSigsYaml) {
  cri::ListImagesResponse resp;
  cri::Image* img = resp.add_images();
  img->set_id("sha256:abc");
  img->add_repo_tags("docker.io/library/busybox:1.0");
  img->set_size(1234);
  StatusOr<std::string> yaml = ProtoAsYaml(resp);
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(*yaml,
            "images:\n"
            "- id: sha256:abc\n"
            "  pinned: false\n"
            "  repoDigests: []\n"
            "  repoTags:\n"
            "  - docker.io/library/busybox:1.0\n"
            "  size: \"1234\"\n"
            "  spec: null\n"
            "  uid: null\n"
            "  username: \"\"\n"
            "\n");
}

TEST(GoYamlTest, ScalarQuoting) {
  auto y = [](const std::string& json) {
    StatusOr<std::string> out = JsonToYaml(json);
    EXPECT_TRUE(out.ok()) << json;
    return out.ok() ? *out : std::string();
  };
  EXPECT_EQ(y(R"({"a":""})"), "a: \"\"\n");
  EXPECT_EQ(y(R"({"a":"123"})"), "a: \"123\"\n");
  EXPECT_EQ(y(R"({"a":"true"})"), "a: \"true\"\n");
  EXPECT_EQ(y(R"({"a":"yes"})"), "a: \"yes\"\n");
  EXPECT_EQ(y(R"({"a":"null"})"), "a: \"null\"\n");
  EXPECT_EQ(y(R"({"a":"1.5"})"), "a: \"1.5\"\n");
  EXPECT_EQ(y(R"({"a":"2023-01-02"})"), "a: \"2023-01-02\"\n");
  EXPECT_EQ(y(R"({"a":"1:20"})"), "a: \"1:20\"\n");
  EXPECT_EQ(y(R"({"a":"0x1F"})"), "a: \"0x1F\"\n");
  EXPECT_EQ(y(R"({"a":"unix:///run/x.sock"})"), "a: unix:///run/x.sock\n");
  EXPECT_EQ(y(R"({"a":"- x"})"), "a: '- x'\n");
  EXPECT_EQ(y(R"({"a":"*"})"), "a: '*'\n");
  EXPECT_EQ(y(R"({"a":"a: b"})"), "a: 'a: b'\n");
  EXPECT_EQ(y(R"({"a":"it's"})"), "a: it's\n");
  EXPECT_EQ(y(R"({"a":" lead"})"), "a: ' lead'\n");
  EXPECT_EQ(y(R"({"a":"tab\there"})"), "a: \"tab\\there\"\n");
  EXPECT_EQ(y(R"({"a":"line1\nline2"})"), "a: |-\n  line1\n  line2\n");
  EXPECT_EQ(y(R"({"a":"end\n"})"), "a: |\n  end\n");
  EXPECT_EQ(y(R"({"a":1,"b":-2,"c":1.5,"d":true,"e":null,"f":1e6})"),
            "a: 1\nb: -2\nc: 1.5\nd: true\ne: null\nf: 1e+06\n");
  EXPECT_EQ(y(R"({"":"x"})"), "\"\": x\n");
}

TEST(GoYamlTest, CollectionsLayout) {
  StatusOr<std::string> out = JsonToYaml(R"({"m":{"k":[{"x":1,"y":[]},[1,2]],"e":{}},"top":[[]]})");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out,
            "m:\n"
            "  e: {}\n"
            "  k:\n"
            "  - x: 1\n"
            "    \"y\": []\n"
            "  - - 1\n"
            "    - 2\n"
            "top:\n"
            "- []\n");
}

TEST(GoYamlTest, LongPlainScalarsFoldAfterColumn80) {
  std::string words;
  for (int i = 0; i < 20; ++i) words += (i ? " " : "") + std::string("word") + std::to_string(i);
  StatusOr<std::string> out = JsonToYaml(R"({"key":")" + words + "\"}");
  ASSERT_TRUE(out.ok());
  // The break replaces the first space after column 80; the rest is indented.
  EXPECT_EQ(
      *out,
      "key: word0 word1 word2 word3 word4 word5 word6 word7 word8 word9 word10 word11 word12\n"
      "  word13 word14 word15 word16 word17 word18 word19\n");
}

TEST(GoYamlTest, KeyOrderIsNatural) {
  EXPECT_TRUE(YamlKeyLess("a2", "a10"));
  EXPECT_FALSE(YamlKeyLess("a10", "a2"));
  EXPECT_TRUE(YamlKeyLess("repoDigests", "repoTags"));
  EXPECT_TRUE(YamlKeyLess("a_b", "ab"));  // non-letters sort before letters
  EXPECT_TRUE(YamlKeyLess("B", "a"));
  EXPECT_TRUE(YamlKeyLess("ab", "abc"));
  EXPECT_TRUE(YamlPlainAllowed("sha256:abc"));
  EXPECT_FALSE(YamlPlainAllowed("on"));
  EXPECT_FALSE(YamlPlainAllowed("#x"));
}

TEST(YamlReaderTest, BlockStylePodConfig) {
  StatusOr<nlohmann::json> doc = ParseYaml(R"(---
# a pod
metadata:
  name: busybox-sandbox   # trailing comment
  namespace: default
  attempt: 1
  uid: "hdishd83djaidwnduwk28bcsb"
log_directory: /tmp
labels: {app: web, "tier": 'front end'}
dns_config:
  servers: [8.8.8.8, 1.1.1.1]
port_mappings:
- protocol: 0
  container_port: 80
  host_ip: ""
-   container_port: 81
linux:
  security_context:
    namespace_options: {network: 2}
command:
  - sh
  - -c
script: |
  echo a
  echo b
folded: >-
  one
  two
enabled: yes
empty:
)");
  ASSERT_TRUE(doc.ok()) << doc.status();
  const nlohmann::json& j = *doc;
  EXPECT_EQ(j["metadata"]["name"], "busybox-sandbox");
  EXPECT_EQ(j["metadata"]["attempt"], 1);
  EXPECT_EQ(j["metadata"]["uid"], "hdishd83djaidwnduwk28bcsb");
  EXPECT_EQ(j["labels"]["tier"], "front end");
  EXPECT_EQ(j["dns_config"]["servers"][1], "1.1.1.1");
  EXPECT_EQ(j["port_mappings"][0]["container_port"], 80);
  EXPECT_EQ(j["port_mappings"][0]["host_ip"], "");
  EXPECT_EQ(j["port_mappings"][1]["container_port"], 81);
  EXPECT_EQ(j["linux"]["security_context"]["namespace_options"]["network"], 2);
  EXPECT_EQ(j["command"][1], "-c");
  EXPECT_EQ(j["script"], "echo a\necho b\n");
  EXPECT_EQ(j["folded"], "one two");
  EXPECT_EQ(j["enabled"], true);
  EXPECT_TRUE(j["empty"].is_null());
}

TEST(YamlReaderTest, ErrorsNameTheLine) {
  StatusOr<nlohmann::json> doc = ParseYaml("a: 1\n  b: 2\n");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("line 2"), std::string::npos) << doc.status();
  EXPECT_FALSE(ParseYaml("a: &x 1\n").ok());
  StatusOr<nlohmann::json> json = ParseJsonOrYaml(" {\"a\": [1]}");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ((*json)["a"][0], 1);
}

// --------------------------------------------------------------- table -----

TEST(TableTest, AlignsLikeTabwriter) {
  TableWriter t;
  t.AddRow({"IMAGE", "TAG", "IMAGE ID", "SIZE"});
  t.AddRow({"registry.k8s.io/e2e-test-images/busybox", "1.29-2", "7cfbbec8963d8", "733kB"});
  EXPECT_EQ(
      t.Flush(),
      "IMAGE                                     TAG                 IMAGE ID            SIZE\n"
      "registry.k8s.io/e2e-test-images/busybox   1.29-2              7cfbbec8963d8       733kB\n");
  // Lines with fewer cells end a column block.
  TableWriter u(2, 1);
  u.Write("a\tbb\tc\nlonger\td\nx\n");
  EXPECT_EQ(u.Flush(), "a      bb c\nlonger d\nx\n");
}

TEST(TableTest, HumanSizeLikeGoUnits) {
  EXPECT_EQ(HumanSize(0), "0B");
  EXPECT_EQ(HumanSize(999), "999B");
  EXPECT_EQ(HumanSize(1000), "1kB");
  EXPECT_EQ(HumanSize(4500000), "4.5MB");
  EXPECT_EQ(HumanSize(1234567), "1.23MB");
  EXPECT_EQ(HumanSize(732686), "733kB");
  EXPECT_EQ(HumanSize(999999), "1e+03kB");
  EXPECT_EQ(HumanSize(2.5e12), "2.5TB");
}

TEST(TableTest, TruncateAndQuote) {
  EXPECT_EQ(TruncateId("sha256:7cfbbec8963d8f13e6c7", "sha256:"), "7cfbbec8963d8");
  EXPECT_EQ(TruncateId("abc", "sha256:"), "abc");
  EXPECT_EQ(GoQuote("a\"b\n"), "\"a\\\"b\\n\"");
}

// -------------------------------------------------------------- images -----

TEST(ImageOutputTest, TableHasOneRowPerTagAndNoneWhereAbsent) {
  cri::Image a = BusyboxImage();
  a.add_repo_tags("registry.k8s.io/e2e-test-images/busybox:latest");
  cri::Image b;
  b.set_id("sha256:0123456789abcdef0123");
  b.add_repo_digests("example.com/app@sha256:fedcba9876543210");
  b.set_size(4500000);
  std::vector<cri::Image> images = {b, a};
  SortImagesByRef(images);  // a has tags, b has none: id order decides
  EXPECT_EQ(images[0].id(), b.id());
  std::string text = ImageListText(images, {});
  EXPECT_EQ(
      text,
      "IMAGE                                     TAG                 IMAGE ID            SIZE\n"
      "example.com/app                           <none>              0123456789abc       4.5MB\n"
      "registry.k8s.io/e2e-test-images/busybox   1.29-2              7cfbbec8963d8       733kB\n"
      "registry.k8s.io/e2e-test-images/busybox   latest              7cfbbec8963d8       733kB\n");
  ImageListOptions digests;
  digests.digests = true;
  std::string with_digest = ImageListText({a}, digests);
  EXPECT_NE(with_digest.find("DIGEST              IMAGE ID"), std::string::npos) << with_digest;
  EXPECT_NE(with_digest.find("c318242786b13       7cfbbec8963d8"), std::string::npos);
  ImageListOptions no_trunc;
  no_trunc.no_trunc = true;
  EXPECT_NE(ImageListText({a}, no_trunc).find(a.id()), std::string::npos);
  ImageListOptions quiet;
  quiet.quiet = true;
  EXPECT_EQ(ImageListText({a, b}, quiet), a.id() + "\n" + b.id() + "\n");
  ImageListOptions verbose;
  verbose.verbose = true;
  a.mutable_uid()->set_value(0);
  EXPECT_EQ(ImageListText({a}, verbose),
            "ID: " + a.id() +
                "\nRepoTags: registry.k8s.io/e2e-test-images/busybox:1.29-2\n"
                "RepoTags: registry.k8s.io/e2e-test-images/busybox:latest\n"
                "RepoDigests: " +
                a.repo_digests(0) + "\nSize: 732686\nUid: &Int64Value{Value:0,}\n\n");
}

TEST(ImageOutputTest, NormalizeRepoDigestAndTags) {
  EXPECT_EQ(NormalizeRepoDigest({}), std::make_pair(std::string("<none>"), std::string("<none>")));
  EXPECT_EQ(NormalizeRepoDigest({"r@sha256:1"}),
            std::make_pair(std::string("r"), std::string("sha256:1")));
  EXPECT_EQ(NormalizeRepoDigest({"bad"}).first, "errorName");
  auto pairs = NormalizeRepoTagPairs({"localhost:5000/a:v1", "notag"}, "x");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0], std::make_pair(std::string("localhost:5000/a"), std::string("v1")));
  EXPECT_EQ(pairs[1].first, "errorRepoTag");
  EXPECT_EQ(NormalizeRepoTagPairs({}, "img")[0],
            std::make_pair(std::string("img"), std::string("<none>")));
  EXPECT_EQ(NormalizeRepoTagPairs({"<none>:<none>"}, "img")[0].first, "img");
}

TEST(ImageOutputTest, InspectAndFsInfoTables) {
  cri::Image a = BusyboxImage();
  EXPECT_EQ(ImageStatusTable(a, {{"k", "v"}}, true), "ID: " + a.id() + "\nTag: " + a.repo_tags(0) +
                                                         "\nDigest: " + a.repo_digests(0) +
                                                         "\nSize: 733kB\nInfo: map[k:v]\n");
  cri::FilesystemUsage fs;
  fs.set_timestamp(17);
  fs.mutable_fs_id()->set_mountpoint("/var/lib/berth");
  fs.mutable_used_bytes()->set_value(42);
  EXPECT_EQ(FilesystemUsageTable(fs),
            "TimeStamp: 17\nUsedBytes: &UInt64Value{Value:42,}\nMountpoint: /var/lib/berth\n");
}

// -------------------------------------------------------- configuration -----

TEST(EndpointTest, ParsesCrictlYaml) {
  StatusOr<ConfigFile> cfg = ParseConfigFile(
      "# client config\n"
      "runtime-endpoint: unix:///run/berth/berth.sock\n"
      "image-endpoint: \"unix:///run/img.sock\"\n"
      "timeout: 10\n"
      "debug: true\n"
      "pull-image-on-create: false\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->runtime_endpoint, "unix:///run/berth/berth.sock");
  EXPECT_EQ(cfg->image_endpoint, "unix:///run/img.sock");
  EXPECT_EQ(cfg->timeout_seconds, 10);
  EXPECT_TRUE(cfg->debug);
  EXPECT_TRUE(ParseConfigFile("").ok());
  StatusOr<ConfigFile> bad = ParseConfigFile("color: red\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "Config option 'color' is not valid");
  StatusOr<ConfigFile> bad_timeout = ParseConfigFile("timeout: 2s\n");
  ASSERT_FALSE(bad_timeout.ok());
  EXPECT_EQ(bad_timeout.status().message(),
            "parsing config option 'timeout': strconv.Atoi: parsing \"2s\": invalid syntax");
  EXPECT_FALSE(ParseConfigFile("debug: maybe\n").ok());
}

TEST(EndpointTest, LoadsConfigFileOrTheOneNextToTheBinary) {
  char tmpl[] = "/tmp/ctlcfg-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir(tmpl);
  { std::ofstream(dir / "crictl.yaml") << "runtime-endpoint: unix:///beside.sock\n"; }
  StatusOr<ConfigFile> beside = LoadConfigFile((dir / "missing.yaml").string(), dir.string());
  ASSERT_TRUE(beside.ok()) << beside.status();
  EXPECT_EQ(beside->runtime_endpoint, "unix:///beside.sock");
  EXPECT_EQ(LoadConfigFile((dir / "missing.yaml").string(), "/nonexistent").status().code(),
            StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(EndpointTest, FlagsWinOverFileWhichWinsOverDefaults) {
  GlobalFlags flags;
  StatusOr<Settings> s = ResolveSettings(flags, std::nullopt);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->runtime_endpoint, kDefaultEndpoint);
  EXPECT_EQ(s->image_endpoint, kDefaultEndpoint);
  EXPECT_EQ(s->timeout, std::chrono::seconds(2));

  ConfigFile file;
  file.runtime_endpoint = "unix:///file.sock";
  file.timeout_seconds = 7;
  file.debug = true;
  s = ResolveSettings(flags, file);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->runtime_endpoint, "unix:///file.sock");
  EXPECT_EQ(s->image_endpoint, "unix:///file.sock");  // falls back to the runtime endpoint
  EXPECT_EQ(s->timeout, std::chrono::seconds(7));
  EXPECT_TRUE(s->debug);

  flags.runtime_endpoint = "unix:///flag.sock";
  flags.image_endpoint = "unix:///img.sock";
  flags.timeout = "500ms";
  flags.debug = false;
  s = ResolveSettings(flags, file);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->runtime_endpoint, "unix:///flag.sock");
  EXPECT_EQ(s->image_endpoint, "unix:///img.sock");
  EXPECT_EQ(s->timeout, std::chrono::milliseconds(500));
  EXPECT_FALSE(s->debug);

  flags.timeout = "0";
  EXPECT_EQ(ResolveSettings(flags, file)->timeout, std::chrono::seconds(2));
  flags.timeout = "2";
  EXPECT_FALSE(ResolveSettings(flags, file).ok());
  flags.timeout.reset();
  flags.runtime_endpoint = "";
  StatusOr<Settings> empty = ResolveSettings(flags, file);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "--runtime-endpoint is not set");
}

TEST(EndpointTest, GoDurations) {
  EXPECT_EQ(*ParseGoDuration("2s"), std::chrono::seconds(2));
  EXPECT_EQ(*ParseGoDuration("1m30s"), std::chrono::seconds(90));
  EXPECT_EQ(*ParseGoDuration("1.5h"), std::chrono::minutes(90));
  EXPECT_EQ(*ParseGoDuration("300ms"), std::chrono::milliseconds(300));
  EXPECT_EQ(*ParseGoDuration("0"), std::chrono::milliseconds(0));
  EXPECT_EQ(ParseGoDuration("5").status().message(), "time: missing unit in duration \"5\"");
  EXPECT_FALSE(ParseGoDuration("5x").ok());
  EXPECT_FALSE(ParseGoDuration("").ok());
}

TEST(EndpointTest, GrpcTargets) {
  EXPECT_EQ(*EndpointToGrpcTarget("unix:///run/berth/berth.sock"), "unix:/run/berth/berth.sock");
  EXPECT_EQ(*EndpointToGrpcTarget("/run/x.sock"), "unix:/run/x.sock");
  EXPECT_EQ(*EndpointToGrpcTarget("unix:/run/x.sock"), "unix:/run/x.sock");
  EXPECT_EQ(EndpointToGrpcTarget("tcp://127.0.0.1:1").status().message(),
            "only support unix socket endpoint");
  EXPECT_EQ(EndpointToGrpcTarget("http://x").status().message(), "protocol \"http\" not supported");
}

TEST(LoggerTest, LogrusTextFormat) {
  auto t0 = std::chrono::system_clock::from_time_t(1700000000);
  std::string plain = Logger::Format(Logger::Level::kFatal, "listing images: boom", false,
                                     t0 + std::chrono::seconds(3), t0);
  EXPECT_NE(plain.find(" level=fatal msg=\"listing images: boom\"\n"), std::string::npos) << plain;
  EXPECT_EQ(plain.rfind("time=\"", 0), 0u);
  EXPECT_NE(Logger::Format(Logger::Level::kInfo, "done", false, t0, t0).find("msg=done\n"),
            std::string::npos);
  std::string colored =
      Logger::Format(Logger::Level::kError, "bad", true, t0 + std::chrono::seconds(3), t0);
  EXPECT_EQ(colored, "\x1b[31mERRO\x1b[0m[0003] bad" + std::string(41, ' ') + " \n");
}

TEST(CommandsTest, LabelsAndPodConfig) {
  StatusOr<std::map<std::string, std::string>> labels = ParseLabels({"a=1", "b="});
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ((*labels)["a"], "1");
  EXPECT_EQ((*labels)["b"], "");
  EXPECT_EQ(ParseLabels({"a=b=c"}).status().message(), "incorrectly specified label: a=b=c");

  char tmpl[] = "/tmp/ctlpod-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir(tmpl);
  {
    std::ofstream(dir / "pod.yaml") << "metadata:\n  name: p\n  namespace: ns\n  attempt: 2\n"
                                       "log_directory: /tmp/logs\nlinux: {}\nunknown_key: 1\n";
    std::ofstream(dir / "pod.json")
        << R"({"metadata": {"name": "q", "uid": "u"}, "hostname": "h"})";
  }
  StatusOr<cri::PodSandboxConfig> yaml = LoadPodSandboxConfig((dir / "pod.yaml").string());
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(yaml->metadata().name(), "p");
  EXPECT_EQ(yaml->metadata().attempt(), 2u);
  EXPECT_EQ(yaml->log_directory(), "/tmp/logs");
  StatusOr<cri::PodSandboxConfig> json = LoadPodSandboxConfig((dir / "pod.json").string());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->metadata().uid(), "u");
  EXPECT_EQ(json->hostname(), "h");
  EXPECT_EQ(LoadPodSandboxConfig((dir / "none.json").string()).status().message(),
            "config at " + (dir / "none.json").string() + " not found");
  std::filesystem::remove_all(dir);
}

// ------------------------------------------- commands against a fake CRI -----

// A CRI server with an in-memory image list; ListContainers stays
// unimplemented, like a runtime that only serves images so far.
class FakeImageService final : public cri::ImageService::Service {
 public:
  grpc::Status ListImages(grpc::ServerContext*, const cri::ListImagesRequest* req,
                          cri::ListImagesResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, img] : images_) {
      const std::string& want = req->filter().image().image();
      bool match =
          want.empty() || id == want ||
          std::find(img.repo_tags().begin(), img.repo_tags().end(), want) != img.repo_tags().end();
      if (match) *resp->add_images() = img;
    }
    return grpc::Status::OK;
  }
  grpc::Status ImageStatus(grpc::ServerContext*, const cri::ImageStatusRequest* req,
                           cri::ImageStatusResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    const cri::Image* img = Find(req->image().image());
    if (img != nullptr) {
      *resp->mutable_image() = *img;
      if (req->verbose()) (*resp->mutable_info())["info"] = R"({"chainID":"sha256:1"})";
    }
    return grpc::Status::OK;
  }
  grpc::Status PullImage(grpc::ServerContext*, const cri::PullImageRequest* req,
                         cri::PullImageResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_pull_ = *req;
    if (req->image().image() == "missing:1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "manifest unknown");
    }
    resp->set_image_ref("sha256:pulled");
    return grpc::Status::OK;
  }
  grpc::Status RemoveImage(grpc::ServerContext*, const cri::RemoveImageRequest* req,
                           cri::RemoveImageResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    const cri::Image* img = Find(req->image().image());
    if (img != nullptr) images_.erase(img->id());
    return grpc::Status::OK;
  }
  grpc::Status ImageFsInfo(grpc::ServerContext*, const cri::ImageFsInfoRequest*,
                           cri::ImageFsInfoResponse* resp) override {
    cri::FilesystemUsage* fs = resp->add_image_filesystems();
    fs->set_timestamp(1700000000000000000);
    fs->mutable_fs_id()->set_mountpoint("/var/lib/berth/snapshots");
    fs->mutable_used_bytes()->set_value(4096);
    fs->mutable_inodes_used()->set_value(3);
    return grpc::Status::OK;
  }

  void Add(const cri::Image& img) {
    std::lock_guard<std::mutex> lock(mu_);
    images_[img.id()] = img;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return images_.size();
  }
  cri::PullImageRequest last_pull() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_pull_;
  }

 private:
  const cri::Image* Find(const std::string& ref) {
    for (const auto& [id, img] : images_) {
      if (id == ref) return &img;
      for (const std::string& t : img.repo_tags()) {
        if (t == ref) return &img;
      }
    }
    return nullptr;
  }

  std::mutex mu_;
  std::map<std::string, cri::Image> images_;
  cri::PullImageRequest last_pull_;
};

class FakeRuntimeService final : public cri::RuntimeService::Service {
 public:
  grpc::Status Version(grpc::ServerContext*, const cri::VersionRequest*,
                       cri::VersionResponse* resp) override {
    resp->set_version("0.1.0");
    resp->set_runtime_name("berth");
    resp->set_runtime_version("0.1.0");
    resp->set_runtime_api_version("v1");
    return grpc::Status::OK;
  }
  grpc::Status Status(grpc::ServerContext*, const cri::StatusRequest* req,
                      cri::StatusResponse* resp) override {
    for (const char* type : {"RuntimeReady", "NetworkReady"}) {
      cri::RuntimeCondition* c = resp->mutable_status()->add_conditions();
      c->set_type(type);
      c->set_status(true);
    }
    if (req->verbose()) (*resp->mutable_info())["config"] = R"({"root":"/var/lib/berth"})";
    return grpc::Status::OK;
  }
};

class CtlCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ctlsrv-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    endpoint_ = "unix://" + dir_ + "/cri.sock";
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + dir_ + "/cri.sock", grpc::InsecureServerCredentials());
    builder.RegisterService(&images_);
    builder.RegisterService(&runtime_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    images_.Add(BusyboxImage());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  struct Result {
    int code;
    std::string out;
    std::string err;
  };
  Result Ctl(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"-r", endpoint_, "-c", dir_ + "/no-config.yaml"});
    std::ostringstream out, err;
    std::istringstream in(stdin_text);
    AppIO io;
    io.out = &out;
    io.err = &err;
    io.in = &in;
    io.getenv = [](const std::string&) { return std::nullopt; };
    io.exe_dir = dir_;
    int code = berth::ctl::Run(args, io);
    return {code, out.str(), err.str()};
  }

  std::string dir_;
  std::string endpoint_;
  FakeImageService images_;
  FakeRuntimeService runtime_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(CtlCommandTest, MissingNamedConfigFileIsFatal) {
  Result r = Ctl({"version"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("level=fatal msg=\"load config file: stat"), std::string::npos) << r.err;
}

TEST_F(CtlCommandTest, VersionAndInfo) {
  { std::ofstream(dir_ + "/no-config.yaml") << "timeout: 5\n"; }
  Result v = Ctl({"version"});
  ASSERT_EQ(v.code, 0) << v.err;
  EXPECT_EQ(v.out,
            "Version:  0.1.0\nRuntimeName:  berth\nRuntimeVersion:  0.1.0\n"
            "RuntimeApiVersion:  v1\n");
  Result info = Ctl({"info"});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_EQ(info.out,
            "{\n"
            "  \"status\": {\n"
            "    \"conditions\": [\n"
            "      {\n"
            "        \"type\": \"RuntimeReady\",\n"
            "        \"status\": true,\n"
            "        \"reason\": \"\",\n"
            "        \"message\": \"\"\n"
            "      },\n"
            "      {\n"
            "        \"type\": \"NetworkReady\",\n"
            "        \"status\": true,\n"
            "        \"reason\": \"\",\n"
            "        \"message\": \"\"\n"
            "      }\n"
            "    ]\n"
            "  },\n"
            "  \"config\": {\n"
            "    \"root\": \"/var/lib/berth\"\n"
            "  }\n"
            "}\n");
  Result quiet_yaml = Ctl({"info", "-q", "-o", "yaml"});
  ASSERT_EQ(quiet_yaml.code, 0) << quiet_yaml.err;
  EXPECT_EQ(quiet_yaml.out,
            "status:\n  conditions:\n  - message: \"\"\n    reason: \"\"\n    status: true\n"
            "    type: RuntimeReady\n  - message: \"\"\n    reason: \"\"\n    status: true\n"
            "    type: NetworkReady\n\n");
}

TEST_F(CtlCommandTest, ImagesInspectAndFsInfo) {
  std::ofstream(dir_ + "/no-config.yaml") << "";
  Result table = Ctl({"images"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(
      table.out,
      "IMAGE                                     TAG                 IMAGE ID            SIZE\n"
      "registry.k8s.io/e2e-test-images/busybox   1.29-2              7cfbbec8963d8       733kB\n");
  Result quiet = Ctl({"img", "-q", "registry.k8s.io/e2e-test-images/busybox:1.29-2"});
  EXPECT_EQ(quiet.out, BusyboxImage().id() + "\n");
  Result none = Ctl({"images", "-q", "nothing:here"});
  EXPECT_EQ(none.out, "");
  Result json = Ctl({"images", "-o", "json"});
  EXPECT_EQ(json.out, MarshalProtoJson([] {
                        cri::ListImagesResponse r;
                        *r.add_images() = BusyboxImage();
                        return r;
                      }()) +
                          "\n");

  Result inspect = Ctl({"inspecti", "registry.k8s.io/e2e-test-images/busybox:1.29-2"});
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_EQ(inspect.out.rfind("{\n  \"status\": {\n    \"id\": \"sha256:7cfbbec", 0), 0u)
      << inspect.out;
  EXPECT_NE(inspect.out.find("    \"repoDigests\": [\n      \"registry.k8s.io"), std::string::npos);
  EXPECT_NE(inspect.out.find("  \"info\": {\n    \"chainID\": \"sha256:1\"\n  }\n}\n"),
            std::string::npos)
      << inspect.out;
  Result missing = Ctl({"inspecti", "nothing:here"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("msg=\"no such image \\\"nothing:here\\\" present\""),
            std::string::npos)
      << missing.err;

  Result fs = Ctl({"imagefsinfo"});
  ASSERT_EQ(fs.code, 0) << fs.err;
  EXPECT_EQ(fs.out,
            "{\n  \"status\": {\n    \"timestamp\": \"1700000000000000000\",\n"
            "    \"fsId\": {\n      \"mountpoint\": \"/var/lib/berth/snapshots\"\n    },\n"
            "    \"usedBytes\": {\n      \"value\": \"4096\"\n    },\n"
            "    \"inodesUsed\": {\n      \"value\": \"3\"\n    }\n  }\n}\n");
  Result fs_yaml = Ctl({"imagefsinfo", "-o", "yaml"});
  EXPECT_EQ(fs_yaml.out,
            "status:\n  fsId:\n    mountpoint: /var/lib/berth/snapshots\n  inodesUsed:\n"
            "    value: \"3\"\n  timestamp: \"1700000000000000000\"\n  usedBytes:\n"
            "    value: \"4096\"\n\n");
}

TEST_F(CtlCommandTest, PullSendsCredentialsAndAnnotations) {
  std::ofstream(dir_ + "/no-config.yaml") << "";
  Result r = Ctl({"pull", "--creds", "alice:s3:cret", "-a", "k=v", "busybox:1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Image is up to date for sha256:pulled\n");
  cri::PullImageRequest req = images_.last_pull();
  EXPECT_EQ(req.image().image(), "busybox:1");
  EXPECT_EQ(req.auth().username(), "alice");
  EXPECT_EQ(req.auth().password(), "s3:cret");
  EXPECT_EQ(req.image().annotations().at("k"), "v");

  Result prompt = Ctl({"pull", "-u", "bob", "busybox:2"}, "secret\n");
  ASSERT_EQ(prompt.code, 0) << prompt.err;
  EXPECT_EQ(images_.last_pull().auth().password(), "secret");

  Result both = Ctl({"pull", "--creds", "a:b", "--auth", "YTpi", "busybox:1"});
  EXPECT_EQ(both.code, 1);
  EXPECT_NE(both.err.find("both `--creds` and `--auth` are specified"), std::string::npos);

  Result failed = Ctl({"pull", "missing:1"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_NE(failed.err.find("msg=\"pulling image: rpc error: code = NotFound desc = manifest "
                            "unknown\""),
            std::string::npos)
      << failed.err;
  Result empty = Ctl({"pull"});
  EXPECT_EQ(empty.code, 1);
  EXPECT_NE(empty.err.find("Image name cannot be empty"), std::string::npos);
}

TEST_F(CtlCommandTest, RmiByNameAllAndPrune) {
  std::ofstream(dir_ + "/no-config.yaml") << "";
  Result missing = Ctl({"rmi", "nothing:here"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("level=error msg=\"no such image nothing:here\""), std::string::npos)
      << missing.err;
  EXPECT_NE(missing.err.find("msg=\"unable to remove the image(s)\""), std::string::npos);

  Result by_tag = Ctl({"rmi", "registry.k8s.io/e2e-test-images/busybox:1.29-2"});
  ASSERT_EQ(by_tag.code, 0) << by_tag.err;
  EXPECT_EQ(by_tag.out, "Deleted: registry.k8s.io/e2e-test-images/busybox:1.29-2\n");
  EXPECT_EQ(images_.count(), 0u);

  Result nothing = Ctl({"rmi", "-a"});
  EXPECT_EQ(nothing.code, 0);
  EXPECT_NE(nothing.err.find("level=info msg=\"No images to remove\""), std::string::npos);

  // Prune with a runtime that has no container service yet: every image goes.
  cri::Image untagged;
  untagged.set_id("sha256:feed");
  untagged.add_repo_digests("example.com/x@sha256:feed");
  untagged.set_size(10);
  images_.Add(untagged);
  images_.Add(BusyboxImage());
  Result prune = Ctl({"rmi", "--prune"});
  ASSERT_EQ(prune.code, 0) << prune.err;
  EXPECT_NE(prune.out.find("Deleted: example.com/x@sha256:feed\n"), std::string::npos);
  EXPECT_NE(prune.out.find("Deleted: registry.k8s.io/e2e-test-images/busybox:1.29-2\n"),
            std::string::npos);
  EXPECT_EQ(images_.count(), 0u);
}

TEST_F(CtlCommandTest, UnreachableEndpointFailsWithUnavailable) {
  std::ofstream(dir_ + "/no-config.yaml") << "";
  endpoint_ = "unix://" + dir_ + "/absent.sock";
  Result r = Ctl({"images"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("msg=\"listing images: rpc error: code = Unavailable desc = "),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace berth::ctl
