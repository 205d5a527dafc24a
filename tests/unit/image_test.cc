#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "common/digest.h"
#include "image/manifest.h"
#include "image/reference.h"

namespace berth::image {
namespace {

const std::string kHexA =
    "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";  // sha256("a")
const std::string kHexB =
    "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";  // sha256("b")
const std::string kHexC =
    "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";  // sha256("c")

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// References

struct NormCase {
  std::string input;
  std::string domain;
  std::string repository;
  std::string tag;
  std::string digest;  // "" if none
  std::string normalized;
};

void PrintTo(const NormCase& c, std::ostream* os) { *os << '"' << c.input << '"'; }

class ReferenceNormalizeTest : public ::testing::TestWithParam<NormCase> {};

TEST_P(ReferenceNormalizeTest, Normalizes) {
  const NormCase& c = GetParam();
  StatusOr<Reference> ref = ParseReference(c.input);
  ASSERT_TRUE(ref.ok()) << c.input << ": " << ref.status();
  EXPECT_EQ(ref->domain, c.domain) << c.input;
  EXPECT_EQ(ref->repository, c.repository) << c.input;
  EXPECT_EQ(ref->tag, c.tag) << c.input;
  if (c.digest.empty()) {
    EXPECT_FALSE(ref->digest.has_value()) << c.input;
  } else {
    ASSERT_TRUE(ref->digest.has_value()) << c.input;
    EXPECT_EQ(ref->digest->str(), c.digest) << c.input;
  }
  EXPECT_EQ(ref->String(), c.normalized) << c.input;
  // The normalised form parses to the same reference.
  StatusOr<Reference> again = ParseReference(ref->String());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *ref);
}

const std::string kDigA = "sha256:" + kHexA;

INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceNormalizeTest,
    ::testing::Values(
        NormCase{"busybox", "docker.io", "library/busybox", "latest", "",
                 "docker.io/library/busybox:latest"},
        NormCase{"busybox:1.36", "docker.io", "library/busybox", "1.36", "",
                 "docker.io/library/busybox:1.36"},
        NormCase{"library/busybox", "docker.io", "library/busybox", "latest", "",
                 "docker.io/library/busybox:latest"},
        NormCase{"docker.io/busybox", "docker.io", "library/busybox", "latest", "",
                 "docker.io/library/busybox:latest"},
        NormCase{"docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", "",
                 "docker.io/library/busybox:1.36"},
        NormCase{"index.docker.io/busybox", "docker.io", "library/busybox", "latest", "",
                 "docker.io/library/busybox:latest"},
        NormCase{"index.docker.io/foo/bar:t", "docker.io", "foo/bar", "t", "",
                 "docker.io/foo/bar:t"},
        NormCase{"foo/bar", "docker.io", "foo/bar", "latest", "", "docker.io/foo/bar:latest"},
        NormCase{"localhost/foo", "localhost", "foo", "latest", "", "localhost/foo:latest"},
        NormCase{"localhost:5000/a/b:t", "localhost:5000", "a/b", "t", "", "localhost:5000/a/b:t"},
        NormCase{"127.0.0.1:5000/busybox", "127.0.0.1:5000", "busybox", "latest", "",
                 "127.0.0.1:5000/busybox:latest"},
        NormCase{"127.0.0.1:5000/e2e/busybox:1.29-4", "127.0.0.1:5000", "e2e/busybox", "1.29-4", "",
                 "127.0.0.1:5000/e2e/busybox:1.29-4"},
        NormCase{"10.0.0.1/x", "10.0.0.1", "x", "latest", "", "10.0.0.1/x:latest"},
        NormCase{"[::1]:5000/foo:v1", "[::1]:5000", "foo", "v1", "", "[::1]:5000/foo:v1"},
        NormCase{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", "",
                 "registry.k8s.io/pause:3.9"},
        NormCase{"registry.k8s.io/e2e-test-images/busybox:1.29-4", "registry.k8s.io",
                 "e2e-test-images/busybox", "1.29-4", "",
                 "registry.k8s.io/e2e-test-images/busybox:1.29-4"},
        NormCase{"registry.k8s.io/pause@" + kDigA, "registry.k8s.io", "pause", "", kDigA,
                 "registry.k8s.io/pause@" + kDigA},
        NormCase{"a/b:t@" + kDigA, "docker.io", "a/b", "t", kDigA, "docker.io/a/b:t@" + kDigA},
        NormCase{"busybox@" + kDigA, "docker.io", "library/busybox", "", kDigA,
                 "docker.io/library/busybox@" + kDigA},
        NormCase{"localhost:5000", "docker.io", "library/localhost", "5000", "",
                 "docker.io/library/localhost:5000"},
        NormCase{"my-registry.example.com:443/team/app:v1.2.3_rc-1", "my-registry.example.com:443",
                 "team/app", "v1.2.3_rc-1", "", "my-registry.example.com:443/team/app:v1.2.3_rc-1"},
        NormCase{"a.b-c.d--e/f_g.h__i:TAG_x", "a.b-c.d--e", "f_g.h__i", "TAG_x", "",
                 "a.b-c.d--e/f_g.h__i:TAG_x"},
        NormCase{"foo/a__b/c---d/e.f_g", "docker.io", "foo/a__b/c---d/e.f_g", "latest", "",
                 "docker.io/foo/a__b/c---d/e.f_g:latest"},
        NormCase{"sha256:" + kHexA, "docker.io", "library/sha256", kHexA, "",
                 "docker.io/library/sha256:" + kHexA},
        NormCase{"Registry.Example.COM/foo", "Registry.Example.COM", "foo", "latest", "",
                 "Registry.Example.COM/foo:latest"}));

struct InvalidCase {
  std::string input;
  std::string message_part;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << '"' << c.input << '"'; }

class ReferenceInvalidTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(ReferenceInvalidTest, Rejects) {
  const InvalidCase& c = GetParam();
  StatusOr<Reference> ref = ParseReference(c.input);
  ASSERT_FALSE(ref.ok()) << c.input << " parsed as " << ref->String();
  EXPECT_EQ(ref.status().code(), StatusCode::kInvalidArgument) << c.input;
  EXPECT_TRUE(Contains(ref.status().message(), c.message_part))
      << c.input << ": " << ref.status().message();
  if (!c.input.empty()) {
    EXPECT_TRUE(Contains(ref.status().message(), c.input)) << ref.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceInvalidTest,
    ::testing::Values(
        InvalidCase{"", "empty"}, InvalidCase{"://", "URL scheme"},
        InvalidCase{"https://registry.example.com/foo", "URL scheme"},
        InvalidCase{"busy box", "whitespace"}, InvalidCase{" busybox", "whitespace"},
        InvalidCase{"busybox\n", "whitespace"}, InvalidCase{"busybox:", "tag after ':' is empty"},
        InvalidCase{":latest", "repository name is empty"},
        InvalidCase{"busybox@", "digest after '@' is empty"},
        InvalidCase{"busybox@sha256:abc", "wrong length"},
        InvalidCase{"busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest"},
        InvalidCase{"Busybox", "must be lowercase"},
        InvalidCase{"docker.io/Library/busybox", "must be lowercase"},
        InvalidCase{"localhost:5000/A/b", "must be lowercase"},
        InvalidCase{"busybox:-bad", "must start with"},
        InvalidCase{"busybox:.bad", "must start with"}, InvalidCase{"busybox:a+b", "contains '+'"},
        InvalidCase{"busybox:" + std::string(129, 'a'), "at most 128"},
        InvalidCase{"a//b", "empty path component"}, InvalidCase{"a/b/", "empty path component"},
        InvalidCase{"/busybox", "empty path component"},
        InvalidCase{"localhost:5000/", "repository path after the registry host is empty"},
        InvalidCase{"foo/-bar", "must start with a letter or digit"},
        InvalidCase{"foo/bar-", "must end with a letter or digit"},
        InvalidCase{"foo/bar.", "must end with a letter or digit"},
        InvalidCase{"foo/a..b", "invalid separator"}, InvalidCase{"foo/a___b", "invalid separator"},
        InvalidCase{"foo/a._b", "invalid separator"}, InvalidCase{"foo/a$b", "contains '$'"},
        InvalidCase{"-host.com/foo", "not a valid host name"},
        InvalidCase{"host..com/foo", "not a valid host name"},
        InvalidCase{"a_b.com/foo", "not a valid host name"}, InvalidCase{"host.com:/foo", "port"},
        InvalidCase{"host.com:abc/foo", "not a number"},
        InvalidCase{"host.com:99999/foo", "larger than 65535"},
        InvalidCase{"[::1/foo", "closing ']'"}, InvalidCase{kHexA, "64-hex image ID"},
        InvalidCase{"a/" + std::string(254, 'b'), "at most 255"}));

TEST(ReferenceTest, NameLengthLimitIsInclusive) {
  StatusOr<Reference> ok = ParseReference("x.io/" + std::string(250, 'a'));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->repository.size(), 250u);
  EXPECT_FALSE(ParseReference("x.io/" + std::string(251, 'a')).ok());
}

TEST(ReferenceTest, NameLengthLimitCountsTheDefaultRegistry) {
  // "docker.io/" + "u/" + 243 = 255 fits; one more does not, although the
  // text typed is only 246 characters long.
  StatusOr<Reference> ok = ParseReference("u/" + std::string(243, 'a'));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ParseReference(ok->String()).ok());
  StatusOr<Reference> bad = ParseReference("u/" + std::string(244, 'a'));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("256 characters long"), std::string::npos) << bad.status();
}

TEST(ReferenceTest, TagOf128IsAllowed) {
  StatusOr<Reference> ok = ParseReference("busybox:" + std::string(128, 'x'));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tag.size(), 128u);
}

TEST(ReferenceTest, Accessors) {
  StatusOr<Reference> ref = ParseReference("busybox:1.36");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->Name(), "docker.io/library/busybox");
  EXPECT_EQ(ref->TagRef(), "docker.io/library/busybox:1.36");
  Digest d = Digest::FromHex(kHexB);
  EXPECT_EQ(ref->DigestRef(d), "docker.io/library/busybox@sha256:" + kHexB);

  StatusOr<Reference> by_digest = ParseReference("busybox@sha256:" + kHexA);
  ASSERT_TRUE(by_digest.ok());
  EXPECT_EQ(by_digest->TagRef(), "");
  EXPECT_EQ(by_digest->DigestRef(*by_digest->digest), by_digest->String());
}

TEST(ReferenceTest, UppercaseDigestRejected) {
  std::string upper = kHexA;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  StatusOr<Reference> ref = ParseReference("busybox@sha256:" + upper);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().code(), StatusCode::kInvalidArgument);
}

TEST(ReferenceTest, LooksLikeImageId) {
  EXPECT_TRUE(LooksLikeImageId(kHexA));
  EXPECT_TRUE(LooksLikeImageId("sha256:" + kHexA));
  EXPECT_FALSE(LooksLikeImageId(""));
  EXPECT_FALSE(LooksLikeImageId("sha256:"));
  EXPECT_FALSE(LooksLikeImageId(kHexA.substr(1)));
  EXPECT_FALSE(LooksLikeImageId(kHexA + "0"));
  EXPECT_FALSE(LooksLikeImageId("sha512:" + kHexA));
  std::string upper = kHexA;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  EXPECT_FALSE(LooksLikeImageId(upper));
  EXPECT_FALSE(LooksLikeImageId("busybox"));
  EXPECT_FALSE(LooksLikeImageId("docker.io/library/busybox@sha256:" + kHexA));
}

// ---------------------------------------------------------------------------------------------
// Media types and detection

const std::string kDockerManifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 1469,
    "digest": "sha256:)" + kHexA + R"("
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 772788,
      "digest": "sha256:)" + kHexB + R"("
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "size": 10,
      "digest": "sha256:)" + kHexC + R"(",
      "urls": ["https://example.invalid/layer"]
    }
  ]
})";

const std::string kOciManifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "size": 500,
    "digest": "sha256:)" + kHexA +
                                 R"("
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "size": 1234,
      "digest": "sha256:)" + kHexB +
                                 R"(",
      "annotations": {"org.opencontainers.image.title": "layer.tar.zst"}
    }
  ],
  "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
})";

// No mediaType: OCI allows that; detection falls back to shape.
const std::string kOciManifestNoMediaType = R"({
  "schemaVersion": 2,
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
             "digest": "sha256:)" + kHexA + R"("},
  "layers": []
})";

std::string IndexEntry(const std::string& hex, const std::string& os, const std::string& arch,
                       const std::string& variant = "", const std::string& extra = "") {
  std::string platform = R"("os": ")" + os + R"(", "architecture": ")" + arch + "\"";
  if (!variant.empty()) platform += R"(, "variant": ")" + variant + "\"";
  return R"({"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 100, "digest": "sha256:)" +
         hex + R"(", "platform": {)" + platform + "}" + extra + "}";
}

