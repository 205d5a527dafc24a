// Tests of berth_registry. Pure logic (hosts.toml, challenges, docker config.json) runs without
// network; the HTTP client runs against a real docker-registry and small fake servers, all on
// 127.0.0.1. No test sends anything anywhere else.
// Options and responses are spelled with designated initializers naming only what a test sets;
// GCC 12 would flag every omitted member.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fs.h"
#include "registry/auth.h"
#include "registry/client.h"
#include "registry/hosts.h"
#include "support/fake_http_server.h"
#include "support/registry_push.h"
#include "support/registry_server.h"

namespace berth::registry {
namespace {

using ::berth::testing::CannedResponse;
using ::berth::testing::FakeHttpServer;
using ::berth::testing::ParseQuery;
using ::berth::testing::PushBlob;
using ::berth::testing::PushManifest;
using ::berth::testing::PushTarget;
using ::berth::testing::RecordedRequest;
using ::berth::testing::RegistryServer;
using ::berth::testing::RegistryServerOptions;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Requests to 127.0.0.1 must never go through a proxy from the environment.
class NoProxyEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    for (const char* var :
         {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) {
      ::unsetenv(var);
    }
  }
};
[[maybe_unused]] const auto* const kNoProxy =
    ::testing::AddGlobalTestEnvironment(new NoProxyEnvironment);

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-regtest-XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() { (void)RemoveAll(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void WriteText(const std::filesystem::path& path, std::string_view text) {
  ASSERT_TRUE(MakeDirs(path.parent_path()).ok());
  ASSERT_TRUE(WriteFileAtomic(path, text).ok());
}

std::string RandomBytes(size_t n) {
  std::string hex = RandomHex((n + 1) / 2);
  hex.resize(n);
  return hex;
}

// --- hosts.toml ---------------------------------------------------------------------------

TEST(HostsTomlTest, HostsInFileOrderThenServer) {
  // "zeta" sorts after "alpha": the result must follow the file, not the key order.
  auto eps = ParseHostsToml(R"(
server = "https://registry.example.com"

[host."https://zeta-mirror.example.com"]
  capabilities = ["pull", "resolve"]

[host."http://alpha-mirror.example.com:5000"]
  capabilities = ["pull"]
)",
                            "/etc/berth/certs.d/registry.example.com", "hosts.toml");
  ASSERT_TRUE(eps.ok()) << eps.status();
  ASSERT_EQ(eps->size(), 3u);
  EXPECT_EQ((*eps)[0].url, "https://zeta-mirror.example.com");
  EXPECT_TRUE((*eps)[0].is_mirror);
  EXPECT_TRUE((*eps)[0].can_pull);
  EXPECT_TRUE((*eps)[0].can_resolve);
  EXPECT_FALSE((*eps)[0].can_push);
  EXPECT_EQ((*eps)[1].url, "http://alpha-mirror.example.com:5000");
  EXPECT_TRUE((*eps)[1].can_pull);
  EXPECT_FALSE((*eps)[1].can_resolve);
  EXPECT_EQ((*eps)[2].url, "https://registry.example.com");
  EXPECT_FALSE((*eps)[2].is_mirror);
  EXPECT_TRUE((*eps)[2].can_pull && (*eps)[2].can_resolve && (*eps)[2].can_push);
  for (const Endpoint& ep : *eps) EXPECT_EQ(ep.path_prefix, "/v2");
}

TEST(HostsTomlTest, TlsHeadersAndPaths) {
  auto eps = ParseHostsToml(R"(
server = "registry.example.com"
ca = "/abs/server-ca.pem"
skip_verify = false

[host."https://m1.example.com/base/"]
  ca = ["ca1.pem", "sub/ca2.pem"]
  skip_verify = true
  client = [["client.cert", "client.key"]]
  [host."https://m1.example.com/base/".header]
    X-Single = "one"
    X-List = ["a", "b"]

[host."https://m2.example.com/custom/api"]
  override_path = true
  client = "both.pem"

[host."https://m3.example.com/v2"]
)",
                            "/etc/hosts.d/registry.example.com", "f.toml");
  ASSERT_TRUE(eps.ok()) << eps.status();
  ASSERT_EQ(eps->size(), 4u);
  const Endpoint& m1 = (*eps)[0];
  EXPECT_EQ(m1.url, "https://m1.example.com");
  EXPECT_EQ(m1.path_prefix, "/base/v2");
  EXPECT_THAT(m1.ca_files, ElementsAre("/etc/hosts.d/registry.example.com/ca1.pem",
                                       "/etc/hosts.d/registry.example.com/sub/ca2.pem"));
  EXPECT_TRUE(m1.skip_verify);
  EXPECT_EQ(m1.client_cert, "/etc/hosts.d/registry.example.com/client.cert");
  EXPECT_EQ(m1.client_key, "/etc/hosts.d/registry.example.com/client.key");
  EXPECT_EQ(m1.headers.at("X-Single"), "one");
  EXPECT_EQ(m1.headers.at("X-List"), "a, b");

  const Endpoint& m2 = (*eps)[1];
  EXPECT_EQ(m2.path_prefix, "/custom/api");
  EXPECT_EQ(m2.client_cert, "/etc/hosts.d/registry.example.com/both.pem");
  EXPECT_EQ(m2.client_key, "");

  EXPECT_EQ((*eps)[2].path_prefix, "/v2");  // an explicit /v2 is not doubled

  const Endpoint& server = (*eps)[3];
  EXPECT_EQ(server.url, "https://registry.example.com");  // a missing scheme means https
  EXPECT_THAT(server.ca_files, ElementsAre("/abs/server-ca.pem"));
  EXPECT_FALSE(server.skip_verify);
}

TEST(HostsTomlTest, ErrorsNameTheFileAndTheProblem) {
  auto syntax = ParseHostsToml("server = \"https://x\n", "/d", "/d/hosts.toml");
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.status().message(), HasSubstr("/d/hosts.toml"));

