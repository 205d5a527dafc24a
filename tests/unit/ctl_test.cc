// Tests of berthctl: the pure formatting and configuration parts against
// texts crictl v1.26.1 prints, and whole commands against an in-process fake
// CRI server on a Unix socket.

// First: the CRI header's Signal enum clashes with <signal.h> macros.
// clang-format off
#include "runtime/v1/api.grpc.pb.h"
// clang-format on

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ctl/app.h"
#include "ctl/commands.h"
#include "ctl/cri_log.h"
#include "ctl/endpoint.h"
#include "ctl/go_json.h"
#include "ctl/go_time.h"
#include "ctl/go_yaml.h"
#include "ctl/log.h"
#include "ctl/output.h"
#include "ctl/runtime_output.h"
#include "ctl/table.h"
#include "ctl/terminal.h"
#include "ctl/yaml_reader.h"
#include "stream/stream_server.h"
#include "stream_fake_runtime.h"

// After the CRI headers: their Signal enum has names that <signal.h> defines
// as macros.
#include <signal.h>

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
  EXPECT_NE(doc.status().message().find("YAML line 2, column"), std::string::npos) << doc.status();
  EXPECT_FALSE(ParseYaml("a: &x 1\n").ok());
  // A key given twice is refused, as berthctl always did.
  doc = ParseYaml("metadata:\n  name: a\n  name: b\n");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("YAML line 3, column 3: duplicate mapping key \"name\""),
            std::string::npos)
      << doc.status();
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
  // A trailing newline stays in the quoted message and goes on a terminal.
  EXPECT_NE(Logger::Format(Logger::Level::kFatal, "out\n", false, t0, t0).find("msg=\"out\\n\"\n"),
            std::string::npos);
  EXPECT_EQ(Logger::Format(Logger::Level::kFatal, "out\n", true, t0, t0).find("out\n"),
            std::string::npos);
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

// Pins the local time zone to UTC for the Go time texts.
class ScopedUtc {
 public:
  ScopedUtc() {
    const char* tz = getenv("TZ");
    if (tz != nullptr) saved_ = tz;
    had_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  ~ScopedUtc() {
    if (had_) {
      setenv("TZ", saved_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::string saved_;
  bool had_ = false;
};

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kNow = 1700000000 * kSec;  // 2023-11-14T22:13:20Z

TEST(CommandsTest, ContainerConfigFromYamlAndJson) {
  char tmpl[] = "/tmp/ctlctr-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir(tmpl);
  {
    // snake_case and lowerCamelCase keys mixed, enums by number.
    std::ofstream(dir / "ctr.yaml") << "metadata:\n  name: busybox\n"
                                       "image:\n  image: registry.k8s.io/e2e-test-images/"
                                       "busybox:1.29-2\n"
                                       "command: [sh, -c]\n"
                                       "args:\n- echo hi; sleep 1000\n"
                                       "workingDir: /tmp\n"
                                       "envs:\n- key: A\n  value: \"1\"\n"
                                       "log_path: busybox.0.log\n"
                                       "linux:\n  resources:\n    memory_limit_in_bytes: 67108864\n"
                                       "    cpuShares: 512\n"
                                       "  security_context:\n    namespace_options: {pid: 1}\n"
                                       "labels: {app: test}\n";
    std::ofstream(dir / "ctr.json") << R"({"metadata": {"name": "j", "attempt": 3},
        "image": {"image": "busybox"}, "tty": true, "log_path": "j.log",
        "mounts": [{"container_path": "/data", "host_path": "/tmp", "readonly": true}],
        "unknown": {"x": 1}})";
    std::ofstream(dir / "bad.json") << R"({"metadata": {"name": 5}})";
  }
  StatusOr<cri::ContainerConfig> yaml = LoadContainerConfig((dir / "ctr.yaml").string());
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(yaml->metadata().name(), "busybox");
  EXPECT_EQ(yaml->image().image(), "registry.k8s.io/e2e-test-images/busybox:1.29-2");
  ASSERT_EQ(yaml->command_size(), 2);
  EXPECT_EQ(yaml->command(1), "-c");
  EXPECT_EQ(yaml->args(0), "echo hi; sleep 1000");
  EXPECT_EQ(yaml->working_dir(), "/tmp");
  EXPECT_EQ(yaml->envs(0).key(), "A");
  EXPECT_EQ(yaml->envs(0).value(), "1");
  EXPECT_EQ(yaml->log_path(), "busybox.0.log");
  EXPECT_EQ(yaml->linux().resources().memory_limit_in_bytes(), 67108864);
  EXPECT_EQ(yaml->linux().resources().cpu_shares(), 512);
  EXPECT_EQ(yaml->linux().security_context().namespace_options().pid(), cri::CONTAINER);
  EXPECT_EQ(yaml->labels().at("app"), "test");

  StatusOr<cri::ContainerConfig> json = LoadContainerConfig((dir / "ctr.json").string());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->metadata().attempt(), 3u);
  EXPECT_TRUE(json->tty());
  ASSERT_EQ(json->mounts_size(), 1);
  EXPECT_EQ(json->mounts(0).container_path(), "/data");
  EXPECT_TRUE(json->mounts(0).readonly());

  StatusOr<cri::ContainerConfig> bad = LoadContainerConfig((dir / "bad.json").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not a ContainerConfig"), std::string::npos)
      << bad.status();
  EXPECT_EQ(LoadContainerConfig((dir / "none.yaml").string()).status().message(),
            "config at " + (dir / "none.yaml").string() + " not found");
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------- time -----

TEST(GoTimeTest, HumanDurationLikeGoUnits) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  using std::chrono::seconds;
  EXPECT_EQ(HumanDuration(milliseconds(999)), "Less than a second");
  EXPECT_EQ(HumanDuration(seconds(-5)), "Less than a second");
  EXPECT_EQ(HumanDuration(seconds(1)), "1 second");
  EXPECT_EQ(HumanDuration(seconds(59)), "59 seconds");
  EXPECT_EQ(HumanDuration(seconds(90)), "About a minute");
  EXPECT_EQ(HumanDuration(minutes(5)), "5 minutes");
  EXPECT_EQ(HumanDuration(minutes(89)), "About an hour");
  EXPECT_EQ(HumanDuration(minutes(91)), "2 hours");
  EXPECT_EQ(HumanDuration(hours(47)), "47 hours");
  EXPECT_EQ(HumanDuration(hours(72)), "3 days");
  EXPECT_EQ(HumanDuration(hours(24 * 20)), "2 weeks");
  EXPECT_EQ(HumanDuration(hours(24 * 90)), "3 months");
  EXPECT_EQ(HumanDuration(hours(24 * 365 * 3)), "3 years");
}

TEST(GoTimeTest, TimeTextsLikeGo) {
  ScopedUtc utc;
  EXPECT_EQ(GoTimeString(kNow + 123456789), "2023-11-14 22:13:20.123456789 +0000 UTC");
  EXPECT_EQ(GoTimeString(kNow + 120000000), "2023-11-14 22:13:20.12 +0000 UTC");
  EXPECT_EQ(GoTimeString(kNow), "2023-11-14 22:13:20 +0000 UTC");
  EXPECT_EQ(GoRfc3339Nano(kNow + 500000000), "2023-11-14T22:13:20.5Z");
  EXPECT_EQ(GoRfc3339Nano(0), "1970-01-01T00:00:00Z");

  StatusOr<ZonedTime> t = ParseRfc3339Nano("2023-11-14T23:13:20.000000001+01:00");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->unix_nanos, kNow + 1);
  EXPECT_EQ(t->offset_seconds, 3600);
  EXPECT_EQ(FormatRfc3339NanoFixed(*t), "2023-11-14T23:13:20.000000001+01:00");
  EXPECT_EQ(FormatRfc3339NanoFixed({kNow, 0}), "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(ParseRfc3339Nano("2023-11-14T22:13:20Z")->unix_nanos, kNow);
  EXPECT_FALSE(ParseRfc3339Nano("2023-11-14 22:13:20Z").ok());
  EXPECT_FALSE(ParseRfc3339Nano("2023-02-30T22:13:20Z").ok());
  EXPECT_FALSE(ParseRfc3339Nano("2023-11-14T22:13:20").ok());
  // Beyond int64 nanoseconds (found by tests/fuzz/cri_log_reader: it overflowed).
  EXPECT_TRUE(ParseRfc3339Nano("2262-04-11T23:47:16.854775807Z").ok());
  EXPECT_FALSE(ParseRfc3339Nano("2262-04-11T23:47:16.854775808Z").ok());
  EXPECT_FALSE(ParseRfc3339Nano("9999-12-31T23:59:59Z").ok());
  EXPECT_FALSE(ParseRfc3339Nano("0001-01-01T00:00:00Z").ok());
}

TEST(GoTimeTest, SinceValuesLikeDocker) {
  ScopedUtc utc;
  auto now = std::chrono::system_clock::time_point(std::chrono::nanoseconds(kNow + 700000000));
  EXPECT_EQ(*ParseSinceTime("42m", now), kNow - 42 * 60 * kSec);
  EXPECT_EQ(*ParseSinceTime("1h30m", now), kNow - 90 * 60 * kSec);
  EXPECT_EQ(*ParseSinceTime("2013-01-02T13:23:37Z", now), 1357133017 * kSec);
  EXPECT_EQ(*ParseSinceTime("2013-01-02T13:23:37", now), 1357133017 * kSec);  // local = UTC
  EXPECT_EQ(*ParseSinceTime("2013-01-02T13:23", now), 1357133017 * kSec - 37 * kSec);
  EXPECT_EQ(*ParseSinceTime("2013-01-02T14:23:37.5+01:00", now), 1357133017 * kSec + kSec / 2);
  EXPECT_EQ(*ParseSinceTime("2013-01-02", now), 1357084800 * kSec);
  EXPECT_EQ(*ParseSinceTime("1357133017.25", now), 1357133017 * kSec + kSec / 4);
  EXPECT_EQ(*ParseSinceTime("0", now), 0);
  EXPECT_EQ(ParseSinceTime("bogus", now).status().message(),
            "failed to parse value as time or duration: \"bogus\"");
  EXPECT_FALSE(ParseSinceTime("2013-13-02", now).ok());
  EXPECT_EQ(ParseSinceTime("99999999999", now).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSinceTime("1.99999999999999999999", now).status().code(),
            StatusCode::kInvalidArgument);
}

// ----------------------------------------------------------- pods / ps -----

std::vector<cri::PodSandbox> TwoPods() {
  cri::PodSandbox a;
  a.set_id("0123456789abcdef0123");
  a.mutable_metadata()->set_name("busybox-sandbox");
  a.mutable_metadata()->set_namespace_("default");
  a.mutable_metadata()->set_uid("uid-a");
  a.mutable_metadata()->set_attempt(1);
  a.set_state(cri::SANDBOX_READY);
  a.set_created_at(kNow - 300 * kSec);
  (*a.mutable_labels())["app"] = "web";
  (*a.mutable_annotations())["note"] = "x";
  cri::PodSandbox b;
  b.set_id("fedcba98765432100000");
  b.mutable_metadata()->set_name("other");
  b.mutable_metadata()->set_namespace_("kube-system");
  b.set_state(cri::SANDBOX_NOTREADY);
  b.set_created_at(kNow - 7200 * kSec);
  b.set_runtime_handler("runc");
  return {b, a};
}

TEST(RuntimeOutputTest, PodsTableQuietAndVerbose) {
  ScopedUtc utc;
  std::vector<cri::PodSandbox> pods = SelectPods(TwoPods(), {});
  ASSERT_EQ(pods.size(), 2u);
  EXPECT_EQ(pods[0].metadata().name(), "busybox-sandbox");  // newest first
  StatusOr<std::string> table = PodListText(pods, {}, kNow);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table,
            "POD ID              CREATED             STATE               NAME                "
            "NAMESPACE           ATTEMPT             RUNTIME\n"
            "0123456789abc       5 minutes ago       Ready               busybox-sandbox     "
            "default             1                   (default)\n"
            "fedcba9876543       2 hours ago         NotReady            other               "
            "kube-system         0                   runc\n");
  RuntimeListOptions no_trunc;
  no_trunc.no_trunc = true;
  EXPECT_NE(PodListText(pods, no_trunc, kNow)->find("0123456789abcdef0123   "), std::string::npos);
  RuntimeListOptions quiet;
  quiet.quiet = true;
  EXPECT_EQ(*PodListText(pods, quiet, kNow), "0123456789abcdef0123\nfedcba98765432100000\n");
  RuntimeListOptions verbose;
  verbose.verbose = true;
  EXPECT_EQ(*PodListText({pods[0]}, verbose, kNow),
            "ID: 0123456789abcdef0123\nName: busybox-sandbox\nUID: uid-a\nNamespace: default\n"
            "Attempt: 1\nStatus: Ready\nCreated: 2023-11-14 22:08:20 +0000 UTC\n"
            "Labels:\n\tapp -> web\nAnnotations:\n\tnote -> x\nRuntime: (default)\n\n");
  EXPECT_EQ(*PodListText({pods[1]}, verbose, kNow),
            "ID: fedcba98765432100000\nName: other\nNamespace: kube-system\nStatus: NotReady\n"
            "Created: 2023-11-14 20:13:20 +0000 UTC\nRuntime: runc\n\n");
  cri::PodSandbox weird = pods[0];
  weird.set_state(static_cast<cri::PodSandboxState>(7));
  EXPECT_FALSE(PodListText({weird}, {}, kNow).ok());
}

TEST(RuntimeOutputTest, PodSelectionByRegexLatestAndLast) {
  ListSelection by_name;
  by_name.name_regexp = "^oth";
  std::vector<cri::PodSandbox> pods = SelectPods(TwoPods(), by_name);
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].metadata().name(), "other");
  ListSelection by_ns;
  by_ns.namespace_regexp = "kube";
  EXPECT_EQ(SelectPods(TwoPods(), by_ns).size(), 1u);
  ListSelection bad;
  bad.name_regexp = "([";
  EXPECT_TRUE(SelectPods(TwoPods(), bad).empty());
  ListSelection latest;
  latest.latest = true;
  pods = SelectPods(TwoPods(), latest);
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].metadata().name(), "busybox-sandbox");
  ListSelection last;
  last.last = 5;
  EXPECT_EQ(SelectPods(TwoPods(), last).size(), 2u);
  EXPECT_TRUE(MatchesRegex("", "anything"));
  EXPECT_TRUE(MatchesRegex("b.x", "busybox"));
  EXPECT_FALSE(MatchesRegex("^box", "busybox"));
}