std::string MakeIndex(const std::vector<std::string>& entries,
                      const std::string& media_type = "application/vnd.oci.image.index.v1+json") {
  std::string out = R"({"schemaVersion": 2)";
  if (!media_type.empty()) out += R"(, "mediaType": ")" + media_type + "\"";
  out += R"(, "manifests": [)";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ",";
    out += entries[i];
  }
  return out + "]}";
}

const std::string kDockerList = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 527,
     "digest": "sha256:)" + kHexA +
                                R"(", "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 527,
     "digest": "sha256:)" + kHexB +
                                R"(",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 527,
     "digest": "sha256:)" + kHexC +
                                R"(",
     "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1"}}
  ]
})";

TEST(MediaTypeTest, Constants) {
  EXPECT_EQ(kMediaTypeDockerManifest, "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(kMediaTypeDockerManifestList,
            "application/vnd.docker.distribution.manifest.list.v2+json");
  EXPECT_EQ(kMediaTypeOciManifest, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(kMediaTypeOciIndex, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(kMediaTypeDockerConfig, "application/vnd.docker.container.image.v1+json");
  EXPECT_EQ(kMediaTypeOciConfig, "application/vnd.oci.image.config.v1+json");
  std::string accept = ManifestAcceptHeader();
  for (ManifestKind k : {ManifestKind::kDockerManifest, ManifestKind::kDockerManifestList,
                         ManifestKind::kOciManifest, ManifestKind::kOciIndex}) {
    EXPECT_TRUE(Contains(accept, MediaTypeOf(k))) << MediaTypeOf(k);
  }
  EXPECT_TRUE(IsIndex(ManifestKind::kOciIndex));
  EXPECT_TRUE(IsIndex(ManifestKind::kDockerManifestList));
  EXPECT_FALSE(IsIndex(ManifestKind::kOciManifest));
  EXPECT_FALSE(IsIndex(ManifestKind::kDockerManifest));
  EXPECT_TRUE(IsConfigMediaType(kMediaTypeDockerConfig));
  EXPECT_TRUE(IsConfigMediaType(kMediaTypeOciConfig));
  EXPECT_FALSE(IsConfigMediaType("application/vnd.cncf.helm.config.v1+json"));
}

TEST(MediaTypeTest, ClassifyLayers) {
  struct Case {
    std::string_view mt;
    LayerCompression compression;
    bool non_distributable;
  };
  const Case cases[] = {
      {kMediaTypeDockerLayerGzip, LayerCompression::kGzip, false},
      {kMediaTypeDockerLayer, LayerCompression::kNone, false},
      {kMediaTypeDockerLayerForeignGzip, LayerCompression::kGzip, true},
      {kMediaTypeDockerLayerForeign, LayerCompression::kNone, true},
      {kMediaTypeOciLayer, LayerCompression::kNone, false},
      {kMediaTypeOciLayerGzip, LayerCompression::kGzip, false},
      {kMediaTypeOciLayerZstd, LayerCompression::kZstd, false},
      {kMediaTypeOciLayerNondistributable, LayerCompression::kNone, true},
      {kMediaTypeOciLayerNondistributableGzip, LayerCompression::kGzip, true},
      {kMediaTypeOciLayerNondistributableZstd, LayerCompression::kZstd, true},
  };
  for (const Case& c : cases) {
    StatusOr<LayerMediaType> t = ClassifyLayerMediaType(c.mt);
    ASSERT_TRUE(t.ok()) << c.mt;
    EXPECT_EQ(t->compression, c.compression) << c.mt;
    EXPECT_EQ(t->non_distributable, c.non_distributable) << c.mt;
  }
  EXPECT_EQ(kMediaTypeDockerLayerGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip");
  EXPECT_EQ(kMediaTypeOciLayerZstd, "application/vnd.oci.image.layer.v1.tar+zstd");
  StatusOr<LayerMediaType> bad = ClassifyLayerMediaType("application/vnd.in-toto+json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status().message(), "application/vnd.in-toto+json"));
}

TEST(DetectKindTest, ByContentType) {
  std::string oci_index = MakeIndex({IndexEntry(kHexA, "linux", "amd64")});
  std::string oci_index_no_mt = MakeIndex({IndexEntry(kHexA, "linux", "amd64")}, "");
  struct Case {
    std::string header;
    std::string body;
    ManifestKind want;
  };
  const Case cases[] = {
      {std::string(kMediaTypeDockerManifest), kDockerManifest, ManifestKind::kDockerManifest},
      {std::string(kMediaTypeDockerManifestList), kDockerList, ManifestKind::kDockerManifestList},
      {std::string(kMediaTypeOciManifest), kOciManifest, ManifestKind::kOciManifest},
      {std::string(kMediaTypeOciIndex), oci_index, ManifestKind::kOciIndex},
      // Body without mediaType, header decides.
      {std::string(kMediaTypeOciIndex), oci_index_no_mt, ManifestKind::kOciIndex},
      {std::string(kMediaTypeOciManifest), kOciManifestNoMediaType, ManifestKind::kOciManifest},
      // Parameters and case in the header are ignored.
      {"Application/VND.oci.image.manifest.v1+json; charset=utf-8", kOciManifest,
       ManifestKind::kOciManifest},
  };
  for (const Case& c : cases) {
    StatusOr<ManifestKind> k = DetectKind(c.header, c.body);
    ASSERT_TRUE(k.ok()) << c.header << ": " << k.status();
    EXPECT_EQ(*k, c.want) << c.header;
  }
}

TEST(DetectKindTest, FallsBackToBody) {
  std::string oci_index_no_mt = MakeIndex({IndexEntry(kHexA, "linux", "amd64")}, "");
  for (std::string header : {"", "application/json", "text/plain", "application/octet-stream"}) {
    StatusOr<ManifestKind> k = DetectKind(header, kDockerManifest);
    ASSERT_TRUE(k.ok()) << k.status();
    EXPECT_EQ(*k, ManifestKind::kDockerManifest);
    k = DetectKind(header, kDockerList);
    ASSERT_TRUE(k.ok()) << k.status();
    EXPECT_EQ(*k, ManifestKind::kDockerManifestList);
    k = DetectKind(header, kOciManifestNoMediaType);
    ASSERT_TRUE(k.ok()) << k.status();
    EXPECT_EQ(*k, ManifestKind::kOciManifest);
    k = DetectKind(header, oci_index_no_mt);
    ASSERT_TRUE(k.ok()) << k.status();
    EXPECT_EQ(*k, ManifestKind::kOciIndex);
  }
}

TEST(DetectKindTest, SchemaOneIsUnimplemented) {
  const std::string schema1 = R"({"schemaVersion": 1, "name": "library/busybox", "tag": "latest",
                                  "fsLayers": [], "history": []})";
  for (const std::string& header :
       {std::string(kMediaTypeDockerSchema1SignedManifest),
        std::string(kMediaTypeDockerSchema1Manifest), std::string("")}) {
    StatusOr<ManifestKind> k = DetectKind(header, schema1);
    ASSERT_FALSE(k.ok()) << header;
    EXPECT_EQ(k.status().code(), StatusCode::kUnimplemented) << header;
    EXPECT_TRUE(Contains(k.status().message(), "schema 1 manifests are not supported"))
        << k.status().message();
  }
  // Also when the header says so even if the body is unparseable.
  StatusOr<ManifestKind> k = DetectKind(kMediaTypeDockerSchema1SignedManifest, "not json");
  EXPECT_EQ(k.status().code(), StatusCode::kUnimplemented);
  // ParseManifest refuses too.
  StatusOr<ImageManifest> m = ParseManifest(schema1);
  EXPECT_EQ(m.status().code(), StatusCode::kUnimplemented);
}

TEST(DetectKindTest, RejectsContradictionsAndGarbage) {
  // Header says manifest, body says index.
  StatusOr<ManifestKind> k = DetectKind(kMediaTypeOciManifest, kDockerList);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(k.status().message(), "mediaType"));
  // Header says index, body (without mediaType) is a manifest.
  k = DetectKind(kMediaTypeOciIndex, kOciManifestNoMediaType);
  ASSERT_FALSE(k.ok());
  EXPECT_TRUE(Contains(k.status().message(), "expected an index"));
  // A body that is both.
  std::string both = R"({"schemaVersion": 2, "manifests": [], "layers": []})";
  k = DetectKind("", both);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
  // Nothing to go on.
  k = DetectKind("application/json", R"({"schemaVersion": 2})");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
  // Unknown body mediaType.
  k = DetectKind("", R"({"schemaVersion": 2, "mediaType": "text/html"})");
  ASSERT_FALSE(k.ok());
  EXPECT_TRUE(Contains(k.status().message(), "text/html"));
  // Not JSON: DATA_LOSS naming the digest of the body.
  k = DetectKind(kMediaTypeOciManifest, "<html>");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(k.status().message(), Sha256::Of("<html>").str())) << k.status();
}

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(ParseManifestTest, DockerManifest) {
  StatusOr<ImageManifest> m = ParseManifest(kDockerManifest);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, Sha256::Of(kDockerManifest));
  EXPECT_EQ(m->schema_version, 2);
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(m->config.media_type, kMediaTypeDockerConfig);
  EXPECT_EQ(m->config.digest.hex(), kHexA);
  EXPECT_EQ(m->config.size, 1469);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].media_type, kMediaTypeDockerLayerGzip);
  EXPECT_EQ(m->layers[0].digest.hex(), kHexB);
  EXPECT_EQ(m->layers[0].size, 772788);
  EXPECT_TRUE(m->layers[0].urls.empty());
  EXPECT_EQ(m->layers[1].urls, std::vector<std::string>{"https://example.invalid/layer"});
  EXPECT_FALSE(m->subject.has_value());
  EXPECT_TRUE(ValidateImageManifest(*m).ok());
}

