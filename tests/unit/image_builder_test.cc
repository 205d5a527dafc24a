#include "support/image_builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <zlib.h>
#include <zstd.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"

namespace berth::testing {
namespace {

using nlohmann::json;

// `lhs` is a declaration ("auto x"): it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                                      \
  auto BERTH_CONCAT_(sor_, __LINE__) = (expr);                                               \
  ASSERT_TRUE(BERTH_CONCAT_(sor_, __LINE__).ok()) << BERTH_CONCAT_(sor_, __LINE__).status(); \
  lhs = std::move(BERTH_CONCAT_(sor_, __LINE__)).value()
// NOLINTEND(bugprone-macro-parentheses)

std::string Gunzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      ADD_FAILURE() << "inflate failed: " << rc;
      break;
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
  }
  EXPECT_EQ(zs.avail_in, 0u) << "trailing bytes after the gzip stream";
  inflateEnd(&zs);
  return out;
}

std::string Unzstd(const std::string& in) {
  unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  EXPECT_NE(size, ZSTD_CONTENTSIZE_ERROR);
  EXPECT_NE(size, ZSTD_CONTENTSIZE_UNKNOWN);
  std::string out(size, '\0');
  size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(n);
  return out;
}

std::string Decompress(const BuiltBlob& blob, Compression c) {
  switch (c) {
    case Compression::kNone:
      return blob.data;
    case Compression::kGzip:
      return Gunzip(blob.data);
    case Compression::kZstd:
      return Unzstd(blob.data);
  }
  return "";
}

struct TarEntry {
  std::string path;
  mode_t mode = 0;  // type + permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime = 0;
  std::string symlink;
  std::string hardlink;
  dev_t rdev = 0;
  std::string content;
  std::map<std::string, std::string> xattrs;
};

// Reads a tar stream with libarchive, independently of the writer's code path.
std::vector<TarEntry> ReadTar(const std::string& tar) {
  std::vector<TarEntry> entries;
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), tar.data(), tar.size()) != ARCHIVE_OK) {
    ADD_FAILURE() << "open tar: " << archive_error_string(a.get());
    return entries;
  }
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    TarEntry t;
    t.path = archive_entry_pathname(e);
    t.mode = archive_entry_mode(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.mtime = archive_entry_mtime(e);
    if (const char* s = archive_entry_symlink(e)) t.symlink = s;
    if (const char* h = archive_entry_hardlink(e)) t.hardlink = h;
    t.rdev = archive_entry_rdev(e);
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      t.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof(buf))) > 0) t.content.append(buf, n);
    EXPECT_GE(n, 0) << archive_error_string(a.get());
    entries.push_back(std::move(t));
  }
  EXPECT_EQ(rc, ARCHIVE_EOF) << archive_error_string(a.get());
  return entries;
}