std::vector<cri::Container> TwoContainers() {
  cri::Container a;
  a.set_id("c0ffee0123456789abcdef");
  a.set_pod_sandbox_id("0123456789abcdef0123");
  a.mutable_metadata()->set_name("busybox");
  a.mutable_image()->set_image(
      "sha256:7cfbbec8963d8f13e6c70416d6592e1cc10f47a348131290a55d43c3acab3fb9");
  a.set_state(cri::CONTAINER_RUNNING);
  a.set_created_at(kNow - 90 * kSec);
  (*a.mutable_labels())["io.kubernetes.pod.name"] = "nginx-pod";
  cri::Container b;
  b.set_id("beef00000000000000");
  b.set_pod_sandbox_id("0123456789abcdef0123");
  b.mutable_metadata()->set_name("sidecar");
  b.mutable_metadata()->set_attempt(2);
  b.mutable_image()->set_image("busybox:latest");
  b.set_state(cri::CONTAINER_EXITED);
  b.set_created_at(kNow - 72 * 3600 * kSec);
  (*b.mutable_annotations())["k"] = "v";
  return {b, a};
}

TEST(RuntimeOutputTest, PsTableQuietVerboseAndResolvedImages) {
  std::vector<cri::Container> cs = SelectContainers(TwoContainers(), {});
  ASSERT_EQ(cs[0].metadata().name(), "busybox");
  StatusOr<std::string> table = ContainerListText(cs, {}, kNow);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table,
            "CONTAINER           IMAGE               CREATED              STATE               "
            "NAME                ATTEMPT             POD ID              POD\n"
            "c0ffee0123456       7cfbbec8963d8       About a minute ago   Running             "
            "busybox             0                   0123456789abc       nginx-pod\n"
            "beef000000000       busybox:latest      3 days ago           Exited              "
            "sidecar             2                   0123456789abc       unknown\n");
  RuntimeListOptions quiet;
  quiet.quiet = true;
  EXPECT_EQ(*ContainerListText(cs, quiet, kNow), "c0ffee0123456789abcdef\nbeef00000000000000\n");
  RuntimeListOptions verbose;
  verbose.verbose = true;
  EXPECT_EQ(*ContainerListText({cs[1]}, verbose, kNow),
            "ID: beef00000000000000\nPodID: 0123456789abcdef0123\nName: sidecar\nAttempt: 2\n"
            "State: Exited\nImage: busybox:latest\nCreated: 3 days ago\n"
            "Annotations:\n\tk -> v\n\n");
  RuntimeListOptions no_trunc;
  no_trunc.no_trunc = true;
  EXPECT_NE(ContainerListText(cs, no_trunc, kNow)->find(cs[0].image().image()), std::string::npos);
  auto resolver = [](const std::string& image) -> StatusOr<std::string> {
    if (image == "busybox:latest") return NotFoundError("no such image");
    return std::string("registry.k8s.io/e2e-test-images/busybox:1.29-2");
  };
  StatusOr<std::string> resolved = ContainerListText({cs[0]}, {}, kNow, resolver);
  ASSERT_TRUE(resolved.ok());
  EXPECT_NE(resolved->find("registry.k8s.io/e2e-test-images/busybox:1.29-2   About"),
            std::string::npos)
      << *resolved;
  EXPECT_EQ(ContainerListText(cs, {}, kNow, resolver).status().message(),
            "failed to fetch repo image: no such image");
  ListSelection by_name;
  by_name.name_regexp = "side";
  EXPECT_EQ(SelectContainers(TwoContainers(), by_name).size(), 1u);
  EXPECT_TRUE(IsDigest(cs[0].image().image()));
  EXPECT_FALSE(IsDigest("sha256:abc"));
  EXPECT_FALSE(IsDigest("busybox:latest"));
}