TEST(ParseManifestTest, OciManifest) {
  StatusOr<ImageManifest> m = ParseManifest(kOciManifest);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->config.media_type, kMediaTypeOciConfig);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].media_type, kMediaTypeOciLayerZstd);
  EXPECT_EQ(m->layers[0].annotations.at("org.opencontainers.image.title"), "layer.tar.zst");
  EXPECT_EQ(m->annotations.at("org.opencontainers.image.created"), "2024-01-01T00:00:00Z");
  EXPECT_TRUE(ValidateImageManifest(*m).ok());

  StatusOr<ImageManifest> bare = ParseManifest(kOciManifestNoMediaType);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->media_type, "");
  EXPECT_TRUE(bare->layers.empty());
}

TEST(ParseManifestTest, SubjectDescriptor) {
  std::string body = R"({"schemaVersion": 2,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
               "digest": "sha256:)" +
                     kHexA + R"("},
    "layers": [],
    "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7,
                "digest": "sha256:)" +
                     kHexC + R"("}})";
  StatusOr<ImageManifest> m = ParseManifest(body);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->digest.hex(), kHexC);
}

TEST(ParseManifestTest, InvalidManifests) {
  std::string config = R"("config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                     "size": 2, "digest": "sha256:)" +
                       kHexA + R"("})";
  struct Case {
    std::string body;
    std::string message_part;
  };
  const Case cases[] = {
      {R"({"config": {}, "layers": []})", "schemaVersion"},
      {R"({"schemaVersion": 3, )" + config + R"(, "layers": []})", "unsupported schemaVersion 3"},
      {R"({"schemaVersion": "2", )" + config + R"(, "layers": []})", "must be an integer"},
      {R"({"schemaVersion": 2, "layers": []})", "\"config\" is missing"},
      {R"({"schemaVersion": 2, )" + config + "}", "\"layers\" is missing"},
      {R"({"schemaVersion": 2, )" + config + R"(, "layers": {}})", "must be an array"},
      {R"({"schemaVersion": 2, )" + config + R"(, "layers": [], "manifests": []})",
       "expected a manifest"},
      {R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", )" + config +
           R"(, "layers": []})",
       "not a manifest type"},
      {R"({"schemaVersion": 2, )" + config + R"(, "layers": [{"mediaType": "x", "size": 1}]})",
       "layers[0]: required field \"digest\" is missing"},
      {R"({"schemaVersion": 2, )" + config +
           R"(, "layers": [{"mediaType": "x", "size": 1, "digest": "sha256:zz"}]})",
       "layers[0]"},
      {R"({"schemaVersion": 2, )" + config +
           R"(, "layers": [{"mediaType": "x", "size": -1, "digest": "sha256:)" + kHexB + R"("}]})",
       "negative"},
      {R"({"schemaVersion": 2, )" + config +
           R"(, "layers": [{"mediaType": "x", "size": 1.5, "digest": "sha256:)" + kHexB + R"("}]})",
       "must be an integer"},
      {R"({"schemaVersion": 2, )" + config + R"(, "layers": [{"size": 1, "digest": "sha256:)" +
           kHexB + R"("}]})",
       "\"mediaType\" is missing"},
      {R"({"schemaVersion": 2, )" + config +
           R"(, "layers": [{"mediaType": "x", "size": 1, "digest": "sha256:)" + kHexB +
           R"(", "annotations": {"a": 1}}]})",
       "must be a string"},
      {R"([1, 2, 3])", "not an object"},
  };
  for (const Case& c : cases) {
    StatusOr<ImageManifest> m = ParseManifest(c.body);
    ASSERT_FALSE(m.ok()) << c.body;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << c.body << m.status();
    EXPECT_TRUE(Contains(m.status().message(), c.message_part))
        << c.message_part << " not in: " << m.status().message();
    EXPECT_TRUE(Contains(m.status().message(), Sha256::Of(c.body).str())) << m.status();
  }
  StatusOr<ImageManifest> m = ParseManifest("{\"schemaVersion\": 2,");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
  m = ParseManifest("");
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
}