const TarEntry* Find(const std::vector<TarEntry>& entries, const std::string& path) {
  for (const TarEntry& e : entries) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

const BuiltBlob* FindBlob(const std::vector<BuiltBlob>& blobs, const std::string& digest) {
  for (const BuiltBlob& b : blobs) {
    if (b.digest.str() == digest) return &b;
  }
  return nullptr;
}

LayerSpec SmallLayer(Compression c) {
  LayerSpec layer;
  layer.compression = c;
  layer.entries = {FileSpec::Dir("/etc"), FileSpec::File("/etc/hello", "hello world\n"),
                   FileSpec::Symlink("/etc/link", "hello")};
  return layer;
}

class LayerCompressionTest : public ::testing::TestWithParam<Compression> {};

TEST_P(LayerCompressionTest, DigestAndDiffIdMatchContent) {
  ASSERT_OK_AND_ASSIGN(BuiltLayer layer, BuildLayer(SmallLayer(GetParam()), MediaTypes::kOci));
  EXPECT_EQ(layer.blob.digest, Sha256::Of(layer.blob.data));
  std::string tar = Decompress(layer.blob, GetParam());
  EXPECT_EQ(tar, layer.tar);
  EXPECT_EQ(layer.diff_id, Sha256::Of(tar));
  if (GetParam() == Compression::kGzip) {
    ASSERT_GE(layer.blob.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(layer.blob.data[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(layer.blob.data[1]), 0x8b);
    EXPECT_EQ(layer.blob.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  } else if (GetParam() == Compression::kZstd) {
    EXPECT_EQ(layer.blob.data.substr(0, 4), std::string("\x28\xb5\x2f\xfd", 4));
    EXPECT_EQ(layer.blob.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  } else {
    EXPECT_EQ(layer.blob.digest, layer.diff_id);
    EXPECT_EQ(layer.blob.media_type, "application/vnd.oci.image.layer.v1.tar");
  }
  std::vector<TarEntry> entries = ReadTar(tar);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].path, "etc/");
  EXPECT_TRUE(S_ISDIR(entries[0].mode));
  EXPECT_EQ(entries[1].path, "etc/hello");
  EXPECT_EQ(entries[1].content, "hello world\n");
  EXPECT_EQ(entries[1].mode, S_IFREG | 0644);
  EXPECT_EQ(entries[1].mtime, kFixedMtime);
  EXPECT_EQ(entries[2].path, "etc/link");
  EXPECT_EQ(entries[2].symlink, "hello");
}

INSTANTIATE_TEST_SUITE_P(AllCompressions, LayerCompressionTest,
                         ::testing::Values(Compression::kNone, Compression::kGzip,
                                           Compression::kZstd));

TEST(ImageBuilderTest, OciManifestReferencesConfigAndLayersWithSizes) {
  ImageSpec spec;
  spec.media = MediaTypes::kOci;
  spec.layers = {SmallLayer(Compression::kNone), SmallLayer(Compression::kGzip),
                 SmallLayer(Compression::kZstd)};
  spec.layers[1].entries.push_back(FileSpec::File("second", "2"));
  spec.layers[2].entries.push_back(FileSpec::File("third", "3"));
  spec.user = "1234:1234";
  spec.env = {"A=1", "B=2"};
  spec.entrypoint = {"/bin/sh", "-c"};
  spec.cmd = {"echo hi"};
  spec.working_dir = "/tmp";
  spec.labels = {{"io.berth.test", "yes"}};
  spec.stop_signal = "SIGINT";
  spec.annotations = {{"org.opencontainers.image.title", "t"}};
  ASSERT_OK_AND_ASSIGN(BuiltImage image, BuildImage(spec));

  EXPECT_EQ(image.top.media_type, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(image.top.digest, Sha256::Of(image.top.data));
  EXPECT_TRUE(image.child_manifests.empty());
  ASSERT_EQ(image.blobs.size(), 4u);  // 3 layers + config
  json manifest = json::parse(image.top.data);
  EXPECT_EQ(manifest["schemaVersion"], 2);
  EXPECT_EQ(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(manifest["annotations"]["org.opencontainers.image.title"], "t");

  const json& config_desc = manifest["config"];
  EXPECT_EQ(config_desc["mediaType"], "application/vnd.oci.image.config.v1+json");
  EXPECT_EQ(config_desc["digest"], image.config_digest.str());
  const BuiltBlob* config_blob = FindBlob(image.blobs, config_desc["digest"]);
  ASSERT_NE(config_blob, nullptr);
  EXPECT_EQ(config_desc["size"], config_blob->size());
  EXPECT_EQ(config_blob->digest, Sha256::Of(config_blob->data));
  EXPECT_EQ(config_desc["mediaType"], config_blob->media_type);

  const Compression kinds[] = {Compression::kNone, Compression::kGzip, Compression::kZstd};
  const char* types[] = {"application/vnd.oci.image.layer.v1.tar",
                         "application/vnd.oci.image.layer.v1.tar+gzip",
                         "application/vnd.oci.image.layer.v1.tar+zstd"};
  json config = json::parse(config_blob->data);
  ASSERT_EQ(manifest["layers"].size(), 3u);
  ASSERT_EQ(config["rootfs"]["diff_ids"].size(), 3u);
  ASSERT_EQ(image.diff_ids.size(), 3u);
  std::vector<std::string> diff_ids;
  for (size_t i = 0; i < 3; ++i) {
    const json& desc = manifest["layers"][i];
    EXPECT_EQ(desc["mediaType"], types[i]);
    const BuiltBlob* layer = FindBlob(image.blobs, desc["digest"]);
    ASSERT_NE(layer, nullptr) << desc;
    EXPECT_EQ(desc["size"], layer->size());
    EXPECT_EQ(layer->digest, Sha256::Of(layer->data));
    EXPECT_EQ(image.layer_digests[i], layer->digest);
    Digest diff_id = Sha256::Of(Decompress(*layer, kinds[i]));
    EXPECT_EQ(config["rootfs"]["diff_ids"][i], diff_id.str());
    EXPECT_EQ(image.diff_ids[i], diff_id);
  }
  EXPECT_EQ(config["rootfs"]["type"], "layers");
  EXPECT_EQ(config["architecture"], "amd64");
  EXPECT_EQ(config["os"], "linux");
  EXPECT_EQ(config["history"].size(), 3u);
  const json& c = config["config"];
  EXPECT_EQ(c["User"], "1234:1234");
  EXPECT_EQ(c["Env"], json({"A=1", "B=2"}));
  EXPECT_EQ(c["Entrypoint"], json({"/bin/sh", "-c"}));
  EXPECT_EQ(c["Cmd"], json({"echo hi"}));
  EXPECT_EQ(c["WorkingDir"], "/tmp");
  EXPECT_EQ(c["Labels"]["io.berth.test"], "yes");
  EXPECT_EQ(c["StopSignal"], "SIGINT");
}

TEST(ImageBuilderTest, DockerMediaTypes) {
  ImageSpec spec;
  spec.media = MediaTypes::kDocker;
  spec.layers = {SmallLayer(Compression::kGzip)};
  ASSERT_OK_AND_ASSIGN(BuiltImage image, BuildImage(spec));
  json manifest = json::parse(image.top.data);
  EXPECT_EQ(image.top.media_type, "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(manifest["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
  EXPECT_EQ(manifest["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip");

  spec.layers[0].compression = Compression::kZstd;
  auto zstd = BuildImage(spec);
  ASSERT_FALSE(zstd.ok());
  EXPECT_EQ(zstd.status().code(), StatusCode::kInvalidArgument);
}

TEST(ImageBuilderTest, MediaTypeOverride) {
  ImageSpec spec;
  spec.media = MediaTypes::kOci;
  spec.layers = {SmallLayer(Compression::kGzip)};
  spec.layers[0].media_type = "application/vnd.example.unknown";
  ASSERT_OK_AND_ASSIGN(BuiltImage image, BuildImage(spec));
  EXPECT_EQ(json::parse(image.top.data)["layers"][0]["mediaType"],
            "application/vnd.example.unknown");
}

TEST(ImageBuilderTest, BuildingTwiceGivesTheSameDigests) {
  ASSERT_OK_AND_ASSIGN(ImageSpec spec, BusyboxImageSpec(MediaTypes::kOci));
  spec.layers.push_back(RandomDataLayer(10000, 3, 42, Compression::kZstd));
  ASSERT_OK_AND_ASSIGN(BuiltImage a, BuildImage(spec));
  ASSERT_OK_AND_ASSIGN(BuiltImage b, BuildImage(spec));
  EXPECT_EQ(a.top.digest, b.top.digest);
  EXPECT_EQ(a.top.data, b.top.data);
  EXPECT_EQ(a.config_digest, b.config_digest);
  EXPECT_EQ(a.diff_ids, b.diff_ids);
  ASSERT_EQ(a.blobs.size(), b.blobs.size());
  for (size_t i = 0; i < a.blobs.size(); ++i) EXPECT_EQ(a.blobs[i].digest, b.blobs[i].digest);

  ASSERT_OK_AND_ASSIGN(BuiltImage multi_a,
                       BuildMultiPlatformImage(StandardPlatformSpecs(spec), MediaTypes::kOci));
  ASSERT_OK_AND_ASSIGN(BuiltImage multi_b,
                       BuildMultiPlatformImage(StandardPlatformSpecs(spec), MediaTypes::kOci));
  EXPECT_EQ(multi_a.top.digest, multi_b.top.digest);
}

TEST(ImageBuilderTest, RandomDataLayerIsDeterministicAndIncompressible) {
  LayerSpec a = RandomDataLayer(100001, 4, 7);
  LayerSpec b = RandomDataLayer(100001, 4, 7);
  LayerSpec c = RandomDataLayer(100001, 4, 8);
  ASSERT_EQ(a.entries.size(), 5u);  // data/ + 4 files
  size_t total = 0;
  for (size_t i = 1; i < a.entries.size(); ++i) {
    EXPECT_EQ(a.entries[i].content, b.entries[i].content);
    EXPECT_NE(a.entries[i].content, c.entries[i].content);
    total += a.entries[i].content.size();
  }
  EXPECT_EQ(total, 100001u);
  EXPECT_EQ(a.entries[1].path, "data/file-0000");
  ASSERT_OK_AND_ASSIGN(BuiltLayer layer, BuildLayer(a, MediaTypes::kDocker));
  EXPECT_GT(layer.blob.size(), 100001u * 99 / 100);
}

TEST(ImageBuilderTest, HostileNamesSurviveUnmodified) {
  FileSpec dotdot = FileSpec::File("../x", "escaped");
  FileSpec abs = FileSpec::File("/abs", "absolute");
  FileSpec deep = FileSpec::File("a/../../b", "deep");
  FileSpec root_link = FileSpec::Symlink("rootlink", "/");
  FileSpec up_link = FileSpec::Symlink("uplink", "../..");
  FileSpec hard = FileSpec::Hardlink("hard", "../../etc/passwd");
  FileSpec abs_hard = FileSpec::Hardlink("abshard", "/etc/shadow");
  FileSpec abs_dir = FileSpec::Dir("/etc/evil");
  std::string long_name = "../" + std::string(150, 'n') + "/../../z";
  FileSpec long_file = FileSpec::File(long_name, "long");
  LayerSpec layer =
      RawTarLayer({dotdot, abs, deep, root_link, up_link, hard, abs_hard, abs_dir, long_file},
                  Compression::kGzip);
  ASSERT_OK_AND_ASSIGN(BuiltLayer built, BuildLayer(layer, MediaTypes::kDocker));
  std::vector<TarEntry> entries = ReadTar(Gunzip(built.blob.data));
  ASSERT_EQ(entries.size(), 9u);
  EXPECT_EQ(entries[0].path, "../x");
  EXPECT_EQ(entries[0].content, "escaped");
  EXPECT_EQ(entries[1].path, "/abs");
  EXPECT_EQ(entries[2].path, "a/../../b");
  EXPECT_EQ(entries[3].path, "rootlink");
  EXPECT_EQ(entries[3].symlink, "/");
  EXPECT_EQ(entries[4].symlink, "../..");
  EXPECT_EQ(entries[5].path, "hard");
  EXPECT_EQ(entries[5].hardlink, "../../etc/passwd");
  EXPECT_EQ(entries[6].hardlink, "/etc/shadow");
  EXPECT_EQ(entries[7].path, "/etc/evil/");
  EXPECT_EQ(entries[8].path, long_name);
  EXPECT_EQ(entries[8].content, "long");
}

TEST(ImageBuilderTest, OrdinaryLayersNormalizeAndRejectDotDot) {
  LayerSpec layer;
  layer.entries = {FileSpec::File("a/../../b", "x")};
  auto built = BuildLayer(layer, MediaTypes::kOci);
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(built.status().message().find("a/../../b"), std::string::npos);

  layer.entries = {FileSpec::Hardlink("h", "../etc/passwd")};
  EXPECT_FALSE(BuildLayer(layer, MediaTypes::kOci).ok());

  layer.entries = {FileSpec::File("//abs/file", "x"), FileSpec::Hardlink("/h", "/abs/file"),
                   FileSpec::File("..name", "dots inside a name are fine")};
  ASSERT_OK_AND_ASSIGN(BuiltLayer ok, BuildLayer(layer, MediaTypes::kOci));
  std::vector<TarEntry> entries = ReadTar(ok.tar);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].path, "abs/file");
  EXPECT_EQ(entries[1].path, "h");
  EXPECT_EQ(entries[1].hardlink, "abs/file");
  EXPECT_EQ(entries[2].path, "..name");
}

TEST(ImageBuilderTest, SpecialFilesOwnershipAndXattrs) {
  FileSpec dev;
  dev.path = "dev/null";
  dev.type = FileSpec::kCharDev;
  dev.rdev = makedev(1, 3);
  dev.mode = 0666;
  FileSpec blk;
  blk.path = "dev/loop9";
  blk.type = FileSpec::kBlockDev;
  blk.rdev = makedev(7, 9);
  FileSpec fifo;
  fifo.path = "run/fifo";
  fifo.type = FileSpec::kFifo;
  fifo.mode = 0600;
  FileSpec owned = FileSpec::File("home/file", "mine", 04755);
  owned.uid = 1234;
  owned.gid = 5678;
  owned.mtime = 12345;
  owned.xattrs = {{"user.berth", "value"}, {"security.capability", std::string("\x01\x00\x02", 3)}};
  LayerSpec layer;
  layer.entries = {dev, blk, fifo, owned};
  ASSERT_OK_AND_ASSIGN(BuiltLayer built, BuildLayer(layer, MediaTypes::kOci));
  std::vector<TarEntry> entries = ReadTar(built.tar);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].mode, S_IFCHR | 0666);
  EXPECT_EQ(entries[0].rdev, makedev(1, 3));
  EXPECT_EQ(entries[1].mode, S_IFBLK | 0644);
  EXPECT_EQ(entries[1].rdev, makedev(7, 9));
  EXPECT_EQ(entries[2].mode, S_IFIFO | 0600);
  EXPECT_EQ(entries[3].mode, S_IFREG | 04755);
  EXPECT_EQ(entries[3].uid, 1234u);
  EXPECT_EQ(entries[3].gid, 5678u);
  EXPECT_EQ(entries[3].mtime, 12345);
  EXPECT_EQ(entries[3].xattrs, owned.xattrs);
  // Go's archive/tar (containerd, Docker) reads xattrs from SCHILY.xattr records.
  EXPECT_NE(built.tar.find("SCHILY.xattr.user.berth=value"), std::string::npos);
}

TEST(ImageBuilderTest, WhiteoutAndOpaqueNames) {
  EXPECT_EQ(WhiteoutFile("/etc/foo").path, "/etc/.wh.foo");
  EXPECT_EQ(WhiteoutFile("top").path, ".wh.top");
  EXPECT_EQ(WhiteoutFile("/var/dir/").path, "/var/.wh.dir");
  EXPECT_EQ(OpaqueDir("/var/lib").path, "/var/lib/.wh..wh..opq");
  EXPECT_EQ(OpaqueDir("/var/lib/").path, "/var/lib/.wh..wh..opq");
  LayerSpec layer;
  layer.entries = {WhiteoutFile("/etc/foo"), OpaqueDir("/var/lib")};
  ASSERT_OK_AND_ASSIGN(BuiltLayer built, BuildLayer(layer, MediaTypes::kOci));
  std::vector<TarEntry> entries = ReadTar(built.tar);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].path, "etc/.wh.foo");
  EXPECT_EQ(entries[1].path, "var/lib/.wh..wh..opq");
  EXPECT_TRUE(S_ISREG(entries[1].mode));
}

TEST(ImageBuilderTest, BusyboxLayerHasHostBinaryAndUsers) {
  ASSERT_OK_AND_ASSIGN(std::string host_busybox, ReadFile("/bin/busybox"));
  ASSERT_OK_AND_ASSIGN(LayerSpec spec, BusyboxLayer());
  ASSERT_OK_AND_ASSIGN(BuiltLayer built, BuildLayer(spec, MediaTypes::kDocker));
  std::vector<TarEntry> entries = ReadTar(Gunzip(built.blob.data));
  const TarEntry* busybox = Find(entries, "bin/busybox");
  ASSERT_NE(busybox, nullptr);
  EXPECT_EQ(busybox->mode, S_IFREG | 0755);
  EXPECT_TRUE(busybox->content == host_busybox) << "busybox bytes differ from the host's";
  for (const char* applet : {"sh", "ls", "cat", "echo", "sleep", "id", "true"}) {
    const TarEntry* link = Find(entries, std::string("bin/") + applet);
    ASSERT_NE(link, nullptr) << applet;
    EXPECT_EQ(link->hardlink, "bin/busybox") << applet;
    EXPECT_EQ(link->mode & 07777, 0755) << applet;  // appliers chmod the shared inode to it
  }
  const TarEntry* passwd = Find(entries, "etc/passwd");
  ASSERT_NE(passwd, nullptr);
  EXPECT_NE(passwd->content.find("root:x:0:0:"), std::string::npos);
  EXPECT_NE(passwd->content.find("nobody:x:65534:65534:"), std::string::npos);
  EXPECT_NE(passwd->content.find("berthuser:x:1234:1234:"), std::string::npos);
  const TarEntry* group = Find(entries, "etc/group");
  ASSERT_NE(group, nullptr);
  EXPECT_NE(group->content.find("berthextra:x:5678:berthuser"), std::string::npos);
  const TarEntry* tmp = Find(entries, "tmp/");
  ASSERT_NE(tmp, nullptr);
  EXPECT_EQ(tmp->mode, S_IFDIR | 01777);
  const TarEntry* home = Find(entries, "home/berthuser/");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(home->uid, kBerthUserUid);
}

TEST(ImageBuilderTest, MultiPlatformIndex) {
  for (MediaTypes media : {MediaTypes::kOci, MediaTypes::kDocker}) {
    ASSERT_OK_AND_ASSIGN(ImageSpec base, BusyboxImageSpec(media));
    std::vector<ImageSpec> specs = StandardPlatformSpecs(base);
    ASSERT_EQ(specs.size(), 3u);
    ASSERT_OK_AND_ASSIGN(BuiltImage image, BuildMultiPlatformImage(specs, media));
    const bool oci = media == MediaTypes::kOci;
    const std::string index_type =
        oci ? "application/vnd.oci.image.index.v1+json"
            : "application/vnd.docker.distribution.manifest.list.v2+json";
    EXPECT_EQ(image.top.media_type, index_type);
    json index = json::parse(image.top.data);
    EXPECT_EQ(index["mediaType"], index_type);
    ASSERT_EQ(index["manifests"].size(), 3u);
    ASSERT_EQ(image.child_manifests.size(), 3u);
    // The busybox layer is shared: 1 busybox + 3 platform layers + 3 configs.
    EXPECT_EQ(image.blobs.size(), 7u);

    const char* platforms[] = {"linux/amd64", "linux/arm64/v8", "linux/arm/v7"};
    for (size_t i = 0; i < 3; ++i) {
      const json& desc = index["manifests"][i];
      const BuiltBlob& child = image.child_manifests[i];
      EXPECT_EQ(desc["digest"], child.digest.str());
      EXPECT_EQ(desc["size"], child.size());
      EXPECT_EQ(desc["mediaType"], child.media_type);
      EXPECT_EQ(child.digest, Sha256::Of(child.data));
      std::string platform = StrCat(desc["platform"]["os"].get<std::string>(), "/",
                                    desc["platform"]["architecture"].get<std::string>());
      if (desc["platform"].contains("variant")) {
        platform += "/" + desc["platform"]["variant"].get<std::string>();
      }
      EXPECT_EQ(platform, platforms[i]);

      json manifest = json::parse(child.data);
      const BuiltBlob* config = FindBlob(image.blobs, manifest["config"]["digest"]);
      ASSERT_NE(config, nullptr);
      json config_doc = json::parse(config->data);
      EXPECT_EQ(config_doc["architecture"], desc["platform"]["architecture"]);
      if (i == 0) {
        EXPECT_EQ(config->digest, image.config_digest);
        ASSERT_EQ(image.diff_ids.size(), 2u);
        EXPECT_EQ(config_doc["rootfs"]["diff_ids"][1], image.diff_ids[1].str());
      } else {
        EXPECT_NE(config->digest, image.config_digest);
      }
      const BuiltBlob* marker = FindBlob(image.blobs, manifest["layers"][1]["digest"]);
      ASSERT_NE(marker, nullptr);
      std::vector<TarEntry> entries = ReadTar(Gunzip(marker->data));
      ASSERT_EQ(entries.size(), 1u);
      EXPECT_EQ(entries[0].path, "platform");
      EXPECT_EQ(entries[0].content, platforms[i]);
    }
  }
}

TEST(ImageBuilderTest, MultiPlatformRejectsDuplicatesAndEmpty) {
  ImageSpec spec;
  spec.layers = {SmallLayer(Compression::kGzip)};
  EXPECT_FALSE(BuildMultiPlatformImage({}, MediaTypes::kOci).ok());
  auto dup = BuildMultiPlatformImage({spec, spec}, MediaTypes::kOci);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("linux/amd64"), std::string::npos);
}

TEST(ImageBuilderTest, CorruptCopyFlipsOneByteKeepingDigest) {
  BuiltBlob blob = MakeBlob("application/octet-stream", "some blob content");
  BuiltBlob bad = CorruptCopy(blob);
  EXPECT_EQ(bad.size(), blob.size());
  EXPECT_EQ(bad.digest, blob.digest);
  EXPECT_EQ(bad.media_type, blob.media_type);
  EXPECT_NE(Sha256::Of(bad.data), bad.digest);
  int differing = 0;
  for (size_t i = 0; i < blob.size(); ++i) differing += blob.data[i] != bad.data[i];
  EXPECT_EQ(differing, 1);
}

}  // namespace
}  // namespace berth::testing