  auto cap = ParseHostsToml("[host.\"https://m\"]\ncapabilities = [\"pull\", \"fly\"]\n", "/d",
                            "/d/hosts.toml");
  EXPECT_EQ(cap.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(cap.status().message(), HasSubstr("fly"));

  auto scheme = ParseHostsToml("server = \"ftp://m.example.com\"\n", "/d", "/d/hosts.toml");
  EXPECT_EQ(scheme.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(scheme.status().message(), HasSubstr("ftp://m.example.com"));

  auto type = ParseHostsToml("server = \"https://m\"\nskip_verify = \"yes\"\n", "/d", "/d/h.toml");
  EXPECT_EQ(type.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(type.status().message(), HasSubstr("skip_verify"));

  // A file naming no endpoint would otherwise silently mean "the default upstream".
  auto none = ParseHostsToml("skip_verify = true\n", "/d", "/d/hosts.toml");
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("names no endpoint"));
}

TEST(ResolveEndpointsTest, DefaultsWithoutConfiguration) {
  TempDir dir;
  auto docker = ResolveEndpoints(dir.path(), "docker.io");
  ASSERT_TRUE(docker.ok()) << docker.status();
  ASSERT_EQ(docker->size(), 1u);
  EXPECT_EQ((*docker)[0].url, "https://registry-1.docker.io");
  EXPECT_EQ((*docker)[0].path_prefix, "/v2");

  auto other = ResolveEndpoints("", "quay.example.com:8443");
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0].url, "https://quay.example.com:8443");

  auto local = ResolveEndpoints(dir.path(), "127.0.0.1:5000");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ((*local)[0].url, "http://127.0.0.1:5000");
  EXPECT_EQ(DefaultEndpoint("localhost:5000").url, "http://localhost:5000");
  EXPECT_EQ(DefaultEndpoint("[::1]:5000").url, "http://[::1]:5000");
}

TEST(ResolveEndpointsTest, ConfiguredHostNeverFallsBackToTheUpstream) {
  TempDir dir;
  WriteText(dir.path() / "docker.io" / "hosts.toml",
            "[host.\"http://127.0.0.1:5999\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
  auto eps = ResolveEndpoints(dir.path(), "docker.io");
  ASSERT_TRUE(eps.ok()) << eps.status();
  ASSERT_EQ(eps->size(), 1u);  // no https://registry-1.docker.io appended
  EXPECT_EQ((*eps)[0].url, "http://127.0.0.1:5999");
}

TEST(ResolveEndpointsTest, HostWithPortDirectoryAndDefaultDirectory) {
  TempDir dir;
  WriteText(dir.path() / "127.0.0.1:5000" / "hosts.toml", "server = \"http://127.0.0.1:5001\"\n");
  WriteText(dir.path() / "_default" / "hosts.toml", "server = \"http://127.0.0.1:5002\"\n");
  auto own = ResolveEndpoints(dir.path(), "127.0.0.1:5000");
  ASSERT_TRUE(own.ok()) << own.status();
  ASSERT_EQ(own->size(), 1u);
  EXPECT_EQ((*own)[0].url, "http://127.0.0.1:5001");
  auto fallback = ResolveEndpoints(dir.path(), "registry.example.com");
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  ASSERT_EQ(fallback->size(), 1u);
  EXPECT_EQ((*fallback)[0].url, "http://127.0.0.1:5002");
}

TEST(ResolveEndpointsTest, RelativeCaPathIsRelativeToTheHostDirectory) {
  TempDir dir;
  WriteText(dir.path() / "r.example.com" / "hosts.toml",
            "server = \"https://r.example.com\"\nca = \"ca.pem\"\n");
  auto eps = ResolveEndpoints(dir.path(), "r.example.com");
  ASSERT_TRUE(eps.ok()) << eps.status();
  EXPECT_THAT((*eps)[0].ca_files, ElementsAre((dir.path() / "r.example.com" / "ca.pem").string()));
}

TEST(ResolveEndpointsTest, RejectsHostsThatAreNotHostNames) {
  TempDir dir;
  for (const char* bad : {"", "..", "a/b", "../etc"}) {
    EXPECT_EQ(ResolveEndpoints(dir.path(), bad).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
}

// --- challenges, credentials --------------------------------------------------------------

TEST(AuthChallengeTest, ParsesBearerAndBasic) {
  auto c = ParseAuthChallenges(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:library/busybox:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].param("realm"), "https://auth.example.com/token");
  EXPECT_EQ(c[0].param("service"), "registry.example.com");
  EXPECT_EQ(c[0].param("scope"), "repository:library/busybox:pull");

  auto basic = ParseAuthChallenges("basic REALM=\"my realm\"");
  ASSERT_EQ(basic.size(), 1u);
  EXPECT_EQ(basic[0].scheme, "basic");
  EXPECT_EQ(basic[0].param("realm"), "my realm");
}

TEST(AuthChallengeTest, SeveralChallengesQuotingAndUnquotedValues) {
  auto c = ParseAuthChallenges(
      R"(Basic realm="a, \"quoted\" realm", Bearer realm=https://t.example/token, service = svc ,error="insufficient_scope")");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].param("realm"), "a, \"quoted\" realm");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].param("realm"), "https://t.example/token");
  EXPECT_EQ(c[1].param("service"), "svc");
  EXPECT_EQ(c[1].param("error"), "insufficient_scope");
  EXPECT_THAT(ParseAuthChallenges(""), IsEmpty());
  EXPECT_THAT(ParseAuthChallenges("  ,  "), IsEmpty());
}

TEST(Base64Test, RoundTripsAndRejectsGarbage) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "user:pa:ss\xff"}) {
    auto back = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(back.has_value()) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(Base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_EQ(*Base64Decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(*Base64Decode("YQ"), "a");  // missing padding is accepted
  EXPECT_FALSE(Base64Decode("not base64!").has_value());
}

TEST(CredentialsTest, BasicCredentialsFromFieldsOrAuth) {
  auto direct = ResolveBasicCredentials({.username = "u", .password = "p", .auth = "garbage"});
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(direct->username, "u");
  auto decoded = ResolveBasicCredentials({.auth = Base64Encode("alice:s3:cret")});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->username, "alice");
  EXPECT_EQ(decoded->password, "s3:cret");
  EXPECT_EQ(ResolveBasicCredentials({.auth = Base64Encode("nocolon")}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ResolveBasicCredentials({}).value().empty());
}

TEST(DockerConfigTest, FindsEntriesByHostAndUrlKeys) {
  std::string json =
      nlohmann::json{{"auths",
                      {{"https://index.docker.io/v1/", {{"auth", Base64Encode("hubuser:hubpass")}}},
                       {"http://127.0.0.1:5000", {{"username", "u"}, {"password", "p"}}},
                       {"quay.example.com", {{"identitytoken", "refresh-me"}}},
                       {"tokens.example.com/v2/", {{"registrytoken", "bearer-me"}}}}}}
          .dump();
  auto hub = ParseDockerConfig(json, "docker.io", "config.json");
  ASSERT_TRUE(hub.ok()) << hub.status();
  ASSERT_TRUE(hub->has_value());
  EXPECT_EQ((*hub)->username, "hubuser");
  EXPECT_EQ((*hub)->password, "hubpass");

  auto local = ParseDockerConfig(json, "127.0.0.1:5000", "config.json");
  ASSERT_TRUE(local.ok() && local->has_value());
  EXPECT_EQ((*local)->username, "u");
  EXPECT_EQ((*local)->password, "p");

  auto quay = ParseDockerConfig(json, "quay.example.com", "config.json");
  ASSERT_TRUE(quay.ok() && quay->has_value());
  EXPECT_EQ((*quay)->identity_token, "refresh-me");

  auto tok = ParseDockerConfig(json, "tokens.example.com", "config.json");
  ASSERT_TRUE(tok.ok() && tok->has_value());
  EXPECT_EQ((*tok)->registry_token, "bearer-me");

  auto none = ParseDockerConfig(json, "127.0.0.1:5001", "config.json");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(DockerConfigTest, ExactKeyWinsOverNormalizedKey) {
  std::string json = R"({"auths": {"https://r.example.com/v1/": {"username": "url"},
                                    "r.example.com": {"username": "exact"}}})";
  auto got = ParseDockerConfig(json, "r.example.com", "c.json");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->username, "exact");
}