TEST(ParseManifestTest, ValidateImageManifestRejectsArtifacts) {
  std::string body = R"({"schemaVersion": 2,
    "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "size": 2,
               "digest": "sha256:)" +
                     kHexA + R"("},
    "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "size": 3,
                "digest": "sha256:)" +
                     kHexB + R"("}]})";
  StatusOr<ImageManifest> m = ParseManifest(body);
  ASSERT_TRUE(m.ok()) << m.status();
  Status s = ValidateImageManifest(*m);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "helm.config")) << s;
  EXPECT_TRUE(Contains(s.message(), m->digest.str())) << s;

  m->config.media_type = std::string(kMediaTypeOciConfig);
  s = ValidateImageManifest(*m);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "layers[0]")) << s;
  EXPECT_TRUE(Contains(s.message(), "helm.chart")) << s;
}

TEST(ParseIndexTest, DockerList) {
  StatusOr<ImageIndex> idx = ParseIndex(kDockerList);
  ASSERT_TRUE(idx.ok()) << idx.status();
  EXPECT_EQ(idx->digest, Sha256::Of(kDockerList));
  EXPECT_EQ(idx->media_type, kMediaTypeDockerManifestList);
  ASSERT_EQ(idx->manifests.size(), 3u);
  ASSERT_TRUE(idx->manifests[1].platform.has_value());
  EXPECT_EQ(idx->manifests[1].platform->os, "linux");
  EXPECT_EQ(idx->manifests[1].platform->architecture, "arm64");
  EXPECT_EQ(idx->manifests[1].platform->variant, "v8");
  EXPECT_EQ(idx->manifests[1].digest.hex(), kHexB);
  EXPECT_EQ(idx->manifests[2].platform->os_version, "10.0.17763.1");
  EXPECT_EQ(idx->manifests[0].media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(idx->manifests[0].size, 527);
}

TEST(ParseIndexTest, OciIndexWithAnnotationsAndNoPlatform) {
  std::string body = R"({"schemaVersion": 2, "manifests": [
      {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 9,
       "digest": "sha256:)" +
                     kHexA + R"(", "annotations": {"org.opencontainers.image.ref.name": "v1"}}],
      "annotations": {"k": "v"}})";
  StatusOr<ImageIndex> idx = ParseIndex(body);
  ASSERT_TRUE(idx.ok()) << idx.status();
  EXPECT_EQ(idx->media_type, "");
  ASSERT_EQ(idx->manifests.size(), 1u);
  EXPECT_FALSE(idx->manifests[0].platform.has_value());
  EXPECT_EQ(idx->manifests[0].annotations.at("org.opencontainers.image.ref.name"), "v1");
  EXPECT_EQ(idx->annotations.at("k"), "v");
}

TEST(ParseIndexTest, InvalidIndexes) {
  struct Case {
    std::string body;
    std::string message_part;
  };
  const Case cases[] = {
      {R"({"schemaVersion": 2})", "\"manifests\" is missing"},
      {R"({"schemaVersion": 2, "manifests": "x"})", "must be an array"},
      {R"({"schemaVersion": 2, "manifests": [], "layers": []})", "expected an index"},
      {R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "manifests": []})",
       "not an index type"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "m", "size": 1,
           "digest": "sha256:)" +
           kHexA + R"(", "platform": {"os": "linux"}}]})",
       "manifests[0]: required field \"architecture\" is missing"},
      {R"({"schemaVersion": 2, "manifests": [{"mediaType": "m", "size": 1,
           "digest": "sha256:)" +
           kHexA + R"(", "platform": "linux/amd64"}]})",
       "\"platform\" must be an object"},
      {R"({"schemaVersion": 2, "manifests": [7]})", "manifests[0]: descriptor must be an object"},
  };
  for (const Case& c : cases) {
    StatusOr<ImageIndex> idx = ParseIndex(c.body);
    ASSERT_FALSE(idx.ok()) << c.body;
    EXPECT_EQ(idx.status().code(), StatusCode::kInvalidArgument) << idx.status();
    EXPECT_TRUE(Contains(idx.status().message(), c.message_part))
        << c.message_part << " not in: " << idx.status().message();
    EXPECT_TRUE(Contains(idx.status().message(), "index sha256:")) << idx.status();
  }
  EXPECT_EQ(ParseIndex("nope").status().code(), StatusCode::kDataLoss);
}

const std::string kConfig = R"({
  "architecture": "amd64",
  "os": "linux",
  "created": "2023-05-19T20:19:21.000000000Z",
  "config": {
    "User": "1000:1000",
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=b=c"],
    "Entrypoint": ["/entry.sh"],
    "Cmd": ["sh", "-c", "echo hi"],
    "WorkingDir": "/work",
    "Labels": {"maintainer": "someone", "version": "1"},
    "StopSignal": "SIGQUIT",
    "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
    "Volumes": {"/data": {}, "/cache": {}}
  },
  "rootfs": {
    "type": "layers",
    "diff_ids": ["sha256:)" +
                            kHexB + R"(", "sha256:)" + kHexC + R"("]
  },
  "history": [
    {"created": "2023-05-19T20:19:20Z", "created_by": "ADD file"},
    {"created": "2023-05-19T20:19:21Z", "created_by": "CMD", "empty_layer": true},
    {"created": "2023-05-19T20:19:21Z", "created_by": "RUN x"}
  ]
})";