TEST(RuntimeOutputTest, InspectDocumentsLikeCrictl) {
  ScopedUtc utc;
  cri::ContainerStatus st;
  st.set_id("c1");
  st.mutable_metadata()->set_name("busybox");
  st.set_state(cri::CONTAINER_RUNNING);
  st.set_created_at(kNow - 90 * kSec);
  st.set_started_at(kNow - 89 * kSec + 500000000);
  st.set_finished_at(0);
  st.mutable_image()->set_image("busybox");
  st.set_image_ref("sha256:1");
  (*st.mutable_labels())["a"] = "<b>";
  st.set_log_path("/var/log/pods/x/busybox/0.log");
  StatusOr<std::string> json = ContainerStatusJson(st);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->rfind("{\n  \"id\": \"c1\",\n  \"metadata\": {\n    \"attempt\": 0,\n"
                        "    \"name\": \"busybox\"\n  },\n  \"state\": \"CONTAINER_RUNNING\",\n"
                        "  \"createdAt\": \"2023-11-14T22:11:50Z\",\n"
                        "  \"startedAt\": \"2023-11-14T22:11:51.5Z\",\n"
                        "  \"finishedAt\": \"0001-01-01T00:00:00Z\",\n  \"exitCode\": 0,\n"
                        "  \"image\": {\n    \"annotations\": {},\n",
                        0),
            0u)
      << *json;
  EXPECT_NE(json->find("  \"labels\": {\n    \"a\": \"\\u003cb\\u003e\"\n  },\n"
                       "  \"annotations\": {},\n  \"mounts\": [],\n"
                       "  \"logPath\": \"/var/log/pods/x/busybox/0.log\",\n  \"resources\": null"),
            std::string::npos)
      << *json;
  st.set_state(cri::CONTAINER_CREATED);
  EXPECT_NE(ContainerStatusJson(st)->find("\"startedAt\": \"0001-01-01T00:00:00Z\""),
            std::string::npos);
  st.set_state(cri::CONTAINER_EXITED);
  st.set_finished_at(kNow);
  EXPECT_NE(ContainerStatusJson(st)->find("\"finishedAt\": \"2023-11-14T22:13:20Z\""),
            std::string::npos);

  cri::PodSandboxStatus pod;
  pod.set_id("p1");
  pod.mutable_metadata()->set_name("busybox-sandbox");
  pod.set_state(cri::SANDBOX_READY);
  pod.set_created_at(kNow);
  pod.mutable_network()->set_ip("10.88.0.5");
  StatusOr<std::string> pod_json = PodSandboxStatusJson(pod);
  ASSERT_TRUE(pod_json.ok());
  EXPECT_EQ(pod_json->rfind("{\n  \"id\": \"p1\",\n  \"metadata\": {\n    \"attempt\": 0,\n"
                            "    \"name\": \"busybox-sandbox\",\n    \"namespace\": \"\",\n"
                            "    \"uid\": \"\"\n  },\n  \"state\": \"SANDBOX_READY\",\n"
                            "  \"createdAt\": \"2023-11-14T22:13:20Z\",\n  \"network\": {\n"
                            "    \"additionalIps\": [],\n    \"ip\": \"10.88.0.5\"\n  },\n",
                            0),
            0u)
      << *pod_json;
  // Embedded in the status/info document like crictl's outputStatusInfo.
  StatusOr<std::string> doc = StatusInfoOutput(*pod_json, {{"info", R"({"pid":42})"}}, "json");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->rfind("{\n  \"status\": {\n    \"id\": \"p1\",\n", 0), 0u) << *doc;
  EXPECT_NE(doc->find("  },\n  \"info\": {\n    \"pid\": 42\n  }\n}\n"), std::string::npos) << *doc;
}

TEST(RuntimeOutputTest, InspectTables) {
  ScopedUtc utc;
  cri::PodSandboxStatusResponse pod;
  cri::PodSandboxStatus* ps = pod.mutable_status();
  ps->set_id("p1");
  ps->mutable_metadata()->set_name("busybox-sandbox");
  ps->mutable_metadata()->set_namespace_("default");
  ps->mutable_metadata()->set_uid("u1");
  ps->set_state(cri::SANDBOX_READY);
  ps->set_created_at(kNow);
  ps->mutable_network()->set_ip("10.88.0.5");
  ps->mutable_network()->add_additional_ips()->set_ip("fd00::5");
  (*ps->mutable_labels())["app"] = "web";
  (*pod.mutable_info())["pid"] = "42";
  EXPECT_EQ(PodSandboxStatusTable(pod, true),
            "ID: p1\nName: busybox-sandbox\nUID: u1\nNamespace: default\nAttempt: 0\n"
            "Status: SANDBOX_READY\nCreated: 2023-11-14 22:13:20 +0000 UTC\n"
            "IP Addresses: 10.88.0.5\nAdditional IP: fd00::5\nLabels:\n\tapp -> web\n"
            "Info: map[pid:42]\n");
  EXPECT_EQ(PodSandboxStatusTable(pod, false).find("Info:"), std::string::npos);

  cri::ContainerStatusResponse ctr;
  cri::ContainerStatus* cs = ctr.mutable_status();
  cs->set_id("c1");
  cs->mutable_metadata()->set_name("busybox");
  cs->mutable_metadata()->set_attempt(1);
  cs->set_state(cri::CONTAINER_EXITED);
  cs->set_created_at(kNow - 600 * kSec);
  cs->set_started_at(kNow - 590 * kSec);
  cs->set_finished_at(kNow - 5 * kSec);
  cs->set_exit_code(3);
  EXPECT_EQ(ContainerStatusTable(ctr, false, kNow),
            "ID: c1\nName: busybox\nAttempt: 1\nState: CONTAINER_EXITED\n"
            "Created: 10 minutes ago\nStarted: 9 minutes ago\nFinished: 5 seconds ago\n"
            "Exit Code: 3\n");
  cs->set_state(cri::CONTAINER_CREATED);
  EXPECT_EQ(ContainerStatusTable(ctr, true, kNow),
            "ID: c1\nName: busybox\nAttempt: 1\nState: CONTAINER_CREATED\n"
            "Created: 10 minutes ago\nInfo: map[]\n");
}

// ------------------------------------------------------------ CRI logs -----

class CriLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ctllog-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/0.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& text, bool append = false) {
    std::ofstream f(path_, append ? std::ios::app : std::ios::trunc);
    f << text;
  }
  struct Out {
    Status status;
    std::string out;
    std::string err;
  };
  Out Read(const LogReadOptions& opts, const LogFollowHooks& hooks = {}) {
    std::ostringstream out, err;
    Status s = ReadCriLog(path_, opts, out, err, hooks);
    return {s, out.str(), err.str()};
  }

  static constexpr const char* kLog =
      "2023-11-14T22:13:20.000000001Z stdout F hello\n"
      "2023-11-14T22:13:21Z stdout P part one, \n"
      "2023-11-14T22:13:21.5Z stdout F part two\n"
      "2023-11-14T23:13:22+01:00 stderr F oops\n"
      "garbage\n"
      "2023-11-14T22:13:23Z stdout F last\n";

  std::string dir_;
  std::string path_;
};

TEST_F(CriLogTest, ParsesRecords) {
  StatusOr<LogRecord> f = ParseCriLogLine("2023-11-14T22:13:20Z stderr F a b \n");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->stream, LogStream::kStderr);
  EXPECT_EQ(f->text, "a b \n");
  EXPECT_EQ(f->timestamp.unix_nanos, kNow);
  StatusOr<LogRecord> p = ParseCriLogLine("2023-11-14T22:13:20Z stdout P:x part\n");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->text, "part");
  EXPECT_EQ(ParseCriLogLine("nospace").status().message(), "timestamp is not found");
  EXPECT_EQ(ParseCriLogLine("2023-11-14T22:13:20Z stdin F x").status().message(),
            "unexpected stream type \"stdin\"");
  EXPECT_EQ(ParseCriLogLine("2023-11-14T22:13:20Z stdout F").status().message(),
            "log tag is not found");
  EXPECT_FALSE(ParseCriLogLine("yesterday stdout F x").ok());
  StatusOr<LogRecord> d =
      ParseDockerJsonLogLine(R"({"log":"hi\n","stream":"stderr","time":"2023-11-14T22:13:20.5Z"})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->text, "hi\n");
  EXPECT_EQ(d->stream, LogStream::kStderr);
  EXPECT_EQ(d->timestamp.unix_nanos, kNow + 500000000);
}

TEST_F(CriLogTest, JoinsPartsAndSplitsStreams) {
  Write(kLog);
  Out all = Read({});
  ASSERT_TRUE(all.status.ok()) << all.status;
  EXPECT_EQ(all.out, "hello\npart one, part two\nlast\n");
  EXPECT_EQ(all.err, "oops\n");

  LogReadOptions ts;
  ts.timestamps = true;
  Out stamped = Read(ts);
  // One prefix per printed line: the continuation of a partial gets none.
  EXPECT_EQ(stamped.out,
            "2023-11-14T22:13:20.000000001Z hello\n"
            "2023-11-14T22:13:21.000000000Z part one, part two\n"
            "2023-11-14T22:13:23.000000000Z last\n");
  EXPECT_EQ(stamped.err, "2023-11-14T23:13:22.000000000+01:00 oops\n");
}

TEST_F(CriLogTest, TailSinceAndLimit) {
  Write(kLog);
  LogReadOptions tail;
  tail.tail = 1;
  EXPECT_EQ(Read(tail).out, "last\n");
  tail.tail = 3;  // the garbage line counts as a line of the file and is skipped
  Out three = Read(tail);
  EXPECT_EQ(three.out, "last\n");
  EXPECT_EQ(three.err, "oops\n");
  tail.tail = 2;  // as in the kubelet, the first line read decides the format
  EXPECT_EQ(Read(tail).status.message(),
            "failed to get parse function: unsupported log format: \"garbage\\n\"");
  tail.tail = 4;
  Out four = Read(tail);
  EXPECT_EQ(four.out, "part two\nlast\n");
  EXPECT_EQ(four.err, "oops\n");
  tail.tail = 0;
  EXPECT_EQ(Read(tail).out, "");
  tail.tail = 100;
  EXPECT_EQ(Read(tail).out, "hello\npart one, part two\nlast\n");

  LogReadOptions since;
  since.since_unix_nanos = kNow + kSec;  // 22:13:21Z: the first record is older
  Out recent = Read(since);
  EXPECT_EQ(recent.out, "part one, part two\nlast\n");
  EXPECT_EQ(recent.err, "oops\n");

  LogReadOptions limit;
  limit.limit_bytes = 8;
  EXPECT_EQ(Read(limit).out, "hello\npa");

  // A final line without newline is printed too.
  Write("2023-11-14T22:13:24Z stdout F no newline", true);
  EXPECT_EQ(Read({}).out, "hello\npart one, part two\nlast\nno newline");
}

TEST_F(CriLogTest, DockerJsonAndErrors) {
  Write(R"({"log":"hi\n","stream":"stdout","time":"2023-11-14T22:13:20Z"})"
        "\n"
        R"({"log":"err\n","stream":"stderr","time":"2023-11-14T22:13:21Z"})"
        "\n");
  Out docker = Read({});
  EXPECT_EQ(docker.out, "hi\n");
  EXPECT_EQ(docker.err, "err\n");
  Write("not a log\n");
  Out unknown = Read({});
  EXPECT_EQ(unknown.status.message(),
            "failed to get parse function: unsupported log format: \"not a log\\n\"");
  std::ostringstream out, err;
  Status missing = ReadCriLog(dir_ + "/none.log", {}, out, err);
  EXPECT_EQ(missing.message(), "failed to try resolving symlinks in path \"" + dir_ +
                                   "/none.log\": lstat " + dir_ +
                                   "/none.log: no such file or directory");
}