TEST(DockerConfigTest, FileErrors) {
  TempDir dir;
  auto missing = LookupDockerConfig(dir.path() / "nope.json", "docker.io");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  WriteText(dir.path() / "bad.json", "{not json");
  auto bad = LookupDockerConfig(dir.path() / "bad.json", "docker.io");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("bad.json"));

  WriteText(dir.path() / "badauth.json", R"({"auths": {"docker.io": {"auth": "%%%"}}})");
  auto badauth = LookupDockerConfig(dir.path() / "badauth.json", "docker.io");
  EXPECT_EQ(badauth.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(badauth.status().message(), AllOf(HasSubstr("badauth.json"), HasSubstr("docker.io")));
}

TEST(ValidationTest, RepositoriesTagsAndReferences) {
  for (const char* ok : {"busybox", "library/busybox", "a/b/c", "my-app_1/x.y", "a__b", "a--b"}) {
    EXPECT_TRUE(ValidateRepository(ok).ok()) << ok;
  }
  for (const char* bad : {"", "Upper", "a//b", "/a", "a/", "a/../b", "-a", "a b", "a?b"}) {
    EXPECT_FALSE(ValidateRepository(bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateTag("v1.2-rc_3").ok());
  EXPECT_FALSE(ValidateTag(".hidden").ok());
  EXPECT_FALSE(ValidateTag(std::string(129, 'a')).ok());

  Client client(ClientOptions{});
  // Rejected before any endpoint is resolved or contacted.
  EXPECT_EQ(client.GetManifest("127.0.0.1:1", "a/../b", "latest", std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client.GetManifest("127.0.0.1:1", "a", "bad/tag", std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client.GetManifest("127.0.0.1:1", "a", "sha256:1234", std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
}

// --- against a real docker-registry -------------------------------------------------------

struct PushedImage {
  std::string config;
  std::string layer;
  Digest config_digest = Digest::FromHex("");
  Digest layer_digest = Digest::FromHex("");
  std::string manifest;
  Digest manifest_digest = Digest::FromHex("");
};

// Pushes config + one layer + a manifest (Docker schema2, or OCI) under `tag`.
PushedImage PushImage(const PushTarget& target, const std::string& repo, const std::string& tag,
                      bool oci = false, size_t layer_size = 4096) {
  PushedImage img;
  img.config = nlohmann::json{{"architecture", "amd64"}, {"os", "linux"}, {"tag", tag}}.dump();
  img.layer = RandomBytes(layer_size);
  auto cd = PushBlob(target, repo, img.config);
  EXPECT_TRUE(cd.ok()) << cd.status();
  auto ld = PushBlob(target, repo, img.layer);
  EXPECT_TRUE(ld.ok()) << ld.status();
  if (!cd.ok() || !ld.ok()) return img;
  img.config_digest = *cd;
  img.layer_digest = *ld;
  std::string media = std::string(oci ? kMediaTypeOciManifest : kMediaTypeDockerManifest);
  img.manifest =
      nlohmann::json{{"schemaVersion", 2},
                     {"mediaType", media},
                     {"config",
                      {{"mediaType", oci ? "application/vnd.oci.image.config.v1+json"
                                         : "application/vnd.docker.container.image.v1+json"},
                       {"size", img.config.size()},
                       {"digest", cd->str()}}},
                     {"layers",
                      {{{"mediaType", oci ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                          : "application/vnd.docker.image.rootfs.diff.tar.gzip"},
                        {"size", img.layer.size()},
                        {"digest", ld->str()}}}}}
          .dump();
  auto md = PushManifest(target, repo, tag, media, img.manifest);
  EXPECT_TRUE(md.ok()) << md.status();
  if (md.ok()) img.manifest_digest = *md;
  return img;
}

// Collects a blob in memory.
struct StringSink {
  std::string data;
  int calls = 0;
  std::function<Status(const char*, size_t)> fn() {
    return [this](const char* p, size_t n) {
      data.append(p, n);
      ++calls;
      return OkStatus();
    };
  }
};

class RealRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = server_.Start();
    ASSERT_TRUE(s.ok()) << s;
    target_.base_url = server_.url();
  }

  RegistryServer server_;
  PushTarget target_;
};

TEST_F(RealRegistryTest, ManifestByTagAndByDigestThenBlobs) {
  PushedImage img = PushImage(target_, "test/app", "v1");
  Client client(ClientOptions{});

  auto by_tag = client.GetManifest(server_.host(), "test/app", "v1", std::nullopt);
  ASSERT_TRUE(by_tag.ok()) << by_tag.status();
  EXPECT_EQ(by_tag->body, img.manifest);
  EXPECT_EQ(by_tag->digest, img.manifest_digest);
  EXPECT_EQ(by_tag->media_type, kMediaTypeDockerManifest);

  auto by_digest =
      client.GetManifest(server_.host(), "test/app", img.manifest_digest.str(), std::nullopt);
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(by_digest->body, img.manifest);
  EXPECT_EQ(by_digest->digest, img.manifest_digest);

  StringSink layer;
  Status s = client.GetBlob(server_.host(), "test/app", img.layer_digest,
                            static_cast<int64_t>(img.layer.size()), layer.fn(), std::nullopt);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(layer.data, img.layer);

  StringSink config;  // size unknown (-1) is allowed
  s = client.GetBlob(server_.host(), "test/app", img.config_digest, -1, config.fn(), std::nullopt);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(config.data, img.config);
}

TEST_F(RealRegistryTest, OciManifest) {
  PushedImage img = PushImage(target_, "test/oci", "latest", /*oci=*/true);
  Client client(ClientOptions{});
  auto m = client.GetManifest(server_.host(), "test/oci", "latest", std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->digest, img.manifest_digest);
}

TEST_F(RealRegistryTest, UnknownTagRepositoryAndBlobAreNotFound) {
  PushedImage img = PushImage(target_, "test/app", "v1");
  Client client(ClientOptions{});
  auto tag = client.GetManifest(server_.host(), "test/app", "nope", std::nullopt);
  EXPECT_EQ(tag.status().code(), StatusCode::kNotFound) << tag.status();
  EXPECT_THAT(tag.status().message(),
              AllOf(HasSubstr(server_.host() + "/test/app:nope"), HasSubstr("MANIFEST_UNKNOWN")));

  auto repo = client.GetManifest(server_.host(), "test/missing", "v1", std::nullopt);
  EXPECT_EQ(repo.status().code(), StatusCode::kNotFound) << repo.status();

  StringSink sink;
  Status blob = client.GetBlob(server_.host(), "test/app", Sha256::Of("never pushed"), -1,
                               sink.fn(), std::nullopt);
  EXPECT_EQ(blob.code(), StatusCode::kNotFound) << blob;
  EXPECT_EQ(sink.calls, 0);
}

TEST_F(RealRegistryTest, WrongExpectedSizeIsDataLossBeforeAnyByte) {
  PushedImage img = PushImage(target_, "test/app", "v1");
  Client client(ClientOptions{});
  for (int64_t size :
       {static_cast<int64_t>(img.layer.size()) + 1, static_cast<int64_t>(img.layer.size()) - 1}) {
    StringSink sink;
    Status s =
        client.GetBlob(server_.host(), "test/app", img.layer_digest, size, sink.fn(), std::nullopt);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
    EXPECT_THAT(s.message(), AllOf(HasSubstr("size mismatch"), HasSubstr(img.layer_digest.str())));
    EXPECT_EQ(sink.calls, 0);
  }
}

TEST_F(RealRegistryTest, SinkErrorAbortsTheTransferAndIsReturned) {
  PushedImage img = PushImage(target_, "test/big", "v1", false, 4 << 20);
  Client client(ClientOptions{});
  size_t seen = 0;
  Status s = client.GetBlob(
      server_.host(), "test/big", img.layer_digest, static_cast<int64_t>(img.layer.size()),
      [&](const char*, size_t n) -> Status {
        seen += n;
        return seen > 100000 ? AbortedError("disk full (test)") : OkStatus();
      },
      std::nullopt);
  EXPECT_EQ(s, AbortedError("disk full (test)"));
  EXPECT_LT(seen, img.layer.size());
}

TEST_F(RealRegistryTest, ParallelBlobDownloadsFromManyThreads) {
  std::vector<PushedImage> images;
  for (int i = 0; i < 4; ++i) {
    images.push_back(PushImage(target_, "test/par", "t" + std::to_string(i), false, 1 << 20));
  }
  Client client(ClientOptions{});
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        const PushedImage& img = images[(t + round) % images.size()];
        StringSink sink;
        Status s = client.GetBlob(server_.host(), "test/par", img.layer_digest,
                                  static_cast<int64_t>(img.layer.size()), sink.fn(), std::nullopt);
        if (!s.ok() || sink.data != img.layer) {
          ADD_FAILURE() << "thread " << t << ": " << s;
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(RealRegistryTest, HostsTomlRoutesDockerIoToTheLocalRegistryOnly) {
  PushedImage img = PushImage(target_, "library/busybox", "latest");
  TempDir hosts;
  WriteText(hosts.path() / "docker.io" / "hosts.toml",
            StrCat("[host.\"", server_.url(), "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"));
  auto eps = ResolveEndpoints(hosts.path(), "docker.io");
  ASSERT_TRUE(eps.ok()) << eps.status();
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].url, server_.url());

  Client client(ClientOptions{.hosts_dir = hosts.path()});
  auto m = client.GetManifest("docker.io", "library/busybox", "latest", std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, img.manifest_digest);
  StringSink sink;
  Status s = client.GetBlob("docker.io", "library/busybox", img.layer_digest,
                            static_cast<int64_t>(img.layer.size()), sink.fn(), std::nullopt);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink.data, img.layer);

  // Not found on the only configured endpoint stays NOT_FOUND: nothing else is asked.
  auto missing = client.GetManifest("docker.io", "library/busybox", "nope", std::nullopt);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), Not(HasSubstr("registry-1.docker.io")));
}

TEST_F(RealRegistryTest, MirrorAnswering404FallsThroughToTheServer) {
  PushedImage img = PushImage(target_, "test/app", "v1");
  FakeHttpServer mirror([](const RecordedRequest&) {
    return CannedResponse{.status = 404,
                          .body = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]})"};
  });
  ASSERT_TRUE(mirror.Start().ok());
  TempDir hosts;
  WriteText(hosts.path() / "upstream.test" / "hosts.toml",
            StrCat("server = \"", server_.url(), "\"\n[host.\"", mirror.url(), "\"]\n"));
  Client client(ClientOptions{.hosts_dir = hosts.path()});
  auto m = client.GetManifest("upstream.test", "test/app", "v1", std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, img.manifest_digest);
  auto reqs = mirror.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path(), "/v2/test/app/manifests/v1");
  EXPECT_EQ(reqs[0].query(), "ns=upstream.test");
  EXPECT_THAT(reqs[0].header("accept"), AllOf(HasSubstr(std::string(kMediaTypeDockerManifest)),
                                              HasSubstr(std::string(kMediaTypeDockerManifestList)),
                                              HasSubstr(std::string(kMediaTypeOciManifest)),
                                              HasSubstr(std::string(kMediaTypeOciIndex))));
}