TEST(ParseImageConfigTest, FullConfig) {
  StatusOr<ImageConfig> c = ParseImageConfig(kConfig);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->digest, Sha256::Of(kConfig));
  EXPECT_EQ(c->raw, kConfig);
  EXPECT_EQ(c->architecture, "amd64");
  EXPECT_EQ(c->os, "linux");
  EXPECT_EQ(c->variant, "");
  EXPECT_EQ(c->created, "2023-05-19T20:19:21.000000000Z");
  EXPECT_EQ(c->config.user, "1000:1000");
  EXPECT_EQ(c->config.env,
            (std::vector<std::string>{
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=b=c"}));
  EXPECT_EQ(c->config.entrypoint, std::vector<std::string>{"/entry.sh"});
  EXPECT_EQ(c->config.cmd, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_EQ(c->config.working_dir, "/work");
  EXPECT_EQ(c->config.labels.size(), 2u);
  EXPECT_EQ(c->config.labels.at("maintainer"), "someone");
  EXPECT_EQ(c->config.stop_signal, "SIGQUIT");
  EXPECT_EQ(c->config.exposed_ports, (std::vector<std::string>{"53/udp", "8080/tcp"}));
  EXPECT_EQ(c->config.volumes, (std::vector<std::string>{"/cache", "/data"}));
  ASSERT_EQ(c->diff_ids.size(), 2u);
  EXPECT_EQ(c->diff_ids[0].hex(), kHexB);
  EXPECT_EQ(c->diff_ids[1].hex(), kHexC);
  EXPECT_EQ(c->history_count, 3u);
}

TEST(ParseImageConfigTest, MinimalConfigWithNulls) {
  const std::string body = R"({"architecture": "arm64", "variant": "v8", "os": "linux",
    "config": {"Entrypoint": null, "Cmd": null, "Env": null, "Labels": null,
               "ExposedPorts": null, "Volumes": null, "User": ""},
    "rootfs": {"type": "layers", "diff_ids": []}})";
  StatusOr<ImageConfig> c = ParseImageConfig(body);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->variant, "v8");
  EXPECT_TRUE(c->config.entrypoint.empty());
  EXPECT_TRUE(c->config.cmd.empty());
  EXPECT_TRUE(c->config.labels.empty());
  EXPECT_TRUE(c->diff_ids.empty());
  EXPECT_EQ(c->history_count, 0u);
  EXPECT_EQ(c->created, "");

  StatusOr<ImageConfig> no_config =
      ParseImageConfig(R"({"rootfs": {"type": "layers", "diff_ids": []}, "config": null})");
  ASSERT_TRUE(no_config.ok()) << no_config.status();
}

TEST(ParseImageConfigTest, InvalidConfigs) {
  std::string rootfs = R"("rootfs": {"type": "layers", "diff_ids": []})";
  struct Case {
    std::string body;
    std::string message_part;
  };
  const Case cases[] = {
      {R"({"os": "linux"})", "\"rootfs\" is missing"},
      {R"({"rootfs": []})", "\"rootfs\" must be an object"},
      {R"({"rootfs": {"type": "zip", "diff_ids": []}})", "want \"layers\""},
      {R"({"rootfs": {"diff_ids": []}})", "\"type\" is missing"},
      {R"({"rootfs": {"type": "layers"}})", "\"diff_ids\" is missing"},
      {R"({"rootfs": {"type": "layers", "diff_ids": [1]}})", "diff_ids[0] must be a string"},
      {R"({"rootfs": {"type": "layers", "diff_ids": ["sha256:)" + kHexA + R"(", "md5:x"]}})",
       "diff_ids[1]"},
      {R"({"config": {"Cmd": "echo hi"}, )" + rootfs + "}",
       "config: field \"Cmd\" must be an array"},
      {R"({"config": {"Env": ["A=1", 2]}, )" + rootfs + "}", "must hold only strings"},
      {R"({"config": {"User": 0}, )" + rootfs + "}", "\"User\" must be a string"},
      {R"({"config": {"Labels": {"a": 1}}, )" + rootfs + "}", "\"Labels\" value of \"a\""},
      {R"({"config": {"ExposedPorts": ["80/tcp"]}, )" + rootfs + "}",
       "\"ExposedPorts\" must be an object"},
      {R"({"config": "x", )" + rootfs + "}", "\"config\" must be an object"},
      {R"({"architecture": 5, )" + rootfs + "}", "\"architecture\" must be a string"},
      {R"({"history": {}, )" + rootfs + "}", "\"history\" must be an array"},
  };
  for (const Case& c : cases) {
    StatusOr<ImageConfig> cfg = ParseImageConfig(c.body);
    ASSERT_FALSE(cfg.ok()) << c.body;
    EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument) << cfg.status();
    EXPECT_TRUE(Contains(cfg.status().message(), c.message_part))
        << c.message_part << " not in: " << cfg.status().message();
    EXPECT_TRUE(Contains(cfg.status().message(), "image config " + Sha256::Of(c.body).str()))
        << cfg.status();
  }
  EXPECT_EQ(ParseImageConfig("{").status().code(), StatusCode::kDataLoss);
}

TEST(ValidateTest, ManifestAgainstConfig) {
  StatusOr<ImageConfig> cfg = ParseImageConfig(kConfig);
  ASSERT_TRUE(cfg.ok());
  ImageManifest m;
  m.digest = Sha256::Of("m");
  m.config.media_type = std::string(kMediaTypeOciConfig);
  m.config.digest = cfg->digest;
  Descriptor layer;
  layer.media_type = std::string(kMediaTypeOciLayerGzip);
  layer.digest = Digest::FromHex(kHexA);
  m.layers = {layer, layer};
  EXPECT_TRUE(ValidateManifestAgainstConfig(m, *cfg).ok());

  m.layers.push_back(layer);
  Status s = ValidateManifestAgainstConfig(m, *cfg);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "3 layers")) << s;
  EXPECT_TRUE(Contains(s.message(), "2 diff_ids")) << s;
  EXPECT_TRUE(Contains(s.message(), cfg->digest.str())) << s;
  EXPECT_TRUE(Contains(s.message(), m.digest.str())) << s;

  m.layers.pop_back();
  m.config.digest = Digest::FromHex(kHexC);
  s = ValidateManifestAgainstConfig(m, *cfg);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), kHexC)) << s;
}

// ---------------------------------------------------------------------------------------------
// Platforms

TEST(PlatformTest, ForMachine) {
  struct Case {
    std::string machine;
    Platform want;
  };
  const Case cases[] = {
      {"x86_64", {"linux", "amd64", "", ""}},    {"aarch64", {"linux", "arm64", "v8", ""}},
      {"arm64", {"linux", "arm64", "v8", ""}},   {"armv7l", {"linux", "arm", "v7", ""}},
      {"armv6l", {"linux", "arm", "v6", ""}},    {"armv5tel", {"linux", "arm", "v5", ""}},
      {"i686", {"linux", "386", "", ""}},        {"i386", {"linux", "386", "", ""}},
      {"ppc64le", {"linux", "ppc64le", "", ""}}, {"s390x", {"linux", "s390x", "", ""}},
      {"riscv64", {"linux", "riscv64", "", ""}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PlatformForMachine(c.machine), c.want)
        << c.machine << " -> " << PlatformForMachine(c.machine).String();
  }
}