TEST_F(CriLogTest, FindTailLineStartAcrossBlocks) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "123456789\n";
  Write(text);
  int fd = open(path_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(*FindTailLineStart(fd, 5), 2950);
  EXPECT_EQ(*FindTailLineStart(fd, 0), 3000);
  EXPECT_EQ(*FindTailLineStart(fd, 150), 1500);
  EXPECT_EQ(*FindTailLineStart(fd, 1000), 0);
  EXPECT_EQ(*FindTailLineStart(fd, -1), 0);
  close(fd);
}

TEST_F(CriLogTest, FollowsUntilTheContainerStops) {
  Write("2023-11-14T22:13:20Z stdout F first\n");
  int calls = 0;
  LogFollowHooks hooks;
  hooks.poll_interval_ms = 50;
  // Each check of the container writes more, a partial line split in two
  // among it; the fourth check finds the container gone.
  hooks.container_running = [&]() -> StatusOr<bool> {
    ++calls;
    if (calls == 1) Write("2023-11-14T22:13:21Z stderr F second\n", true);
    if (calls == 2) Write("2023-11-14T22:13:22Z stdout F thi", true);
    if (calls == 3) Write("rd\n", true);
    return calls < 4;
  };
  LogReadOptions opts;
  opts.follow = true;
  opts.tail = 0;  // start at the end: only what is written while following
  Out r = Read(opts, hooks);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.err, "second\n");
  EXPECT_EQ(r.out, "third\n");
  EXPECT_EQ(calls, 4);

  // Errors of the status check end the follow.
  hooks.container_running = []() -> StatusOr<bool> { return UnavailableError("gone"); };
  EXPECT_EQ(Read(opts, hooks).status.message(), "gone");
}

TEST_F(CriLogTest, FollowStopsOnCancel) {
  Write("2023-11-14T22:13:20Z stdout F first\n");
  int efd = eventfd(1, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  LogFollowHooks hooks;
  hooks.container_running = []() -> StatusOr<bool> { return true; };
  hooks.cancel_fd = efd;
  LogReadOptions opts;
  opts.follow = true;
  Out r = Read(opts, hooks);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.out, "first\n");
  close(efd);
}

// ------------------------------------------- commands against a fake CRI -----

// A CRI image service with an in-memory image list.
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