TEST_F(RealRegistryTest, RegistryDownIsUnavailableQuickly) {
  std::string host = server_.host();
  std::string url = server_.url();
  server_.Stop();
  Client client(ClientOptions{});
  auto start = std::chrono::steady_clock::now();
  auto m = client.GetManifest(host, "test/app", "v1", std::nullopt);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable) << m.status();
  EXPECT_THAT(m.status().message(), AllOf(HasSubstr(url), HasSubstr("onnect")));
  EXPECT_LT(elapsed, std::chrono::seconds(2));

  StringSink sink;
  Status s = client.GetBlob(host, "test/app", Sha256::Of("x"), 1, sink.fn(), std::nullopt);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
}

TEST(UnreachableTest, EveryEndpointIsNamed) {
  // Two ports nobody listens on: bind and close to find them.
  FakeHttpServer a([](const RecordedRequest&) { return CannedResponse{}; });
  FakeHttpServer b([](const RecordedRequest&) { return CannedResponse{}; });
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  std::string url_a = a.url(), url_b = b.url();
  a.Stop();
  b.Stop();
  TempDir hosts;
  WriteText(hosts.path() / "r.test" / "hosts.toml",
            StrCat("server = \"", url_b, "\"\n[host.\"", url_a, "\"]\n"));
  Client client(ClientOptions{.hosts_dir = hosts.path()});
  auto m = client.GetManifest("r.test", "x/y", "v1", std::nullopt);
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr("manifest r.test/x/y:v1"), HasSubstr(url_a), HasSubstr(url_b)));
}