TEST(PlatformTest, HostIsLinuxAmd64OnTheseMachines) {
  Platform host = HostPlatform();
  EXPECT_EQ(host.os, "linux");
#if defined(__x86_64__)
  EXPECT_EQ(host.architecture, "amd64");
  EXPECT_EQ(host.variant, "");
  EXPECT_EQ(host.String(), "linux/amd64");
#endif
}

TEST(PlatformTest, NormalizeAndParse) {
  EXPECT_EQ(NormalizePlatform({"Linux", "x86_64", "v1", ""}), (Platform{"linux", "amd64", "", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "aarch64", "8", ""}),
            (Platform{"linux", "arm64", "v8", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "armhf", "", ""}), (Platform{"linux", "arm", "v7", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "armel", "", ""}), (Platform{"linux", "arm", "v6", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "arm", "", ""}), (Platform{"linux", "arm", "v7", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "arm", "6", ""}), (Platform{"linux", "arm", "v6", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "i686", "", ""}), (Platform{"linux", "386", "", ""}));
  EXPECT_EQ(NormalizePlatform({"macos", "arm64", "", ""}), (Platform{"darwin", "arm64", "", ""}));

  StatusOr<Platform> p = ParsePlatform("linux/arm64/v8");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, (Platform{"linux", "arm64", "v8", ""}));
  EXPECT_EQ(p->String(), "linux/arm64/v8");
  p = ParsePlatform("linux/x86_64");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->String(), "linux/amd64");
  for (std::string bad : {"", "linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"}) {
    StatusOr<Platform> b = ParsePlatform(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(b.status().message(), "\"" + bad + "\"")) << b.status();
  }
}

TEST(PlatformTest, Matches) {
  EXPECT_TRUE(PlatformMatches({"linux", "amd64", "", ""}, {"linux", "x86_64", "", ""}));
  EXPECT_FALSE(PlatformMatches({"linux", "amd64", "", ""}, {"windows", "amd64", "", ""}));
  EXPECT_FALSE(PlatformMatches({"linux", "amd64", "", ""}, {"linux", "386", "", ""}));
  EXPECT_FALSE(PlatformMatches({"linux", "amd64", "", ""}, {"linux", "amd64", "v2", ""}));
  EXPECT_TRUE(PlatformMatches({"linux", "amd64", "v3", ""}, {"linux", "amd64", "v2", ""}));
  EXPECT_TRUE(PlatformMatches({"linux", "amd64", "v3", ""}, {"linux", "amd64", "", ""}));
  EXPECT_TRUE(PlatformMatches({"linux", "arm64", "v8", ""}, {"linux", "arm64", "", ""}));
  EXPECT_TRUE(PlatformMatches({"linux", "arm64", "", ""}, {"linux", "arm64", "v8", ""}));
  EXPECT_FALSE(PlatformMatches({"linux", "arm64", "v8", ""}, {"linux", "arm", "v7", ""}));
  EXPECT_TRUE(PlatformMatches({"linux", "arm", "v7", ""}, {"linux", "arm", "v5", ""}));
  EXPECT_FALSE(PlatformMatches({"linux", "arm", "v6", ""}, {"linux", "arm", "v7", ""}));
  EXPECT_FALSE(PlatformMatches({"linux", "ppc64le", "", ""}, {"linux", "ppc64le", "power9", ""}));
}

std::string HexOf(char c) { return std::string(64, c); }

Digest SelectedDigest(const std::string& index_body, const Platform& want) {
  StatusOr<ImageIndex> idx = ParseIndex(index_body);
  EXPECT_TRUE(idx.ok()) << idx.status();
  if (!idx.ok()) return Digest::FromHex("");
  std::optional<Descriptor> d = SelectPlatform(*idx, want);
  return d ? d->digest : Digest::FromHex("none");
}

TEST(SelectPlatformTest, PicksOsAndArchitecture) {
  StatusOr<ImageIndex> idx = ParseIndex(kDockerList);
  ASSERT_TRUE(idx.ok());
  std::optional<Descriptor> d = SelectPlatform(*idx, {"linux", "amd64", "", ""});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->digest.hex(), kHexA);
  d = SelectPlatform(*idx, {"linux", "arm64", "v8", ""});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->digest.hex(), kHexB);
  d = SelectPlatform(*idx, {"windows", "amd64", "", ""});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->digest.hex(), kHexC);
  EXPECT_FALSE(SelectPlatform(*idx, {"linux", "s390x", "", ""}).has_value());
  EXPECT_FALSE(SelectPlatform(*idx, {"linux", "386", "", ""}).has_value());
  // The host platform is found in an index that has it.
  EXPECT_TRUE(SelectPlatform(*idx, HostPlatform()).has_value());
}

TEST(SelectPlatformTest, ArmVariants) {
  std::string body = MakeIndex({
      IndexEntry(HexOf('1'), "linux", "arm", "v5"),
      IndexEntry(HexOf('2'), "linux", "arm", "v6"),
      IndexEntry(HexOf('3'), "linux", "arm", "v7"),
      IndexEntry(HexOf('4'), "linux", "arm64", "v8"),
  });
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm", "v7", ""}).hex(), HexOf('3'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm", "", ""}).hex(), HexOf('3'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm", "v6", ""}).hex(), HexOf('2'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm", "v5", ""}).hex(), HexOf('1'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm64", "v8", ""}).hex(), HexOf('4'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "aarch64", "", ""}).hex(), HexOf('4'));

  // v7 wanted but only v5 and v6 offered: v6 is closer, whatever the order.
  std::string older = MakeIndex({
      IndexEntry(HexOf('1'), "linux", "arm", "v5"),
      IndexEntry(HexOf('2'), "linux", "arm", "v6"),
  });
  EXPECT_EQ(SelectedDigest(older, {"linux", "arm", "v7", ""}).hex(), HexOf('2'));
  std::string only_v5 = MakeIndex({IndexEntry(HexOf('1'), "linux", "arm", "v5")});
  EXPECT_EQ(SelectedDigest(only_v5, {"linux", "arm", "v7", ""}).hex(), HexOf('1'));
  // Newer variants never run on older cores.
  std::string only_v7 = MakeIndex({IndexEntry(HexOf('3'), "linux", "arm", "v7")});
  EXPECT_EQ(SelectedDigest(only_v7, {"linux", "arm", "v6", ""}).hex(), "none");
}