// An in-memory runtime: pods and containers with the state changes crictl's
// commands cause, and the last requests for the tests to look at.
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

  grpc::Status RunPodSandbox(grpc::ServerContext*, const cri::RunPodSandboxRequest* req,
                             cri::RunPodSandboxResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_run_pod_ = *req;
    cri::PodSandbox pod;
    pod.set_id(StrCat("pod", ++next_id_, "0123456789abcdef"));
    *pod.mutable_metadata() = req->config().metadata();
    pod.set_state(cri::SANDBOX_READY);
    pod.set_created_at(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() +
                       next_id_);
    *pod.mutable_labels() = req->config().labels();
    pod.set_runtime_handler(req->runtime_handler());
    pods_[pod.id()] = pod;
    resp->set_pod_sandbox_id(pod.id());
    return grpc::Status::OK;
  }
  grpc::Status StopPodSandbox(grpc::ServerContext*, const cri::StopPodSandboxRequest* req,
                              cri::StopPodSandboxResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pods_.find(req->pod_sandbox_id());
    if (it == pods_.end()) return NotFound("pod sandbox", req->pod_sandbox_id());
    it->second.set_state(cri::SANDBOX_NOTREADY);
    for (auto& [id, c] : containers_) {
      if (c.pod_sandbox_id() == it->first && c.state() == cri::CONTAINER_RUNNING) {
        c.set_state(cri::CONTAINER_EXITED);
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status RemovePodSandbox(grpc::ServerContext*, const cri::RemovePodSandboxRequest* req,
                                cri::RemovePodSandboxResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    pods_.erase(req->pod_sandbox_id());
    for (auto it = containers_.begin(); it != containers_.end();) {
      it = it->second.pod_sandbox_id() == req->pod_sandbox_id() ? containers_.erase(it)
                                                                : std::next(it);
    }
    return grpc::Status::OK;
  }
  grpc::Status PodSandboxStatus(grpc::ServerContext*, const cri::PodSandboxStatusRequest* req,
                                cri::PodSandboxStatusResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pods_.find(req->pod_sandbox_id());
    if (it == pods_.end()) return NotFound("pod sandbox", req->pod_sandbox_id());
    const cri::PodSandbox& pod = it->second;
    cri::PodSandboxStatus* st = resp->mutable_status();
    st->set_id(pod.id());
    *st->mutable_metadata() = pod.metadata();
    st->set_state(pod.state());
    st->set_created_at(pod.created_at());
    st->mutable_network()->set_ip("10.88.0.7");
    *st->mutable_labels() = pod.labels();
    st->set_runtime_handler(pod.runtime_handler());
    if (req->verbose()) (*resp->mutable_info())["info"] = R"({"pid":4242})";
    return grpc::Status::OK;
  }
  grpc::Status ListPodSandbox(grpc::ServerContext*, const cri::ListPodSandboxRequest* req,
                              cri::ListPodSandboxResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_pod_filter_ = req->filter();
    for (const auto& [id, pod] : pods_) {
      const cri::PodSandboxFilter& f = req->filter();
      if (!f.id().empty() && f.id() != id) continue;
      if (f.has_state() && f.state().state() != pod.state()) continue;
      if (!LabelsMatch(f.label_selector(), pod.labels())) continue;
      *resp->add_items() = pod;
    }
    return grpc::Status::OK;
  }

  grpc::Status CreateContainer(grpc::ServerContext*, const cri::CreateContainerRequest* req,
                               cri::CreateContainerResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_create_ = *req;
    if (pods_.count(req->pod_sandbox_id()) == 0) {
      return NotFound("pod sandbox", req->pod_sandbox_id());
    }
    cri::Container c;
    c.set_id(StrCat("ctr", ++next_id_, "0123456789abcdef"));
    c.set_pod_sandbox_id(req->pod_sandbox_id());
    *c.mutable_metadata() = req->config().metadata();
    *c.mutable_image() = req->config().image();
    c.set_image_ref("sha256:7cfbbec8963d8f13e6c70416d6592e1cc10f47a348131290a55d43c3acab3fb9");
    c.set_state(cri::CONTAINER_CREATED);
    c.set_created_at(std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() +
                     next_id_);
    *c.mutable_labels() = req->config().labels();
    (*c.mutable_labels())["io.kubernetes.pod.name"] = req->sandbox_config().metadata().name();
    containers_[c.id()] = c;
    resp->set_container_id(c.id());
    return grpc::Status::OK;
  }
  grpc::Status StartContainer(grpc::ServerContext*, const cri::StartContainerRequest* req,
                              cri::StartContainerResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(req->container_id());
    if (it == containers_.end()) return NotFound("container", req->container_id());
    it->second.set_state(cri::CONTAINER_RUNNING);
    return grpc::Status::OK;
  }
  grpc::Status StopContainer(grpc::ServerContext*, const cri::StopContainerRequest* req,
                             cri::StopContainerResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_stop_timeout_ = req->timeout();
    auto it = containers_.find(req->container_id());
    if (it == containers_.end()) return NotFound("container", req->container_id());
    it->second.set_state(cri::CONTAINER_EXITED);
    return grpc::Status::OK;
  }
  grpc::Status RemoveContainer(grpc::ServerContext*, const cri::RemoveContainerRequest* req,
                               cri::RemoveContainerResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    containers_.erase(req->container_id());
    return grpc::Status::OK;
  }
  grpc::Status ListContainers(grpc::ServerContext*, const cri::ListContainersRequest* req,
                              cri::ListContainersResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, c] : containers_) {
      const cri::ContainerFilter& f = req->filter();
      if (!f.id().empty() && f.id() != id) continue;
      if (!f.pod_sandbox_id().empty() && f.pod_sandbox_id() != c.pod_sandbox_id()) continue;
      if (f.has_state() && f.state().state() != c.state()) continue;
      if (!LabelsMatch(f.label_selector(), c.labels())) continue;
      *resp->add_containers() = c;
    }
    return grpc::Status::OK;
  }
  grpc::Status ContainerStatus(grpc::ServerContext*, const cri::ContainerStatusRequest* req,
                               cri::ContainerStatusResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(req->container_id());
    if (it == containers_.end()) return NotFound("container", req->container_id());
    const cri::Container& c = it->second;
    cri::ContainerStatus* st = resp->mutable_status();
    st->set_id(c.id());
    *st->mutable_metadata() = c.metadata();
    st->set_state(c.state());
    st->set_created_at(c.created_at());
    if (c.state() != cri::CONTAINER_CREATED) st->set_started_at(c.created_at() + 1000);
    *st->mutable_image() = c.image();
    st->set_image_ref(c.image_ref());
    *st->mutable_labels() = c.labels();
    st->set_log_path(log_path_);
    return grpc::Status::OK;
  }
  grpc::Status UpdateContainerResources(grpc::ServerContext*,
                                        const cri::UpdateContainerResourcesRequest* req,
                                        cri::UpdateContainerResourcesResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_update_ = *req;
    return grpc::Status::OK;
  }
  // Echoes the command: "sh -c 'exit N'" exits N, anything else prints its
  // arguments on stdout and "warn" on stderr.
  grpc::Status ExecSync(grpc::ServerContext*, const cri::ExecSyncRequest* req,
                        cri::ExecSyncResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_exec_ = *req;
    if (req->cmd_size() == 3 && req->cmd(0) == "sh" && req->cmd(2).rfind("exit ", 0) == 0) {
      resp->set_exit_code(std::stoi(req->cmd(2).substr(5)));
      resp->set_stderr("failing");
      return grpc::Status::OK;
    }
    std::string joined;
    for (const std::string& a : req->cmd()) joined += (joined.empty() ? "" : " ") + a;
    resp->set_stdout(joined);
    resp->set_stderr("warn");
    return grpc::Status::OK;
  }

  // The streaming calls hand out URLs of a real streaming server (over a
  // fake stream::Runtime), when a test sets one.
  grpc::Status Exec(grpc::ServerContext*, const cri::ExecRequest* req,
                    cri::ExecResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_stream_exec_ = *req;
    if (stream_server_ == nullptr) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no");
    stream::ExecRequest r;
    r.container_id = req->container_id();
    r.cmd.assign(req->cmd().begin(), req->cmd().end());
    r.tty = req->tty();
    r.stdin = req->stdin();
    r.stdout = req->stdout();
    r.stderr = req->stderr();
    auto url = stream_server_->ExecUrl(r);
    if (!url.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, url.status().message());
    resp->set_url(*url);
    return grpc::Status::OK;
  }
  grpc::Status Attach(grpc::ServerContext*, const cri::AttachRequest* req,
                      cri::AttachResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_attach_ = *req;
    if (stream_server_ == nullptr) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no");
    stream::AttachRequest r;
    r.container_id = req->container_id();
    r.tty = req->tty();
    r.stdin = req->stdin();
    r.stdout = req->stdout();
    r.stderr = req->stderr();
    auto url = stream_server_->AttachUrl(r);
    if (!url.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, url.status().message());
    resp->set_url(*url);
    return grpc::Status::OK;
  }
  grpc::Status PortForward(grpc::ServerContext*, const cri::PortForwardRequest* req,
                           cri::PortForwardResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (stream_server_ == nullptr) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no");
    stream::PortForwardRequest r;
    r.pod_sandbox_id = req->pod_sandbox_id();
    auto url = stream_server_->PortForwardUrl(r);
    if (!url.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, url.status().message());
    resp->set_url(*url);
    return grpc::Status::OK;
  }
  // Stats: container "c1..." runs and uses half a core between any two calls
  // (CPU time +0.5 s, timestamp +1 s per call); "c2..." does not run. A filter
  // id "stuck" keeps the timestamps still; "broken" fails the call.
  static cri::ContainerStats CtrStatsAt(const std::string& id, const std::string& name, int64_t n,
                                        bool running) {
    cri::ContainerStats s;
    s.mutable_attributes()->set_id(id);
    s.mutable_attributes()->mutable_metadata()->set_name(name);
    s.mutable_writable_layer()->mutable_used_bytes()->set_value(8192);
    s.mutable_writable_layer()->mutable_inodes_used()->set_value(5);
    if (running) {
      s.mutable_cpu()->set_timestamp(1'700'000'000'000'000'000 + n * 1'000'000'000);
      s.mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(1'000'000'000 +
                                                                    n * 500'000'000);
      s.mutable_memory()->mutable_working_set_bytes()->set_value(12'345'678);
    }
    return s;
  }
  grpc::Status ListContainerStats(grpc::ServerContext*, const cri::ListContainerStatsRequest* req,
                                  cri::ListContainerStatsResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_stats_filter_ = req->filter();
    if (req->filter().id() == "broken") {
      return grpc::Status(grpc::StatusCode::INTERNAL, "cgroup unreadable");
    }
    const int64_t n = req->filter().id() == "stuck" ? 0 : ++stats_calls_;
    // Listed out of order: the client sorts by id.
    *resp->add_stats() = CtrStatsAt(std::string(64, '2').replace(0, 2, "c2"), "idle", n, false);
    *resp->add_stats() = CtrStatsAt(std::string(64, '1').replace(0, 2, "c1"), "busy", n, true);
    return grpc::Status::OK;
  }
  grpc::Status ListPodSandboxStats(grpc::ServerContext*, const cri::ListPodSandboxStatsRequest* req,
                                   cri::ListPodSandboxStatsResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_pod_stats_filter_ = req->filter();
    if (req->filter().id() == "broken") {
      return grpc::Status(grpc::StatusCode::INTERNAL, "cgroup unreadable");
    }
    const int64_t n = ++stats_calls_;
    cri::PodSandboxStats* p = resp->add_stats();
    p->mutable_attributes()->set_id(std::string(64, 'a').replace(0, 3, "pod"));
    p->mutable_attributes()->mutable_metadata()->set_name("web");
    p->mutable_linux()->mutable_cpu()->set_timestamp(1'700'000'000'000'000'000 + n * 2'000'000'000);
    p->mutable_linux()->mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(
        3'000'000'000 + n * 500'000'000);
    p->mutable_linux()->mutable_memory()->mutable_working_set_bytes()->set_value(999'999);
    resp->add_stats()->mutable_attributes()->set_id("empty-pod");  // no figures: left out
    return grpc::Status::OK;
  }
  grpc::Status ListMetricDescriptors(grpc::ServerContext*, const cri::ListMetricDescriptorsRequest*,
                                     cri::ListMetricDescriptorsResponse* resp) override {
    cri::MetricDescriptor* d = resp->add_descriptors();
    d->set_name("container_memory_rss");
    d->set_help("Size of RSS in bytes.");
    d->add_label_keys("pod");
    return grpc::Status::OK;
  }
  grpc::Status ListPodSandboxMetrics(grpc::ServerContext*, const cri::ListPodSandboxMetricsRequest*,
                                     cri::ListPodSandboxMetricsResponse* resp) override {
    cri::PodSandboxMetrics* m = resp->add_pod_metrics();
    m->set_pod_sandbox_id("pod1");
    cri::Metric* x = m->add_container_metrics()->add_metrics();
    x->set_name("container_memory_rss");
    x->set_metric_type(cri::GAUGE);
    x->add_label_values("web");
    x->mutable_value()->set_value(4096);
    return grpc::Status::OK;
  }

  std::mutex mu_;
  stream::StreamServer* stream_server_ = nullptr;
  cri::ExecRequest last_stream_exec_;
  cri::AttachRequest last_attach_;
  cri::ContainerStatsFilter last_stats_filter_;
  cri::PodSandboxStatsFilter last_pod_stats_filter_;
  int64_t stats_calls_ = 0;
  std::map<std::string, cri::PodSandbox> pods_;
  std::map<std::string, cri::Container> containers_;
  cri::RunPodSandboxRequest last_run_pod_;
  cri::PodSandboxFilter last_pod_filter_;
  cri::CreateContainerRequest last_create_;
  cri::UpdateContainerResourcesRequest last_update_;
  cri::ExecSyncRequest last_exec_;
  int64_t last_stop_timeout_ = -1;
  std::string log_path_;
  int next_id_ = 0;

 private:
  static grpc::Status NotFound(const char* what, const std::string& id) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, StrCat(what, " ", id, " not found"));
  }
  static bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& want,
                          const google::protobuf::Map<std::string, std::string>& have) {
    for (const auto& [k, v] : want) {
      auto it = have.find(k);
      if (it == have.end() || it->second != v) return false;
    }
    return true;
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

  // Prune with no containers: every image goes.
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

class CtlRuntimeCommandTest : public CtlCommandTest {
 protected:
  void SetUp() override {
    CtlCommandTest::SetUp();
    std::ofstream(dir_ + "/no-config.yaml") << "";
    std::ofstream(dir_ + "/pod.json")
        << R"({"metadata": {"name": "busybox-sandbox", "namespace": "default", "uid": "u1"},
              "labels": {"app": "web"},
              "linux": {"security_context": {"namespace_options": {"network": 2, "pid": 1}}}})";
    std::ofstream(dir_ + "/ctr.yaml") << "metadata:\n  name: busybox\n"
                                         "image:\n  image: busybox:1\n"
                                         "command: [sleep, '1000']\n"
                                         "log_path: busybox.log\n";
  }
  std::string Pod() { return dir_ + "/pod.json"; }
  std::string Ctr() { return dir_ + "/ctr.yaml"; }
  static std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }
};