// --- authentication against the real registry ----------------------------------------------

class HtpasswdRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = server_.Start(RegistryServerOptions{.username = "alice", .password = "wonder"});
    ASSERT_TRUE(s.ok()) << s;
    img_ =
        PushImage(PushTarget{.base_url = server_.url(), .username = "alice", .password = "wonder"},
                  "private/app", "v1");
  }
  RegistryServer server_;
  PushedImage img_;
};

TEST_F(HtpasswdRegistryTest, RightCredentialsWork) {
  Client client(ClientOptions{});
  auto m = client.GetManifest(server_.host(), "private/app", "v1",
                              AuthConfig{.username = "alice", .password = "wonder"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, img_.manifest_digest);
  StringSink sink;  // base64 "auth" form, and the cached Basic header on a second request
  Status s = client.GetBlob(server_.host(), "private/app", img_.layer_digest,
                            static_cast<int64_t>(img_.layer.size()), sink.fn(),
                            AuthConfig{.auth = Base64Encode("alice:wonder")});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink.data, img_.layer);
}

TEST_F(HtpasswdRegistryTest, WrongOrMissingCredentialsAreUnauthenticated) {
  Client client(ClientOptions{});
  auto wrong = client.GetManifest(server_.host(), "private/app", "v1",
                                  AuthConfig{.username = "alice", .password = "guess"});
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated) << wrong.status();
  auto none = client.GetManifest(server_.host(), "private/app", "v1", std::nullopt);
  EXPECT_EQ(none.status().code(), StatusCode::kUnauthenticated) << none.status();
  EXPECT_THAT(none.status().message(), HasSubstr("no credentials"));
}

TEST_F(HtpasswdRegistryTest, CredentialsFromDockerConfig) {
  TempDir dir;
  WriteText(dir.path() / "empty.json", R"({"auths": {}})");
  WriteText(dir.path() / "config.json",
            nlohmann::json{{"auths", {{server_.host(), {{"auth", Base64Encode("alice:wonder")}}}}}}
                .dump());
  Client client(
      ClientOptions{.docker_config_paths = {dir.path() / "missing.json", dir.path() / "empty.json",
                                            dir.path() / "config.json"}});
  auto m = client.GetManifest(server_.host(), "private/app", "v1", std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status();
  // Credentials given with the request win over the config file.
  auto wrong = client.GetManifest(server_.host(), "private/app", "v1",
                                  AuthConfig{.username = "alice", .password = "guess"});
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
}

TEST(TokenRegistryTest, AnonymousBearerTokenFlowAndCache) {
  RegistryServer server;
  Status s = server.Start(RegistryServerOptions{.token_auth = true});
  ASSERT_TRUE(s.ok()) << s;
  auto push_token = server.IssueToken("pub/app", "pull,push");
  ASSERT_TRUE(push_token.ok()) << push_token.status();
  PushedImage img =
      PushImage(PushTarget{.base_url = server.url(), .bearer_token = *push_token}, "pub/app", "v1");

  Client client(ClientOptions{});
  auto m = client.GetManifest(server.host(), "pub/app", "v1", std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, img.manifest_digest);
  StringSink sink;
  s = client.GetBlob(server.host(), "pub/app", img.layer_digest,
                     static_cast<int64_t>(img.layer.size()), sink.fn(), std::nullopt);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink.data, img.layer);

  // One token for (endpoint, repository): the second request reused it.
  auto reqs = server.token_requests();
  ASSERT_EQ(reqs.size(), 1u);
  auto q = ParseQuery(reqs[0].query());
  EXPECT_THAT(q, ::testing::Contains(
                     std::pair<std::string, std::string>("scope", "repository:pub/app:pull")));
  EXPECT_THAT(q, ::testing::Contains(
                     std::pair<std::string, std::string>("service", "berth-test-registry")));
  EXPECT_EQ(reqs[0].header("authorization"), "");
}