TEST(SelectPlatformTest, Arm64DefaultVariantMatchesEmpty) {
  std::string body = MakeIndex({
      IndexEntry(HexOf('1'), "linux", "amd64"),
      IndexEntry(HexOf('2'), "linux", "arm64"),
  });
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm64", "v8", ""}).hex(), HexOf('2'));
  EXPECT_EQ(SelectedDigest(body, PlatformForMachine("aarch64")).hex(), HexOf('2'));
}

TEST(SelectPlatformTest, ExactVariantBeatsEarlierCompatibleOne) {
  std::string body = MakeIndex({
      IndexEntry(HexOf('1'), "linux", "amd64"),
      IndexEntry(HexOf('2'), "linux", "amd64", "v3"),
  });
  EXPECT_EQ(SelectedDigest(body, {"linux", "amd64", "v3", ""}).hex(), HexOf('2'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "amd64", "v2", ""}).hex(), HexOf('1'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "amd64", "", ""}).hex(), HexOf('1'));
}

TEST(SelectPlatformTest, IndexOrderBreaksTies) {
  std::string body = MakeIndex({
      IndexEntry(HexOf('1'), "linux", "amd64"),
      IndexEntry(HexOf('2'), "linux", "amd64"),
      IndexEntry(HexOf('3'), "linux", "amd64", "v1"),
  });
  EXPECT_EQ(SelectedDigest(body, {"linux", "amd64", "", ""}).hex(), HexOf('1'));
}

TEST(SelectPlatformTest, SkipsAttestations) {
  // BuildKit puts attestation manifests next to the images, as unknown/unknown.
  std::string attestation_annotation =
      R"(, "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                           "vnd.docker.reference.digest": "sha256:)" +
      HexOf('1') + R"("})";
  std::string body = MakeIndex({
      IndexEntry(HexOf('9'), "unknown", "unknown", "", attestation_annotation),
      IndexEntry(HexOf('8'), "unknown", "unknown"),
      IndexEntry(HexOf('1'), "linux", "amd64"),
  });
  EXPECT_EQ(SelectedDigest(body, {"linux", "amd64", "", ""}).hex(), HexOf('1'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm64", "", ""}).hex(), "none");
  EXPECT_EQ(SelectedDigest(body, {"unknown", "unknown", "", ""}).hex(), "none");

  // An attestation marked only by annotation, with a real-looking platform, is skipped too.
  std::string marked = MakeIndex({
      IndexEntry(HexOf('7'), "linux", "amd64", "", attestation_annotation),
      IndexEntry(HexOf('1'), "linux", "amd64"),
  });
  EXPECT_EQ(SelectedDigest(marked, {"linux", "amd64", "", ""}).hex(), HexOf('1'));
}

TEST(SelectPlatformTest, EntriesWithoutPlatformComeLast) {
  std::string no_platform =
      R"({"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:)" +
      HexOf('5') + R"("})";
  std::string body = MakeIndex({no_platform, IndexEntry(HexOf('1'), "linux", "amd64")});
  EXPECT_EQ(SelectedDigest(body, {"linux", "amd64", "", ""}).hex(), HexOf('1'));
  EXPECT_EQ(SelectedDigest(body, {"linux", "arm64", "", ""}).hex(), HexOf('5'));
  EXPECT_EQ(SelectedDigest(MakeIndex({}), {"linux", "amd64", "", ""}).hex(), "none");
}

// ---------------------------------------------------------------------------------------------
// Chain IDs

TEST(ChainIdTest, KnownValues) {
  std::vector<Digest> diff_ids = {Sha256::Of("a"), Sha256::Of("b"), Sha256::Of("c")};
  ASSERT_EQ(diff_ids[0].hex(), kHexA);
  ASSERT_EQ(diff_ids[1].hex(), kHexB);
  ASSERT_EQ(diff_ids[2].hex(), kHexC);

  // ChainID(L0) = DiffID(L0).
  EXPECT_EQ(ChainId({diff_ids[0]}), diff_ids[0]);

  // Computed independently with sha256sum:
  //   printf 'sha256:<a> sha256:<b>' | sha256sum, then with c.
  const std::string chain1 = "51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676";
  const std::string chain2 = "2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106";
  EXPECT_EQ(ChainId({diff_ids[0], diff_ids[1]}).hex(), chain1);
  EXPECT_EQ(ChainId(diff_ids).hex(), chain2);

  // And by the definition, with the hasher.
  Digest c1 = Sha256::Of("sha256:" + kHexA + " sha256:" + kHexB);
  Digest c2 = Sha256::Of(c1.str() + " sha256:" + kHexC);
  EXPECT_EQ(c1.hex(), chain1);
  EXPECT_EQ(c2.hex(), chain2);

  std::vector<Digest> all = ChainIds(diff_ids);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], diff_ids[0]);
  EXPECT_EQ(all[1], c1);
  EXPECT_EQ(all[2], c2);

  EXPECT_EQ(ChainId({}).hex(), "");
  EXPECT_TRUE(ChainIds({}).empty());
}

TEST(ChainIdTest, OrderMatters) {
  EXPECT_NE(ChainId({Sha256::Of("a"), Sha256::Of("b")}),
            ChainId({Sha256::Of("b"), Sha256::Of("a")}));
}

// ---------------------------------------------------------------------------------------------
// User

TEST(ImageUserTest, CriRules) {
  EXPECT_EQ(ParseImageUser(""), (ImageUser{std::nullopt, ""}));
  EXPECT_EQ(ParseImageUser("123"), (ImageUser{123, ""}));
  EXPECT_EQ(ParseImageUser("0"), (ImageUser{0, ""}));
  EXPECT_EQ(ParseImageUser("123:456"), (ImageUser{123, ""}));
  EXPECT_EQ(ParseImageUser("123:grp"), (ImageUser{123, ""}));
  EXPECT_EQ(ParseImageUser("nobody"), (ImageUser{std::nullopt, "nobody"}));
  EXPECT_EQ(ParseImageUser("nobody:grp"), (ImageUser{std::nullopt, "nobody"}));
  EXPECT_EQ(ParseImageUser("nobody:65534"), (ImageUser{std::nullopt, "nobody"}));
  EXPECT_EQ(ParseImageUser(":456"), (ImageUser{std::nullopt, ""}));
  EXPECT_EQ(ParseImageUser("1a"), (ImageUser{std::nullopt, "1a"}));
  // Too large for int64: treated as a name, as strconv.ParseInt failing would.
  EXPECT_EQ(ParseImageUser("99999999999999999999"),
            (ImageUser{std::nullopt, "99999999999999999999"}));
  StatusOr<ImageConfig> cfg = ParseImageConfig(kConfig);
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(ParseImageUser(cfg->config.user), (ImageUser{1000, ""}));
}

}  // namespace
}  // namespace berth::image