TEST_F(CtlRuntimeCommandTest, PodLifecycle) {
  Result runp = Ctl({"runp", "-r", "runc", Pod()});
  ASSERT_EQ(runp.code, 0) << runp.err;
  std::string pod = FirstLine(runp.out);
  EXPECT_EQ(runp.out, pod + "\n");
  EXPECT_EQ(runtime_.last_run_pod_.runtime_handler(), "runc");
  EXPECT_EQ(
      runtime_.last_run_pod_.config().linux().security_context().namespace_options().network(),
      cri::NODE);

  Result pods = Ctl({"pods"});
  ASSERT_EQ(pods.code, 0) << pods.err;
  EXPECT_EQ(
      pods.out.rfind("POD ID              CREATED                  STATE               NAME", 0),
      0u)
      << pods.out;
  EXPECT_NE(pods.out.find(pod.substr(0, 13) + "       Less than a second ago   Ready"),
            std::string::npos)
      << pods.out;
  EXPECT_NE(pods.out.find("busybox-sandbox     default             0                   runc\n"),
            std::string::npos)
      << pods.out;
  EXPECT_EQ(Ctl({"pods", "-q"}).out, pod + "\n");
  EXPECT_EQ(Ctl({"pods", "-q", "--name", "^nomatch"}).out, "");
  EXPECT_EQ(Ctl({"pods", "-q", "--namespace", "def"}).out, pod + "\n");
  EXPECT_EQ(Ctl({"pods", "-q", "--label", "app=web", "--state", "Ready"}).out, pod + "\n");
  EXPECT_EQ(runtime_.last_pod_filter_.state().state(), cri::SANDBOX_READY);
  EXPECT_EQ(runtime_.last_pod_filter_.label_selector().at("app"), "web");
  EXPECT_EQ(Ctl({"pods", "-q", "--state", "notready"}).out, "");
  Result bad_state = Ctl({"pods", "--state", "gone"});
  EXPECT_EQ(bad_state.code, 1);
  // Go's log.Fatalf: "2006/01/02 15:04:05 message".
  EXPECT_EQ(bad_state.err.size(), 20 + std::string("--state should be ready or notready\n").size());
  EXPECT_EQ(bad_state.err.substr(20), "--state should be ready or notready\n");
  EXPECT_EQ(bad_state.err[4], '/');
  Result json = Ctl({"pods", "-o", "json", "--id", pod});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.out.rfind("{\n  \"items\": [\n    {\n      \"id\": \"" + pod + "\",", 0), 0u)
      << json.out;
  Result yaml = Ctl({"pods", "-o", "yaml"});
  EXPECT_EQ(yaml.out.rfind("items:\n- annotations: {}\n  createdAt: \"", 0), 0u) << yaml.out;
  Result bad_format = Ctl({"pods", "-o", "wide"});
  EXPECT_NE(bad_format.err.find("listing pod sandboxes: unsupported output format \\\"wide\\\""),
            std::string::npos)
      << bad_format.err;

  Result inspect = Ctl({"inspectp", pod});
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_EQ(inspect.out.rfind("{\n  \"status\": {\n    \"id\": \"" + pod + "\",\n", 0), 0u)
      << inspect.out;
  EXPECT_NE(inspect.out.find("  \"info\": {\n    \"pid\": 4242\n  }\n}\n"), std::string::npos);
  Result table = Ctl({"inspectp", "-o", "table", pod});
  EXPECT_NE(table.out.find("Name: busybox-sandbox\nUID: u1\nNamespace: default\nAttempt: 0\n"
                           "Status: SANDBOX_READY\n"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("IP Addresses: 10.88.0.7\nLabels:\n\tapp -> web\n"
                           "Info: map[info:{\"pid\":4242}]\n"),
            std::string::npos)
      << table.out;
  Result missing = Ctl({"inspectp", "nope"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("getting the pod sandbox status for \\\"nope\\\": rpc error: code = "
                             "NotFound desc = pod sandbox nope not found"),
            std::string::npos)
      << missing.err;

  Result rmp_running = Ctl({"rmp", pod});
  EXPECT_EQ(rmp_running.code, 1);
  // Like urfave/cli with an aggregate error: one plain line per error.
  EXPECT_EQ(rmp_running.err, "pod sandbox \"" + pod + "\" is running, please stop it first\n");
  Result stopp = Ctl({"stopp", pod});
  ASSERT_EQ(stopp.code, 0) << stopp.err;
  EXPECT_EQ(stopp.out, "Stopped sandbox " + pod + "\n");
  Result rmp = Ctl({"rmp", pod});
  ASSERT_EQ(rmp.code, 0) << rmp.err;
  EXPECT_EQ(rmp.out, "Removed sandbox " + pod + "\n");
  EXPECT_TRUE(runtime_.pods_.empty());

  // Help instead of an error when nothing is named.
  Result help = Ctl({"rmp"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("Remove one or more pods"), std::string::npos);
  EXPECT_NE(Ctl({"runp"}).out.find("Run a new pod"), std::string::npos);
}

TEST_F(CtlRuntimeCommandTest, RmpAllForceStopsAndRemovesEveryPod) {
  std::string a = FirstLine(Ctl({"runp", Pod()}).out);
  std::string b = FirstLine(Ctl({"runp", Pod()}).out);
  Result r = Ctl({"rmp", "-af"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Stopped sandbox " + a + "\nRemoved sandbox " + a + "\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Stopped sandbox " + b + "\nRemoved sandbox " + b + "\n"),
            std::string::npos);
  EXPECT_TRUE(runtime_.pods_.empty());
  Result two_missing = Ctl({"rmp", "x", "y"});
  EXPECT_EQ(two_missing.code, 1);
  EXPECT_EQ(two_missing.err,
            "getting sandbox status of pod \"x\": rpc error: code = NotFound desc = pod sandbox x "
            "not found\ngetting sandbox status of pod \"y\": rpc error: code = NotFound desc = "
            "pod sandbox y not found\n");
}

TEST_F(CtlRuntimeCommandTest, ContainerLifecycle) {
  std::string pod = FirstLine(Ctl({"runp", Pod()}).out);
  Result create = Ctl({"create", pod, Ctr(), Pod()});
  ASSERT_EQ(create.code, 0) << create.err;
  std::string ctr = FirstLine(create.out);
  EXPECT_EQ(create.out, ctr + "\n");
  EXPECT_EQ(runtime_.last_create_.config().image().image(), "busybox:1");
  EXPECT_EQ(runtime_.last_create_.config().command(1), "1000");
  EXPECT_EQ(runtime_.last_create_.sandbox_config().metadata().name(), "busybox-sandbox");
  // No pull unless pull-image-on-create is set or --with-pull is given.
  EXPECT_EQ(images_.last_pull().image().image(), "");

  EXPECT_EQ(Ctl({"ps", "-q"}).out, "");  // only running ones by default
  Result all = Ctl({"ps", "-a"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(all.out.rfind("CONTAINER           IMAGE               CREATED", 0), 0u) << all.out;
  EXPECT_NE(all.out.find(ctr.substr(0, 13) + "       busybox:1           Less than a second ago"),
            std::string::npos)
      << all.out;
  EXPECT_NE(all.out.find("Created             busybox             0                   " +
                         pod.substr(0, 13) + "       busybox-sandbox\n"),
            std::string::npos)
      << all.out;

  Result start = Ctl({"start", ctr});
  ASSERT_EQ(start.code, 0) << start.err;
  EXPECT_EQ(start.out, ctr + "\n");
  EXPECT_EQ(Ctl({"ps", "-q"}).out, ctr + "\n");
  EXPECT_EQ(Ctl({"ps", "-q", "--pod", pod, "--name", "busy", "--state", "running"}).out,
            ctr + "\n");
  EXPECT_EQ(Ctl({"ps", "-q", "--state", "exited"}).out, "");
  EXPECT_EQ(Ctl({"ps", "-q", "-l", "--state", "exited"}).out, ctr + "\n");  // -l drops the state
  Result ps_json = Ctl({"ps", "-o", "json"});
  EXPECT_EQ(ps_json.out.rfind("{\n  \"containers\": [\n    {\n      \"id\": \"" + ctr, 0), 0u)
      << ps_json.out;
  Result verbose = Ctl({"ps", "-v"});
  EXPECT_EQ(verbose.out.rfind("ID: " + ctr + "\nPodID: " + pod +
                                  "\nName: busybox\nAttempt: 0\nState: Running\nImage: busybox:1\n",
                              0),
            0u)
      << verbose.out;

  Result inspect = Ctl({"inspect", ctr});
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_EQ(inspect.out.rfind("{\n  \"status\": {\n    \"id\": \"" + ctr + "\",\n", 0), 0u);
  EXPECT_NE(inspect.out.find("    \"state\": \"CONTAINER_RUNNING\",\n    \"createdAt\": \""),
            std::string::npos)
      << inspect.out;
  Result inspect_yaml = Ctl({"inspect", "-o", "yaml", ctr});
  EXPECT_EQ(inspect_yaml.out.rfind("status:\n  annotations: {}\n", 0), 0u) << inspect_yaml.out;
  Result inspect_table = Ctl({"inspect", "-o", "table", ctr});
  EXPECT_NE(inspect_table.out.find("ID: " + ctr +
                                   "\nName: busybox\nState: CONTAINER_RUNNING\n"
                                   "Created: Less than a second ago\n"
                                   "Started: Less than a second ago\n"),
            std::string::npos)
      << inspect_table.out;
  Result bad_output = Ctl({"inspect", "-o", "wide", ctr});
  EXPECT_NE(bad_output.err.find("output option cannot be wide"), std::string::npos);
  EXPECT_NE(Ctl({"inspect"}).err.find("ID cannot be empty"), std::string::npos);

  Result update = Ctl({"update", "--cpu-quota", "50000", "--cpu-period", "100000", "--memory",
                       "67108864", "--cpuset-cpus", "0", "--cpu-share", "512", ctr});
  ASSERT_EQ(update.code, 0) << update.err;
  EXPECT_EQ(update.out, ctr + "\n");
  EXPECT_EQ(runtime_.last_update_.linux().cpu_quota(), 50000);
  EXPECT_EQ(runtime_.last_update_.linux().cpu_period(), 100000);
  EXPECT_EQ(runtime_.last_update_.linux().cpu_shares(), 512);
  EXPECT_EQ(runtime_.last_update_.linux().memory_limit_in_bytes(), 67108864);
  EXPECT_EQ(runtime_.last_update_.linux().cpuset_cpus(), "0");

  Result rm_running = Ctl({"rm", ctr});
  EXPECT_EQ(rm_running.code, 1);
  EXPECT_NE(rm_running.err.find("level=error msg=\"container \\\"" + ctr +
                                "\\\" is running, please stop it first\""),
            std::string::npos)
      << rm_running.err;
  EXPECT_NE(rm_running.err.find("msg=\"unable to remove container(s)\""), std::string::npos);
  Result stop = Ctl({"stop", "-t", "7", ctr});
  ASSERT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(stop.out, ctr + "\n");
  EXPECT_EQ(runtime_.last_stop_timeout_, 7);
  Result rm = Ctl({"rm", ctr});
  ASSERT_EQ(rm.code, 0) << rm.err;
  EXPECT_EQ(rm.out, ctr + "\n");
  EXPECT_TRUE(runtime_.containers_.empty());

  // rm -f stops a running container first (timeout 0) and names it twice.
  std::string second = FirstLine(Ctl({"create", pod, Ctr(), Pod()}).out);
  ASSERT_EQ(Ctl({"start", second}).code, 0);
  Result force = Ctl({"rm", "-a", "-f"});
  ASSERT_EQ(force.code, 0) << force.err;
  EXPECT_EQ(force.out, second + "\n" + second + "\n");
  EXPECT_EQ(runtime_.last_stop_timeout_, 0);
  Result none = Ctl({"rm", "missing"});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("level=error msg=\"rpc error: code = NotFound desc = container missing "
                          "not found\""),
            std::string::npos)
      << none.err;
  EXPECT_NE(Ctl({"start"}).err.find("msg=\"ID cannot be empty\""), std::string::npos);
}

TEST_F(CtlRuntimeCommandTest, CreatePullsOnlyWhenAsked) {
  std::string pod = FirstLine(Ctl({"runp", Pod()}).out);
  Result conflict = Ctl({"create", "--no-pull", "--with-pull", pod, Ctr(), Pod()});
  EXPECT_EQ(conflict.code, 1);
  EXPECT_NE(conflict.err.find("confict: no-pull and with-pull are both set"), std::string::npos);

  Result with_pull = Ctl({"create", "--with-pull", "--creds", "u:p", pod, Ctr(), Pod()});
  ASSERT_EQ(with_pull.code, 0) << with_pull.err;
  cri::PullImageRequest pull = images_.last_pull();
  EXPECT_EQ(pull.image().image(), "busybox:1");
  EXPECT_EQ(pull.auth().username(), "u");
  EXPECT_EQ(pull.sandbox_config().metadata().name(), "busybox-sandbox");

  std::ofstream(dir_ + "/no-config.yaml") << "pull-image-on-create: true\n";
  std::ofstream(dir_ + "/ctr2.yaml") << "metadata: {name: c2}\nimage: {image: other:2}\n";
  ASSERT_EQ(Ctl({"create", pod, dir_ + "/ctr2.yaml", Pod()}).code, 0);
  EXPECT_EQ(images_.last_pull().image().image(), "other:2");
  std::ofstream(dir_ + "/ctr3.yaml") << "metadata: {name: c3}\nimage: {image: third:3}\n";
  ASSERT_EQ(Ctl({"create", "--no-pull", pod, dir_ + "/ctr3.yaml", Pod()}).code, 0);
  EXPECT_EQ(images_.last_pull().image().image(), "other:2");

  std::ofstream(dir_ + "/ctr4.yaml") << "metadata: {name: c4}\nimage: {image: missing:1}\n";
  Result missing = Ctl({"create", pod, dir_ + "/ctr4.yaml", Pod()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("msg=\"creating container: rpc error: code = NotFound desc = "
                             "manifest unknown\""),
            std::string::npos)
      << missing.err;
  Result no_config = Ctl({"create", pod, dir_ + "/none.yaml", Pod()});
  EXPECT_NE(no_config.err.find("creating container: config at " + dir_ + "/none.yaml not found"),
            std::string::npos)
      << no_config.err;
  EXPECT_NE(Ctl({"create", pod}).out.find("Create a new container"), std::string::npos);
}

TEST_F(CtlRuntimeCommandTest, RunPullsCreatesAndStarts) {
  Result run = Ctl({"run", "-r", "runc", Ctr(), Pod()});
  ASSERT_EQ(run.code, 0) << run.err;
  std::string ctr = FirstLine(run.out);
  EXPECT_EQ(run.out, ctr + "\n");  // only the container id, printed by its start
  EXPECT_EQ(images_.last_pull().image().image(), "busybox:1");
  ASSERT_EQ(runtime_.containers_.count(ctr), 1u);
  EXPECT_EQ(runtime_.containers_[ctr].state(), cri::CONTAINER_RUNNING);
  EXPECT_EQ(runtime_.last_run_pod_.runtime_handler(), "runc");

  std::ofstream(dir_ + "/no-config.yaml") << "disable-pull-on-run: true\n";
  std::ofstream(dir_ + "/ctr2.yaml") << "metadata: {name: c2}\nimage: {image: other:2}\n";
  ASSERT_EQ(Ctl({"run", dir_ + "/ctr2.yaml", Pod()}).code, 0);
  EXPECT_EQ(images_.last_pull().image().image(), "busybox:1");
  Result bad_pod = Ctl({"run", Ctr(), dir_ + "/none.json"});
  EXPECT_NE(bad_pod.err.find("running container: load podSandboxConfig: config at "),
            std::string::npos)
      << bad_pod.err;
}

TEST_F(CtlRuntimeCommandTest, ExecSync) {
  std::string pod = FirstLine(Ctl({"runp", Pod()}).out);
  std::string ctr = FirstLine(Ctl({"create", pod, Ctr(), Pod()}).out);
  // Options end at the container id: "-l" belongs to the command.
  Result exec = Ctl({"exec", "-s", "--timeout", "5", ctr, "ls", "-l", "/"});
  ASSERT_EQ(exec.code, 0) << exec.err;
  EXPECT_EQ(exec.out, "ls -l /\nwarn\n");
  EXPECT_EQ(runtime_.last_exec_.timeout(), 5);
  EXPECT_EQ(runtime_.last_exec_.container_id(), ctr);
  Result failing = Ctl({"exec", "--sync", ctr, "sh", "-c", "exit 3"});
  EXPECT_EQ(failing.code, 1);
  EXPECT_EQ(failing.out, "");
  EXPECT_NE(failing.err.find("msg=\"execing command in container synchronously: command 'sh -c "
                             "exit 3' exited with 3: failing\""),
            std::string::npos)
      << failing.err;
  EXPECT_NE(Ctl({"exec", "-s", ctr}).out.find("Run a command in a running container"),
            std::string::npos);
}

// exec without -s, attach and port-forward through a real streaming server
// whose runtime is scripted.
class CtlStreamCommandTest : public CtlRuntimeCommandTest {
 protected:
  void SetUp() override {
    CtlRuntimeCommandTest::SetUp();
    auto s = stream::StreamServer::Start({}, &stream_runtime_);
    ASSERT_TRUE(s.ok()) << s.status();
    stream_server_ = std::move(*s);
    runtime_.stream_server_ = stream_server_.get();
  }
  void TearDown() override {
    runtime_.stream_server_ = nullptr;
    stream_server_->Stop();
    CtlRuntimeCommandTest::TearDown();
  }
  stream::testing::FakeRuntime stream_runtime_;
  std::unique_ptr<stream::StreamServer> stream_server_;
};

TEST_F(CtlStreamCommandTest, ExecStreamsStdioAndReportsTheExitCode) {
  using Out = stream::ProcessStreams::Output;
  using Src = stream::ProcessStreams::Source;
  stream_runtime_.on_exec = [](const stream::ExecRequest& r) {
    stream::testing::FakeBehavior b;
    b.outputs = {Out{Src::kStdout, "out:" + r.cmd[0] + "\n"}, Out{Src::kStderr, "err\n"}};
    b.exit_code = r.cmd[0] == "fail" ? 3 : 0;
    return StatusOr<stream::testing::FakeBehavior>(b);
  };
  Result ok = Ctl({"exec", "c1", "hello", "-l"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "out:hello\n");
  EXPECT_EQ(ok.err, "err\n");
  EXPECT_EQ(runtime_.last_stream_exec_.container_id(), "c1");
  EXPECT_EQ(runtime_.last_stream_exec_.cmd_size(), 2);
  EXPECT_FALSE(runtime_.last_stream_exec_.stdin());
  EXPECT_TRUE(runtime_.last_stream_exec_.stdout());
  EXPECT_TRUE(runtime_.last_stream_exec_.stderr());
  EXPECT_FALSE(runtime_.last_stream_exec_.tty());

  Result failing = Ctl({"exec", "c1", "fail"});
  EXPECT_EQ(failing.code, 1);
  EXPECT_NE(failing.err.find("execing command in container: command terminated with exit code 3"),
            std::string::npos)
      << failing.err;

  // -i sends standard input, closed at its end.
  stream_runtime_.on_exec = [](const stream::ExecRequest&) {
    stream::testing::FakeBehavior b;
    b.echo_stdin = true;
    return StatusOr<stream::testing::FakeBehavior>(b);
  };
  Result cat = Ctl({"exec", "-i", "c1", "cat"}, "typed\ninput\n");
  ASSERT_EQ(cat.code, 0) << cat.err;
  EXPECT_EQ(cat.out, "typed\ninput\n");
  EXPECT_TRUE(runtime_.last_stream_exec_.stdin());

  // -t needs -i, and a terminal.
  Result tty_only = Ctl({"exec", "-t", "c1", "sh"});
  EXPECT_NE(tty_only.err.find("tty=true must be specified with interactive=true"),
            std::string::npos)
      << tty_only.err;
  Result not_a_terminal = Ctl({"exec", "-it", "c1", "sh"});
  EXPECT_NE(not_a_terminal.err.find("input is not a terminal"), std::string::npos)
      << not_a_terminal.err;
}

TEST_F(CtlStreamCommandTest, AttachJoinsTheContainer) {
  stream_runtime_.on_attach = [](const stream::AttachRequest& r) {
    stream::testing::FakeBehavior b;
    b.outputs = {stream::ProcessStreams::Output{stream::ProcessStreams::Source::kStdout,
                                                "output of " + r.container_id + "\n"}};
    return StatusOr<stream::testing::FakeBehavior>(b);
  };
  Result r = Ctl({"attach", "c7"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "output of c7\n");
  EXPECT_EQ(runtime_.last_attach_.container_id(), "c7");
  EXPECT_FALSE(runtime_.last_attach_.stdin());
  EXPECT_TRUE(runtime_.last_attach_.stderr());
  EXPECT_NE(Ctl({"attach"}).err.find("ID cannot be empty"), std::string::npos);
  EXPECT_NE(Ctl({"attach", "a", "b"}).out.find("Attach to a running container"), std::string::npos);
}

TEST_F(CtlStreamCommandTest, PortForwardUntilInterrupted) {
  stream::testing::EchoServer echo;
  stream_runtime_.ports[80] = echo.port();
  // A free local port to ask for.
  auto probe = stream::ListenTcp("127.0.0.1:0", 1);
  ASSERT_TRUE(probe.ok());
  uint16_t local = probe->port;
  probe->fd.Reset();
  Result r;
  pthread_t ctl_thread{};
  std::atomic<bool> started{false};
  std::thread ctl([&] {
    ctl_thread = pthread_self();
    started = true;
    r = Ctl({"port-forward", "pod1", StrCat(local, ":80")});
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Connect once the listener is up, and talk through it.
  StatusOr<UniqueFd> fd = UnavailableError("not yet");
  for (int i = 0; i < 500 && !fd.ok(); ++i) {
    fd = stream::ConnectTcp("127.0.0.1", local, stream::Clock::now() + std::chrono::seconds(1));
    if (!fd.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_EQ(::write(fd->get(), "ping", 4), 4);
  char buf[4];
  ASSERT_EQ(::recv(fd->get(), buf, 4, MSG_WAITALL), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  fd->Reset();
  // Ctrl-C, delivered to the thread that waits for it.
  pthread_kill(ctl_thread, SIGINT);
  ctl.join();
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(StrCat("Forwarding from 127.0.0.1:", local, " -> 80\n")), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(StrCat("Handling connection for ", local, "\n")), std::string::npos)
      << r.out;
  EXPECT_NE(Ctl({"port-forward", "pod1", "x:80"}).err.find("port forward: invalid port"),
            std::string::npos);
}

// Reads everything `in` yields until its end.
std::string ReadAllInput(stream::InputSource& in) {
  std::string out;
  char buf[3];  // small reads: the sequence may straddle them
  while (true) {
    auto n = in.Read(buf);
    if (!n.ok() || *n == 0) return out;
    out.append(buf, *n);
  }
}

TEST(DetachKeysTest, CtrlPCtrlQEndsTheInput) {
  // Hands out one chunk per Read, so a sequence can straddle two reads.
  class Chunks final : public stream::InputSource {
   public:
    explicit Chunks(std::vector<std::string> c) : chunks_(std::move(c)) {}
    StatusOr<size_t> Read(std::span<char> buf) override {
      if (next_ == chunks_.size()) return size_t{0};
      std::string& c = chunks_[next_++];
      std::memcpy(buf.data(), c.data(), c.size());
      return c.size();
    }
    void Interrupt() override {}

   private:
    std::vector<std::string> chunks_;
    size_t next_ = 0;
  };
  auto through = [](std::vector<std::string> chunks) {
    Chunks raw(std::move(chunks));
    DetachKeysInput in(raw);
    return ReadAllInput(in);
  };
  EXPECT_EQ(through({"ls -l\r"}), "ls -l\r");
  EXPECT_EQ(through({"ab\x10\x11"
                     "cd"}),
            "ab");  // detached: the rest is not sent
  EXPECT_EQ(through({"ab\x10",
                     "\x11"
                     "cd"}),
            "ab");                               // across reads
  EXPECT_EQ(through({"a\x10", "x"}), "a\x10x");  // ctrl-p alone is passed on
  EXPECT_EQ(through({"a\x10"}), "a\x10");        // ... also at the end
  EXPECT_EQ(through({"\x11\x10"}), "\x11\x10");  // wrong order
}

TEST_F(CtlRuntimeCommandTest, LogsFromTheLogPath) {
  std::string pod = FirstLine(Ctl({"runp", Pod()}).out);
  std::string ctr = FirstLine(Ctl({"create", pod, Ctr(), Pod()}).out);
  Result unset = Ctl({"logs", ctr});
  EXPECT_NE(unset.err.find("The container has not set log path"), std::string::npos);
  runtime_.log_path_ = dir_ + "/busybox.0.log";
  std::ofstream(runtime_.log_path_) << "2023-11-14T22:13:20Z stdout P hel\n"
                                       "2023-11-14T22:13:20Z stdout F lo\n"
                                       "2023-11-14T22:13:21Z stderr F bad\n"
                                       "2023-11-14T22:13:22Z stdout F bye\n";
  Result logs = Ctl({"logs", ctr});
  ASSERT_EQ(logs.code, 0) << logs.err;
  EXPECT_EQ(logs.out, "hello\nbye\n");
  EXPECT_EQ(logs.err, "bad\n");
  Result tail = Ctl({"logs", "--tail", "1", "-t", ctr});
  EXPECT_EQ(tail.out, "2023-11-14T22:13:22.000000000Z bye\n");
  EXPECT_EQ(tail.err, "");
  Result since = Ctl({"logs", "--since", "2023-11-14T22:13:21Z", "--limit-bytes", "2", ctr});
  EXPECT_EQ(since.out, "");
  EXPECT_EQ(since.err, "ba");
  Result prev = Ctl({"logs", "-p", ctr});
  EXPECT_NE(prev.err.find("Previous terminated container busybox not found"), std::string::npos);
  // Following a container that is not running prints the file and ends.
  Result follow = Ctl({"logs", "-f", ctr});
  ASSERT_EQ(follow.code, 0) << follow.err;
  EXPECT_EQ(follow.out, "hello\nbye\n");
  EXPECT_NE(Ctl({"logs"}).err.find("ID cannot be empty"), std::string::npos);
  Result bad_since = Ctl({"logs", "--since", "soon", ctr});
  EXPECT_NE(bad_since.err.find("failed to parse value as time or duration: \\\"soon\\\""),
            std::string::npos)
      << bad_since.err;
}

}  // namespace
}  // namespace berth::ctl

namespace berth::ctl {
namespace {

TEST(StatsOutputTest, HumanSizeWithFourDigits) {
  EXPECT_EQ(HumanSizeWithPrecision(12'345'678, 4), "12.35MB");
  EXPECT_EQ(HumanSizeWithPrecision(8192, 4), "8.192kB");
  EXPECT_EQ(HumanSizeWithPrecision(0, 4), "0B");
  EXPECT_EQ(HumanSize(12'345'678), "12.3MB");
}

TEST_F(CtlRuntimeCommandTest, StatsTableJsonFiltersAndErrors) {
  Result t = Ctl({"stats", "-s", "0", "--id", "c1", "-p", "pod9", "--label", "a=b"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out,
            "\033[2J\033[H"
            "CONTAINER           NAME                CPU %               MEM                 "
            "DISK                INODES\n"
            "c111111111111       busy                50.00               12.35MB             "
            "8.192kB             5\n");
  EXPECT_EQ(runtime_.last_stats_filter_.id(), "c1");
  EXPECT_EQ(runtime_.last_stats_filter_.pod_sandbox_id(), "pod9");
  EXPECT_EQ(runtime_.last_stats_filter_.label_selector().at("a"), "b");

  Result all = Ctl({"stats", "-a", "-s", "0"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_NE(all.out.find("c222222222222       idle                0.00                0B        "
                         "          8.192kB             5\n"),
            std::string::npos)
      << all.out;
  EXPECT_LT(all.out.find("c1111"), all.out.find("c2222")) << "sorted by id";

  Result arg = Ctl({"stats", "-s", "0", "c1abc"});
  ASSERT_EQ(arg.code, 0) << arg.err;
  EXPECT_EQ(runtime_.last_stats_filter_.id(), "c1abc");

  Result json = Ctl({"stats", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.out.rfind("{\n  \"stats\": [\n    {\n      \"attributes\": {\n        \"id\": "
                           "\"c111",
                           0),
            0u)
      << json.out;
  EXPECT_NE(json.out.find("\"usageCoreNanoSeconds\": {\n          \"value\": \""),
            std::string::npos);
  Result yaml = Ctl({"stats", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_EQ(yaml.out.rfind("stats:\n- attributes:\n", 0), 0u) << yaml.out;

  Result stuck = Ctl({"stats", "-s", "0", "stuck"});
  EXPECT_EQ(stuck.code, 1);
  EXPECT_NE(stuck.err.find("get container stats: cpu stat is not updated during sample"),
            std::string::npos)
      << stuck.err;
  Result broken = Ctl({"stats", "broken"});
  EXPECT_EQ(broken.code, 1);
  EXPECT_NE(broken.err.find("get container stats: rpc error: code = Internal desc = cgroup "
                            "unreadable"),
            std::string::npos)
      << broken.err;
  Result label = Ctl({"stats", "--label", "nolabel"});
  EXPECT_EQ(label.code, 1);
  EXPECT_NE(label.err.find("incorrectly specified label: nolabel"), std::string::npos);
}

TEST_F(CtlRuntimeCommandTest, StatspTableAndErrors) {
  Result t = Ctl({"statsp", "-s", "0", "--label", "app=web"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out,
            "\033[2J\033[H"
            "POD                 POD ID              CPU %               MEM\n"
            "web                 podaaaaaaaaaa       25.00               1000kB\n");
  EXPECT_EQ(runtime_.last_pod_stats_filter_.label_selector().at("app"), "web");
  Result id = Ctl({"statsp", "-o", "json", "pod1"});
  ASSERT_EQ(id.code, 0) << id.err;
  EXPECT_EQ(runtime_.last_pod_stats_filter_.id(), "pod1");
  EXPECT_NE(id.out.find("\"id\": \"empty-pod\""), std::string::npos) << id.out;
  Result broken = Ctl({"statsp", "broken"});
  EXPECT_EQ(broken.code, 1);
  EXPECT_NE(broken.err.find("get pod stats: display pod stats: list pod sandbox stats: rpc error: "
                            "code = Internal desc = cgroup unreadable"),
            std::string::npos)
      << broken.err;
  Result label = Ctl({"statsp", "--label", "x"});
  EXPECT_NE(label.err.find("parse pod labels: incorrectly specified label: x"), std::string::npos)
      << label.err;
}

TEST_F(CtlRuntimeCommandTest, MetricDescsAndMetricsp) {
  Result d = Ctl({"metricdescs"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out,
            "{\n  \"descriptors\": [\n    {\n      \"name\": \"container_memory_rss\",\n"
            "      \"help\": \"Size of RSS in bytes.\",\n      \"labelKeys\": [\n        \"pod\"\n"
            "      ]\n    }\n  ]\n}\n");
  Result m = Ctl({"metricsp", "-o", "yaml"});
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_NE(m.out.find("name: container_memory_rss"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("podSandboxId: pod1"), std::string::npos) << m.out;
  Result bad = Ctl({"metricsp", "-o", "table"});
  EXPECT_EQ(bad.code, 0);
  EXPECT_EQ(bad.out.find("podSandboxId"), std::string::npos) << "help, not metrics";
}

}  // namespace
}  // namespace berth::ctl