TEST(TokenRegistryTest, TokenServiceCredentialsAndIdentityToken) {
  RegistryServer server;
  Status s = server.Start(RegistryServerOptions{.token_auth = true,
                                                .token_username = "bob",
                                                .token_password = "builder",
                                                .token_refresh_token = "refresh-123"});
  ASSERT_TRUE(s.ok()) << s;
  auto push_token = server.IssueToken("team/app", "pull,push");
  ASSERT_TRUE(push_token.ok());
  PushedImage img = PushImage(PushTarget{.base_url = server.url(), .bearer_token = *push_token},
                              "team/app", "v1");

  Client client(ClientOptions{});
  auto good = client.GetManifest(server.host(), "team/app", "v1",
                                 AuthConfig{.username = "bob", .password = "builder"});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->digest, img.manifest_digest);

  auto wrong = client.GetManifest(server.host(), "team/app", "v1",
                                  AuthConfig{.username = "bob", .password = "nope"});
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated) << wrong.status();
  EXPECT_THAT(wrong.status().message(), HasSubstr(server.token_realm()));

  auto anonymous = client.GetManifest(server.host(), "team/app", "v1", std::nullopt);
  EXPECT_EQ(anonymous.status().code(), StatusCode::kUnauthenticated) << anonymous.status();

  auto refresh = client.GetManifest(server.host(), "team/app", "v1",
                                    AuthConfig{.identity_token = "refresh-123"});
  ASSERT_TRUE(refresh.ok()) << refresh.status();
  auto reqs = server.token_requests();
  ASSERT_FALSE(reqs.empty());
  const RecordedRequest& post = reqs.back();
  EXPECT_EQ(post.method, "POST");
  auto form = ParseQuery(post.body);
  EXPECT_THAT(form, ::testing::IsSupersetOf(
                        {std::pair<std::string, std::string>("grant_type", "refresh_token"),
                         std::pair<std::string, std::string>("refresh_token", "refresh-123"),
                         std::pair<std::string, std::string>("client_id", "berth"),
                         std::pair<std::string, std::string>("scope", "repository:team/app:pull"),
                         std::pair<std::string, std::string>("service", "berth-test-registry")}));

  auto bad_refresh =
      client.GetManifest(server.host(), "team/app", "v1", AuthConfig{.identity_token = "stale"});
  EXPECT_EQ(bad_refresh.status().code(), StatusCode::kUnauthenticated);
}

// --- TLS against the real registry ----------------------------------------------------------

TEST(TlsRegistryTest, CaFileSkipVerifyAndUntrustedCertificate) {
  RegistryServer server;
  Status s = server.Start(RegistryServerOptions{.tls = true});
  ASSERT_TRUE(s.ok()) << s;
  PushedImage img = PushImage(
      PushTarget{.base_url = server.url(), .ca_file = server.ca_file().string()}, "tls/app", "v1");

  TempDir hosts;
  auto configure = [&](std::string_view extra) {
    WriteText(hosts.path() / server.host() / "hosts.toml",
              StrCat("server = \"", server.url(), "\"\n", extra));
  };
  Client client(ClientOptions{.hosts_dir = hosts.path()});

  configure("");
  auto untrusted = client.GetManifest(server.host(), "tls/app", "v1", std::nullopt);
  EXPECT_EQ(untrusted.status().code(), StatusCode::kUnavailable) << untrusted.status();
  EXPECT_THAT(untrusted.status().message(), HasSubstr("TLS"));

  configure(StrCat("ca = \"", server.ca_file().string(), "\"\n"));
  auto trusted = client.GetManifest(server.host(), "tls/app", "v1", std::nullopt);
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(trusted->digest, img.manifest_digest);

  configure("skip_verify = true\n");
  StringSink sink;
  s = client.GetBlob(server.host(), "tls/app", img.layer_digest,
                     static_cast<int64_t>(img.layer.size()), sink.fn(), std::nullopt);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink.data, img.layer);

  configure("ca = \"/nonexistent/ca.pem\"\n");
  auto missing_ca = client.GetManifest(server.host(), "tls/app", "v1", std::nullopt);
  EXPECT_FALSE(missing_ca.ok());
  EXPECT_THAT(missing_ca.status().message(), HasSubstr("/nonexistent/ca.pem"));
}

// --- misbehaving servers (fake) -------------------------------------------------------------

// A client whose only endpoint for "fake.test" is `url`.
struct FakeRoute {
  TempDir hosts;
  std::unique_ptr<Client> client;
  FakeRoute(const std::string& url, ClientOptions options = {}) {
    WriteText(hosts.path() / "fake.test" / "hosts.toml", StrCat("server = \"", url, "\"\n"));
    options.hosts_dir = hosts.path();
    client = std::make_unique<Client>(std::move(options));
  }
};

TEST(FakeServerTest, BlobWithWrongContentIsDataLoss) {
  const std::string good = "the real layer", evil = "something else";
  FakeHttpServer fake([&](const RecordedRequest&) { return CannedResponse{.body = evil}; });
  ASSERT_TRUE(fake.Start().ok());
  FakeRoute route(fake.url());
  Digest digest = Sha256::Of(good);
  StringSink sink;
  Status s = route.client->GetBlob("fake.test", "x/y", digest, -1, sink.fn(), std::nullopt);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), AllOf(HasSubstr("digest mismatch"), HasSubstr(digest.str()),
                                 HasSubstr(Sha256::Of(evil).str())));
  EXPECT_EQ(sink.data, evil);  // streamed as received; the caller discards on error
  ASSERT_EQ(fake.requests().size(), 1u);
  EXPECT_EQ(fake.requests()[0].path(), "/v2/x/y/blobs/" + digest.str());
}

TEST(FakeServerTest, ManifestByDigestWithWrongBodyIsDataLoss) {
  FakeHttpServer fake([](const RecordedRequest&) {
    return CannedResponse{.headers = {{"Content-Type", std::string(kMediaTypeOciManifest)}},
                          .body = "{}"};
  });
  ASSERT_TRUE(fake.Start().ok());
  FakeRoute route(fake.url());
  Digest want = Sha256::Of("{\"other\":1}");
  auto m = route.client->GetManifest("fake.test", "x/y", want.str(), std::nullopt);
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr("digest mismatch"));

  // By tag the digest is simply that of the body; the media type comes from the body if the
  // Content-Type is generic.
  FakeHttpServer generic([](const RecordedRequest&) {
    return CannedResponse{.headers = {{"Content-Type", "application/json"}},
                          .body = R"({"mediaType":"application/vnd.oci.image.index.v1+json"})"};
  });
  ASSERT_TRUE(generic.Start().ok());
  FakeRoute route2(generic.url());
  auto tagged = route2.client->GetManifest("fake.test", "x/y", "v1", std::nullopt);
  ASSERT_TRUE(tagged.ok()) << tagged.status();
  EXPECT_EQ(tagged->media_type, kMediaTypeOciIndex);
  EXPECT_EQ(tagged->digest, Sha256::Of(tagged->body));
}

TEST(FakeServerTest, BearerTokenFlowWithBasicCredentials) {
  std::string realm;
  FakeHttpServer fake([&](const RecordedRequest& req) {
    if (req.path() == "/token") {
      if (req.header("authorization") != "Basic " + Base64Encode("carol:pw")) {
        return CannedResponse{.status = 401, .body = "bad credentials"};
      }
      return CannedResponse{.body = R"({"token":"tok-1","expires_in":300})"};
    }
    if (req.header("authorization") == "Bearer tok-1") {
      return CannedResponse{.headers = {{"Content-Type", std::string(kMediaTypeDockerManifest)}},
                            .body = "{\"schemaVersion\":2}"};
    }
    return CannedResponse{
        .status = 401,
        .headers = {{"WWW-Authenticate",
                     StrCat("Bearer realm=\"", realm, "\",service=\"fake-svc\",scope=\"",
                            "repository:x/y:pull\"")}},
        .body = R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})"};
  });
  ASSERT_TRUE(fake.Start().ok());
  realm = fake.url() + "/token";
  FakeRoute route(fake.url());
  AuthConfig creds{.username = "carol", .password = "pw"};
  for (int i = 0; i < 2; ++i) {
    auto m = route.client->GetManifest("fake.test", "x/y", "v1", creds);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->body, "{\"schemaVersion\":2}");
  }
  auto reqs = fake.requests();
  // anonymous try, token, retry with token; then the cached token straight away.
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].header("authorization"), "");
  EXPECT_EQ(reqs[1].path(), "/token");
  auto q = ParseQuery(reqs[1].query());
  EXPECT_THAT(q, ::testing::IsSupersetOf(
                     {std::pair<std::string, std::string>("service", "fake-svc"),
                      std::pair<std::string, std::string>("scope", "repository:x/y:pull"),
                      std::pair<std::string, std::string>("account", "carol")}));
  EXPECT_EQ(reqs[2].header("authorization"), "Bearer tok-1");
  EXPECT_EQ(reqs[3].header("authorization"), "Bearer tok-1");

  // Other credentials do not reuse carol's token, and are refused by the token server.
  auto other = route.client->GetManifest("fake.test", "x/y", "v1",
                                         AuthConfig{.username = "mallory", .password = "x"});
  EXPECT_EQ(other.status().code(), StatusCode::kUnauthenticated) << other.status();
  EXPECT_THAT(other.status().message(), AllOf(HasSubstr(realm), HasSubstr("mallory")));
}

TEST(FakeServerTest, BasicChallengeAndRegistryToken) {
  FakeHttpServer fake([](const RecordedRequest& req) {
    std::string auth = req.header("authorization");
    if (auth == "Basic " + Base64Encode("dave:pw") || auth == "Bearer opaque-registry-token") {
      return CannedResponse{.body = "blob"};
    }
    if (req.path().find("/bearer/") != std::string::npos) {
      return CannedResponse{
          .status = 401,
          .headers = {{"WWW-Authenticate", "Bearer realm=\"http://127.0.0.1:1/never\""}}};
    }
    return CannedResponse{.status = 401, .headers = {{"WWW-Authenticate", "Basic realm=\"r\""}}};
  });
  ASSERT_TRUE(fake.Start().ok());
  FakeRoute route(fake.url());
  StringSink sink;
  Status s = route.client->GetBlob("fake.test", "basic/repo", Sha256::Of("blob"), 4, sink.fn(),
                                   AuthConfig{.username = "dave", .password = "pw"});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink.data, "blob");

  // A registry token is used as the bearer token without asking the realm (which is closed).
  StringSink sink2;
  s = route.client->GetBlob("fake.test", "bearer/repo", Sha256::Of("blob"), 4, sink2.fn(),
                            AuthConfig{.registry_token = "opaque-registry-token"});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink2.data, "blob");
}

TEST(FakeServerTest, StallIsDeadlineExceededNamingTheBlob) {
  const std::string body(100000, 'z');
  FakeHttpServer fake([&](const RecordedRequest&) {
    return CannedResponse{.body = body, .stall_after_bytes = 1000};
  });
  ASSERT_TRUE(fake.Start().ok());
  FakeRoute route(fake.url(), ClientOptions{.stall_timeout = std::chrono::seconds(1)});
  Digest digest = Sha256::Of(body);
  StringSink sink;
  auto start = std::chrono::steady_clock::now();
  Status s = route.client->GetBlob("fake.test", "x/y", digest, -1, sink.fn(), std::nullopt);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), HasSubstr(digest.str()));
  EXPECT_EQ(sink.data.size(), 1000u);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(fake.requests().size(), 1u);  // bytes were delivered: no retry
}

TEST(FakeServerTest, TransientErrorsBeforeTheFirstByteAreRetried) {
  std::atomic<int> calls{0};
  FakeHttpServer fake([&](const RecordedRequest&) {
    int n = calls++;
    if (n == 0) return CannedResponse{.status = 503, .body = "busy"};
    if (n == 1) return CannedResponse{.close_without_response = true};
    return CannedResponse{.body = "payload"};
  });
  ASSERT_TRUE(fake.Start().ok());
  FakeRoute route(fake.url(),
                  ClientOptions{.max_attempts = 3, .retry_backoff = std::chrono::milliseconds(10)});
  StringSink sink;
  Status s =
      route.client->GetBlob("fake.test", "x/y", Sha256::Of("payload"), 7, sink.fn(), std::nullopt);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink.data, "payload");
  EXPECT_EQ(calls.load(), 3);

  // With attempts exhausted, 5xx is UNAVAILABLE.
  FakeHttpServer busy([](const RecordedRequest&) {
    return CannedResponse{.status = 503, .body = R"({"errors":[{"code":"UNAVAILABLE"}]})"};
  });
  ASSERT_TRUE(busy.Start().ok());
  FakeRoute route2(
      busy.url(), ClientOptions{.max_attempts = 2, .retry_backoff = std::chrono::milliseconds(10)});
  auto m = route2.client->GetManifest("fake.test", "x/y", "v1", std::nullopt);
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable) << m.status();
  EXPECT_EQ(busy.requests().size(), 2u);
}

TEST(FakeServerTest, RedirectIsFollowedWithoutForwardingCredentials) {
  FakeHttpServer storage([](const RecordedRequest&) { return CannedResponse{.body = "stored"}; });
  ASSERT_TRUE(storage.Start().ok());
  FakeHttpServer registry([&](const RecordedRequest& req) {
    if (req.header("authorization") != "Basic " + Base64Encode("erin:pw")) {
      return CannedResponse{.status = 401, .headers = {{"WWW-Authenticate", "Basic realm=\"r\""}}};
    }
    // A body on the redirect must not end up in front of the blob.
    return CannedResponse{.status = 307,
                          .headers = {{"Location", storage.url() + "/bucket/object"}},
                          .body = "moved"};
  });
  ASSERT_TRUE(registry.Start().ok());
  FakeRoute route(registry.url());
  StringSink sink;
  Status s = route.client->GetBlob("fake.test", "x/y", Sha256::Of("stored"), 6, sink.fn(),
                                   AuthConfig{.username = "erin", .password = "pw"});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sink.data, "stored");
  auto m = route.client->GetManifest("fake.test", "x/y", "v1",
                                     AuthConfig{.username = "erin", .password = "pw"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->body, "stored");
  auto reqs = storage.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (const RecordedRequest& req : reqs) {
    EXPECT_EQ(req.path(), "/bucket/object");
    EXPECT_EQ(req.header("authorization"), "");  // another host: no registry credentials
  }
}

TEST(FakeServerTest, CapabilitiesChooseEndpoints) {
  FakeHttpServer pull_only(
      [](const RecordedRequest&) { return CannedResponse{.body = "{\"from\":\"pull-only\"}"}; });
  FakeHttpServer server(
      [](const RecordedRequest&) { return CannedResponse{.body = "{\"from\":\"server\"}"}; });
  ASSERT_TRUE(pull_only.Start().ok());
  ASSERT_TRUE(server.Start().ok());
  TempDir hosts;
  WriteText(hosts.path() / "fake.test" / "hosts.toml",
            StrCat("server = \"", server.url(), "\"\n[host.\"", pull_only.url(),
                   "\"]\n  capabilities = [\"pull\"]\n"));
  Client client(ClientOptions{.hosts_dir = hosts.path()});
  auto by_tag = client.GetManifest("fake.test", "x/y", "v1", std::nullopt);
  ASSERT_TRUE(by_tag.ok()) << by_tag.status();
  EXPECT_EQ(by_tag->body, "{\"from\":\"server\"}");  // tags are resolved by resolve hosts only
  EXPECT_THAT(pull_only.requests(), IsEmpty());
  auto by_digest = client.GetManifest("fake.test", "x/y",
                                      Sha256::Of("{\"from\":\"pull-only\"}").str(), std::nullopt);
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(pull_only.requests().size(), 1u);

  // Configured headers are sent.
  WriteText(hosts.path() / "fake.test" / "hosts.toml",
            StrCat("server = \"", server.url(), "\"\n[header]\n  X-Berth-Test = \"yes\"\n"));
  ASSERT_TRUE(client.GetManifest("fake.test", "x/y", "v2", std::nullopt).ok());
  EXPECT_EQ(server.requests().back().header("x-berth-test"), "yes");
  EXPECT_EQ(server.requests().back().header("user-agent"), "berth/0.1");

  // A hosts.toml without any resolve-capable endpoint.
  WriteText(hosts.path() / "fake.test" / "hosts.toml",
            StrCat("[host.\"", pull_only.url(), "\"]\n  capabilities = [\"pull\"]\n"));
  EXPECT_EQ(client.GetManifest("fake.test", "x/y", "v1", std::nullopt).status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace berth::registry
