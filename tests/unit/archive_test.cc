#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "archive/layer_apply.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/status.h"

namespace berth::archive {
namespace {

namespace fs = std::filesystem;

// One tar member, written with libarchive's pax writer.
struct Entry {
  std::string path;
  unsigned type = AE_IFREG;
  unsigned perm = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 1600000000;
  long mtime_nsec = 0;
  std::string data;
  std::string symlink;
  std::string hardlink;
  dev_t rdev = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  // (offset, length) data regions of a sparse file; data holds the whole
  // logical content, of which the writer stores only these regions.
  std::vector<std::pair<int64_t, int64_t>> sparse;
};

Entry File(std::string path, std::string data, unsigned perm = 0644) {
  Entry e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}

Entry Dir(std::string path, unsigned perm = 0755) {
  Entry e;
  e.path = std::move(path);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}

Entry Symlink(std::string path, std::string target) {
  Entry e;
  e.path = std::move(path);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(target);
  return e;
}

Entry HardLink(std::string path, std::string target) {
  Entry e;
  e.path = std::move(path);
  e.hardlink = std::move(target);
  return e;
}

Entry Node(std::string path, unsigned type, dev_t rdev, unsigned perm) {
  Entry e;
  e.path = std::move(path);
  e.type = type;
  e.rdev = rdev;
  e.perm = perm;
  return e;
}

la_ssize_t AppendToString(struct archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

std::string BuildTar(const std::vector<Entry>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  EXPECT_EQ(archive_write_set_format_pax(a), ARCHIVE_OK);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  for (const Entry& en : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, en.path.c_str());
    archive_entry_set_filetype(e, en.type);
    archive_entry_set_perm(e, en.perm);
    archive_entry_set_uid(e, en.uid);
    archive_entry_set_gid(e, en.gid);
    archive_entry_set_mtime(e, en.mtime, en.mtime_nsec);
    if (!en.symlink.empty()) archive_entry_set_symlink(e, en.symlink.c_str());
    if (!en.hardlink.empty()) archive_entry_set_hardlink(e, en.hardlink.c_str());
    if (en.type == AE_IFCHR || en.type == AE_IFBLK) archive_entry_set_rdev(e, en.rdev);
    for (const auto& [k, v] : en.xattrs) {
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    }
    if (!en.sparse.empty()) {
      archive_entry_set_size(e, static_cast<int64_t>(en.data.size()));  // before the map
      for (const auto& [off, len] : en.sparse) archive_entry_sparse_add_entry(e, off, len);
    } else {
      archive_entry_set_size(
          e, en.type == AE_IFREG && en.hardlink.empty() ? static_cast<int64_t>(en.data.size()) : 0);
    }
    int r = archive_write_header(a, e);
    EXPECT_GE(r, ARCHIVE_WARN) << en.path << ": " << archive_error_string(a);
    if (!en.data.empty()) {
      EXPECT_EQ(archive_write_data(a, en.data.data(), en.data.size()),
                static_cast<la_ssize_t>(en.data.size()));
    }
    archive_entry_free(e);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

std::string Gzip(std::string_view in) {
  z_stream zs = {};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Zstd(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// As written by streaming compressors: no content size in the frame header.
std::string ZstdNoContentSize(std::string_view in) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  EXPECT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  ZSTD_freeCCtx(cctx);
  return out;
}

// A ReadFn over a string, handing out at most `chunk` bytes per call.
ReadFn StringSource(std::string data, size_t chunk = 64 * 1024) {
  auto pos = std::make_shared<size_t>(0);
  auto bytes = std::make_shared<std::string>(std::move(data));
  return [pos, bytes, chunk](char* buf, size_t n) -> StatusOr<size_t> {
    size_t take = std::min({n, chunk, bytes->size() - *pos});
    std::memcpy(buf, bytes->data() + *pos, take);  // NOLINT(bugprone-not-null-terminated-result)
    *pos += take;
    return take;
  };
}

struct stat Lstat(const fs::path& p) {
  struct stat st = {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p << ": " << std::strerror(errno);
  return st;
}

std::string Slurp(const fs::path& p) {
  auto s = ReadFile(p);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : std::string();
}

std::string GetXattr(const fs::path& p, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof(buf));
  if (n < 0) return "<" + std::string(std::strerror(errno)) + ">";
  return std::string(buf, static_cast<size_t>(n));
}

std::set<std::string> List(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& d : fs::directory_iterator(dir)) names.insert(d.path().filename().string());
  return names;
}

// Layout: <base>/outer/{sentinel, dest/}. Hostile entries aim at outer/sentinel.
class ApplyLayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("berth-archive-" + RandomHex(6));
    outer_ = base_ / "outer";
    dest_ = outer_ / "dest";
    ASSERT_TRUE(MakeDirs(dest_).ok());
    ASSERT_TRUE(WriteFileAtomic(outer_ / "sentinel", "safe").ok());
  }
  void TearDown() override { EXPECT_TRUE(RemoveAll(base_).ok()); }

  StatusOr<ApplyResult> Apply(const std::vector<Entry>& entries,
                              Compression c = Compression::kNone) {
    std::string tar = BuildTar(entries);
    std::string data = c == Compression::kGzip   ? Gzip(tar)
                       : c == Compression::kZstd ? Zstd(tar)
                                                 : tar;
    return ApplyLayer(StringSource(data), c, dest_);
  }

  void ExpectOutsideUntouched() {
    EXPECT_EQ(List(outer_), (std::set<std::string>{"dest", "sentinel"}));
    EXPECT_EQ(Slurp(outer_ / "sentinel"), "safe");
    EXPECT_EQ(List(base_), (std::set<std::string>{"outer"}));
  }

  fs::path base_, outer_, dest_;
};

TEST(CompressionForMediaTypeTest, KnownTypes) {
  struct Case {
    const char* media_type;
    Compression want;
  } cases[] = {
      {"application/vnd.oci.image.layer.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar", Compression::kNone},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.diff.tar.zstd", Compression::kZstd},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar", Compression::kNone},
      {"Application/VND.OCI.Image.Layer.v1.tar+GZIP; charset=binary", Compression::kGzip},
  };
  for (const Case& c : cases) {
    auto got = CompressionForMediaType(c.media_type);
    ASSERT_TRUE(got.ok()) << c.media_type << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.media_type;
  }
}

TEST(CompressionForMediaTypeTest, UnknownIsInvalidArgument) {
  for (const char* mt : {"", "application/json", "application/vnd.oci.image.manifest.v1+json",
                         "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                         "application/vnd.oci.image.layer.v1.tar+bzip2",
                         "application/vnd.cncf.helm.chart.content.v1.tar+gzip"}) {
    auto got = CompressionForMediaType(mt);
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << mt;
    if (*mt != '\0') {
      EXPECT_NE(got.status().message().find(mt), std::string::npos);
    }
  }
}

TEST_F(ApplyLayerTest, RegularFilesKeepContentModeOwnerAndTimes) {
  Entry f = File("etc/app.conf", "key=value\n", 0640);
  f.uid = 1000;
  f.gid = 1001;
  f.mtime = 1500000000;
  f.mtime_nsec = 123456789;
  Entry big = File("data/big.bin", std::string(3 * 1024 * 1024 + 17, 'x'), 0600);
  for (size_t i = 0; i < big.data.size(); i += 4093) big.data[i] = static_cast<char>(i & 0x7f);
  Entry empty = File("empty", "");
  auto r = Apply({Dir("etc"), f, Dir("data"), big, empty});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 5u);

  EXPECT_EQ(Slurp(dest_ / "etc/app.conf"), "key=value\n");
  struct stat st = Lstat(dest_ / "etc/app.conf");
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);

  EXPECT_EQ(Slurp(dest_ / "data/big.bin"), big.data);
  EXPECT_EQ(Lstat(dest_ / "data/big.bin").st_mode & 07777, 0600u);
  EXPECT_EQ(Lstat(dest_ / "empty").st_size, 0);
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, DirectoriesGetModeOwnerAndTimesAfterChildren) {
  Entry d = Dir("srv", 0750);
  d.uid = 33;
  d.gid = 34;
  d.mtime = 1400000000;
  Entry sub = Dir("srv/www", 0711);
  sub.mtime = 1400000001;
  auto r = Apply({d, sub, File("srv/www/index.html", "<h1>hi</h1>"), File("srv/late", "x")});
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st = Lstat(dest_ / "srv");
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 33u);
  EXPECT_EQ(st.st_gid, 34u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1400000000);  // despite files written into it later
  EXPECT_EQ(Lstat(dest_ / "srv/www").st_mtim.tv_sec, 1400000001);
  EXPECT_EQ(Lstat(dest_ / "srv/www").st_mode & 07777, 0711u);
  EXPECT_EQ(Slurp(dest_ / "srv/www/index.html"), "<h1>hi</h1>");
}

TEST_F(ApplyLayerTest, MissingParentsAreCreatedAndRootEntryIgnored) {
  auto r = Apply({Dir("./", 0700), File("a/b/c/file", "deep"), File("./x/../y", "clean")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 3u);
  EXPECT_EQ(Slurp(dest_ / "a/b/c/file"), "deep");
  EXPECT_EQ(Lstat(dest_ / "a/b").st_mode & 07777, 0755u);
  EXPECT_EQ(Slurp(dest_ / "y"), "clean");
  EXPECT_EQ(Lstat(dest_).st_mode & 07777, 0755u);  // "./" did not change dest itself
}

TEST_F(ApplyLayerTest, SymlinksAndHardLinks) {
  Entry link = Symlink("bin/sh", "busybox");
  link.uid = 123;
  link.gid = 456;
  link.mtime = 1300000000;
  Entry abs = Symlink("lib", "/usr/lib");
  Entry orig = File("bin/busybox", "ELF...", 0755);
  orig.uid = 7;
  auto r = Apply({Dir("bin"), orig, link, abs, HardLink("bin/ls", "bin/busybox"),
                  HardLink("bin/cat", "/bin/busybox")});
  ASSERT_TRUE(r.ok()) << r.status();

  EXPECT_EQ(fs::read_symlink(dest_ / "bin/sh"), "busybox");
  struct stat st = Lstat(dest_ / "bin/sh");
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_uid, 123u);
  EXPECT_EQ(st.st_gid, 456u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1300000000);
  EXPECT_EQ(fs::read_symlink(dest_ / "lib"), "/usr/lib");  // stored verbatim

  struct stat o = Lstat(dest_ / "bin/busybox");
  struct stat l = Lstat(dest_ / "bin/ls");
  struct stat c = Lstat(dest_ / "bin/cat");
  EXPECT_EQ(o.st_ino, l.st_ino);
  EXPECT_EQ(o.st_ino, c.st_ino);
  EXPECT_EQ(o.st_nlink, 3u);
  EXPECT_EQ(l.st_uid, 7u);  // the link header does not re-own the shared inode
  EXPECT_EQ(Slurp(dest_ / "bin/ls"), "ELF...");
}

TEST_F(ApplyLayerTest, SetuidSetgidStickyKept) {
  Entry su = File("usr/bin/passwd", "suid", 04755);
  su.uid = 1000;  // chown after chmod would drop the bit: the order matters
  su.gid = 1000;
  Entry sg = File("usr/bin/wall", "sgid", 02755);
  sg.gid = 5;
  Entry tmp = Dir("tmp", 01777);
  Entry sgdir = Dir("shared", 02775);
  sgdir.uid = 1000;
  auto r = Apply({su, sg, tmp, sgdir});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Lstat(dest_ / "usr/bin/passwd").st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(dest_ / "usr/bin/passwd").st_uid, 1000u);
  EXPECT_EQ(Lstat(dest_ / "usr/bin/wall").st_mode & 07777, 02755u);
  EXPECT_EQ(Lstat(dest_ / "tmp").st_mode & 07777, 01777u);
  EXPECT_EQ(Lstat(dest_ / "shared").st_mode & 07777, 02775u);
}

TEST_F(ApplyLayerTest, DeviceNodesAndFifo) {
  Entry null = Node("dev/null", AE_IFCHR, makedev(1, 3), 0666);
  null.uid = 0;
  null.gid = 5;
  Entry loop = Node("dev/loop9", AE_IFBLK, makedev(7, 9), 0660);
  Entry fifo = Node("run/ctl", AE_IFIFO, 0, 0620);
  fifo.uid = 42;
  auto r = Apply({null, loop, fifo});
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st = Lstat(dest_ / "dev/null");
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 1u);
  EXPECT_EQ(minor(st.st_rdev), 3u);
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  EXPECT_EQ(st.st_gid, 5u);
  st = Lstat(dest_ / "dev/loop9");
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 7u);
  EXPECT_EQ(minor(st.st_rdev), 9u);
  st = Lstat(dest_ / "run/ctl");
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
  EXPECT_EQ(st.st_uid, 42u);
}

TEST_F(ApplyLayerTest, XattrsFromPaxHeaders) {
  Entry f = File("f", "x");
  f.uid = 1000;
  f.xattrs = {{"user.origin", "test"},
              {"trusted.berth", std::string("a\0b", 3)},
              {"trusted.overlay.redirect", "/elsewhere"}};
  Entry d = Dir("d");
  d.xattrs = {{"user.dir", "yes"}};
  Entry l = Symlink("l", "f");
  l.xattrs = {{"trusted.link", "on-the-link"}};
  auto r = Apply({f, d, l});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(GetXattr(dest_ / "f", "user.origin"), "test");
  EXPECT_EQ(GetXattr(dest_ / "f", "trusted.berth"), std::string("a\0b", 3));
  // overlayfs state from the build machine is not content
  EXPECT_EQ(GetXattr(dest_ / "f", "trusted.overlay.redirect"),
            "<" + std::string(std::strerror(ENODATA)) + ">");
  EXPECT_EQ(GetXattr(dest_ / "d", "user.dir"), "yes");
  EXPECT_EQ(GetXattr(dest_ / "l", "trusted.link"), "on-the-link");  // on the link itself
}

TEST_F(ApplyLayerTest, WhiteoutBecomesCharDevice00) {
  Entry wh = File("etc/.wh.motd", "");
  wh.uid = 10;
  wh.gid = 20;
  auto r = Apply({Dir("etc"), wh, File(".wh.topgone", ""), File("etc/.wh..wh.plnk", "")});
  ASSERT_TRUE(r.ok()) << r.status();
  for (const char* p : {"etc/motd", "topgone"}) {
    struct stat st = Lstat(dest_ / p);
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << p;
    EXPECT_EQ(st.st_rdev, makedev(0, 0)) << p;
  }
  EXPECT_EQ(Lstat(dest_ / "etc/motd").st_uid, 10u);
  EXPECT_EQ(Lstat(dest_ / "etc/motd").st_gid, 20u);
  EXPECT_EQ(List(dest_), (std::set<std::string>{"etc", "topgone"}));
  EXPECT_EQ(List(dest_ / "etc"), (std::set<std::string>{"motd"}));  // no .wh.* files at all
}

TEST_F(ApplyLayerTest, WhiteoutReplacesEarlierEntryOfTheLayer) {
  auto r = Apply(
      {File("a/old", "x"), File("a/dir/inner", "y"), File("a/.wh.old", ""), File("a/.wh.dir", "")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(S_ISCHR(Lstat(dest_ / "a/old").st_mode));
  EXPECT_TRUE(S_ISCHR(Lstat(dest_ / "a/dir").st_mode));
}

TEST_F(ApplyLayerTest, OpaqueDirectoryGetsXattr) {
  Entry d = Dir("var/cache", 0700);
  d.mtime = 1234567890;
  auto r = Apply({Dir("var"), d, File("var/cache/.wh..wh..opq", ""), File("var/cache/new", "n"),
                  File("fresh/.wh..wh..opq", "")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(GetXattr(dest_ / "var/cache", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(GetXattr(dest_ / "fresh", "trusted.overlay.opaque"), "y");  // parent made on the fly
  EXPECT_EQ(List(dest_ / "var/cache"), (std::set<std::string>{"new"}));
  EXPECT_EQ(List(dest_ / "fresh"), (std::set<std::string>{}));
  EXPECT_EQ(Lstat(dest_ / "var/cache").st_mtim.tv_sec, 1234567890);
  EXPECT_NE(GetXattr(dest_ / "var", "trusted.overlay.opaque"), "y");
}

TEST_F(ApplyLayerTest, DiffIdIsSha256OfTarForAllCompressions) {
  std::vector<Entry> entries = {Dir("d"), File("d/a", std::string(200000, 'a')),
                                Symlink("d/s", "a"), File("d/b", "bbb")};
  std::string tar = BuildTar(entries);
  Digest want = Sha256::Of(tar);

  // Two gzip members and two zstd frames, split in the middle of a tar block.
  size_t half = tar.size() / 2 + 3;
  std::string gzip2 = Gzip(tar.substr(0, half)) + Gzip(tar.substr(half));
  std::string zstd2 = Zstd(tar.substr(0, half)) + Zstd(tar.substr(half));
  struct Case {
    const char* name;
    Compression c;
    std::string data;
    size_t chunk;
  } cases[] = {
      {"none", Compression::kNone, tar, 1 << 20},
      {"gzip", Compression::kGzip, Gzip(tar), 1 << 20},
      {"zstd", Compression::kZstd, Zstd(tar), 1 << 20},
      {"gzip-multi-member", Compression::kGzip, gzip2, 4096},
      {"zstd-multi-frame", Compression::kZstd, zstd2, 4096},
      {"none-tiny-reads", Compression::kNone, tar, 7},
      {"gzip-tiny-reads", Compression::kGzip, Gzip(tar), 13},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(RemoveAll(dest_).ok());
    ASSERT_TRUE(MakeDirs(dest_).ok());
    auto r = ApplyLayer(StringSource(c.data, c.chunk), c.c, dest_);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status();
    EXPECT_EQ(r->diff_id, want) << c.name;
    EXPECT_EQ(r->uncompressed_bytes, tar.size()) << c.name;
    EXPECT_EQ(r->entries, 4u) << c.name;
    EXPECT_EQ(Slurp(dest_ / "d/a"), std::string(200000, 'a')) << c.name;
    EXPECT_EQ(Slurp(dest_ / "d/b"), "bbb") << c.name;
  }
}

TEST_F(ApplyLayerTest, StreamsEndingNearTheBufferSizeDecodeFully) {
  // Zeros after the end-of-archive marker are part of the diff_id; the sizes
  // straddle the 1 MiB decode buffer, so the decompressor still holds output
  // when the compressed input is exhausted.
  std::string tar = BuildTar({File("f", "content")});
  for (size_t total :
       {size_t{1 << 20} - 512, size_t{1 << 20}, size_t{1 << 20} + 512, size_t{2 << 20} + 10240}) {
    std::string stream = tar + std::string(total - tar.size(), '\0');
    for (size_t i = tar.size() + 1; i < stream.size(); i += 3) stream[i] = static_cast<char>(i * 7);
    for (int kind = 0; kind < 3; ++kind) {
      ASSERT_TRUE(RemoveAll(dest_).ok());
      ASSERT_TRUE(MakeDirs(dest_).ok());
      Compression c = kind == 0 ? Compression::kGzip : Compression::kZstd;
      std::string data = kind == 0   ? Gzip(stream)
                         : kind == 1 ? Zstd(stream)
                                     : ZstdNoContentSize(stream);
      auto r = ApplyLayer(StringSource(data, 1 << 20), c, dest_);
      ASSERT_TRUE(r.ok()) << total << " " << kind << ": " << r.status();
      EXPECT_EQ(r->uncompressed_bytes, total);
      EXPECT_EQ(r->diff_id, Sha256::Of(stream));
      EXPECT_EQ(Slurp(dest_ / "f"), "content");
    }
  }
}

TEST_F(ApplyLayerTest, LaterEntriesReplaceEarlierOnes) {
  Entry merged = Dir("merge", 0700);
  merged.uid = 9;
  auto r = Apply({
      File("f2d", "file"),
      Dir("f2d"),
      File("f2d/in", "inside"),  // file -> dir
      Dir("d2f"),
      File("d2f/child", "c"),
      File("d2f", "now a file"),  // dir with children -> file
      File("f2l", "file"),
      Symlink("f2l", "target"),  // file -> symlink
      Symlink("l2f", "/etc/passwd"),
      File("l2f", "mine"),  // symlink -> file (not via it)
      File("f2f", "first"),
      File("f2f", "second"),  // file -> file
      Dir("merge", 0755),
      File("merge/keep", "k"),
      merged,  // dir + dir merges
      Node("n2f", AE_IFIFO, 0, 0600),
      File("n2f", "was a fifo"),
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(dest_ / "f2d")));
  EXPECT_EQ(Slurp(dest_ / "f2d/in"), "inside");
  EXPECT_EQ(Slurp(dest_ / "d2f"), "now a file");
  EXPECT_EQ(fs::read_symlink(dest_ / "f2l"), "target");
  EXPECT_TRUE(S_ISREG(Lstat(dest_ / "l2f").st_mode));
  EXPECT_EQ(Slurp(dest_ / "l2f"), "mine");
  EXPECT_EQ(Slurp(dest_ / "f2f"), "second");
  EXPECT_EQ(Slurp(dest_ / "merge/keep"), "k");
  EXPECT_EQ(Lstat(dest_ / "merge").st_mode & 07777, 0700u);
  EXPECT_EQ(Lstat(dest_ / "merge").st_uid, 9u);
  EXPECT_EQ(Slurp(dest_ / "n2f"), "was a fifo");
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, DotDotEscapeIsRejected) {
  for (const char* name : {"../sentinel", "a/../../sentinel", "../../escape", "./../x"}) {
    ASSERT_TRUE(RemoveAll(dest_).ok());
    ASSERT_TRUE(MakeDirs(dest_).ok());
    auto r = Apply({File(name, "pwned")});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status();
    ExpectOutsideUntouched();
  }
}

TEST_F(ApplyLayerTest, AbsoluteNameLandsInside) {
  auto r = Apply({File("/abs/escape", "in"), File(outer_.string() + "/sentinel", "pwned")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(dest_ / "abs/escape"), "in");
  EXPECT_EQ(Slurp(dest_ / outer_.relative_path() / "sentinel"), "pwned");
  EXPECT_FALSE(fs::exists("/abs/escape"));
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, SymlinkToRootIsClampedToDest) {
  std::string unique = "berth-archive-escape-" + RandomHex(6);
  auto r = Apply({Symlink("evil", "/"), File("evil/" + unique, "x"),
                  File("evil/" + outer_.relative_path().string() + "/sentinel", "pwned")});
  ASSERT_TRUE(r.ok()) << r.status();
  bool escaped = fs::exists("/" + unique);
  if (escaped) fs::remove("/" + unique);
  EXPECT_FALSE(escaped);
  EXPECT_EQ(Slurp(dest_ / unique), "x");
  EXPECT_EQ(Slurp(dest_ / outer_.relative_path() / "sentinel"), "pwned");
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, RelativeSymlinkClimbingOutIsClamped) {
  auto r = Apply({Dir("a"), Symlink("a/up", "../.."), Symlink("deep", "a/../../../../../../.."),
                  File("a/up/sentinel", "pwned1"), File("deep/sentinel2", "pwned2")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(dest_ / "sentinel"), "pwned1");  // ../.. from dest/a is clamped at dest
  EXPECT_EQ(Slurp(dest_ / "sentinel2"), "pwned2");
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, SymlinkToRealOutsideDirIsClamped) {
  // The absolute target exists on the host; inside dest it must mean dest/<target>.
  auto r = Apply({Symlink("evil", outer_.string()), Dir(outer_.relative_path().string()),
                  File("evil/sentinel", "pwned")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(dest_ / outer_.relative_path() / "sentinel"), "pwned");
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, DanglingSymlinkParentCreatesInside) {
  auto r = Apply({Symlink("evil", outer_.string() + "/newdir"), File("evil/sentinel", "pwned"),
                  Symlink("rel", "../../nowhere/x"), File("rel/f", "r")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(dest_ / outer_.relative_path() / "newdir/sentinel"), "pwned");
  EXPECT_EQ(Slurp(dest_ / "nowhere/x/f"), "r");
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, HardLinkEscapeIsRejected) {
  struct stat before = Lstat("/etc/passwd");
  for (const char* target : {"../../etc/passwd", "../sentinel", "a/../../sentinel"}) {
    ASSERT_TRUE(RemoveAll(dest_).ok());
    ASSERT_TRUE(MakeDirs(dest_).ok());
    auto r = Apply({HardLink("passwd", target)});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << target;
    EXPECT_NE(r.status().message().find("passwd"), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find(target), std::string::npos) << r.status();
    EXPECT_FALSE(fs::exists(fs::symlink_status(dest_ / "passwd")));
  }
  // Absolute targets mean "inside the layer": /etc/passwd is not there.
  ASSERT_TRUE(RemoveAll(dest_).ok());
  ASSERT_TRUE(MakeDirs(dest_).ok());
  auto r = Apply({HardLink("passwd", "/etc/passwd")});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(Lstat("/etc/passwd").st_nlink, before.st_nlink);
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, HardLinkThroughSymlinkStaysInside) {
  struct stat before = Lstat(outer_ / "sentinel");
  auto r = Apply({Symlink("evil", outer_.string()), HardLink("stolen", "evil/sentinel")});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("stolen"), std::string::npos) << r.status();
  EXPECT_EQ(Lstat(outer_ / "sentinel").st_nlink, before.st_nlink);
  ExpectOutsideUntouched();

  // With the target present inside, the link goes to the inside file.
  ASSERT_TRUE(RemoveAll(dest_).ok());
  ASSERT_TRUE(MakeDirs(dest_).ok());
  r = Apply({Symlink("evil", outer_.string()),
             File(outer_.relative_path().string() + "/sentinel", "inner"),
             HardLink("copy", "evil/sentinel")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(dest_ / "copy"), "inner");
  EXPECT_EQ(Lstat(outer_ / "sentinel").st_nlink, before.st_nlink);
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, HardLinkToSymlinkLinksTheSymlink) {
  auto r = Apply({Symlink("s", outer_.string() + "/sentinel"), HardLink("h", "s")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(S_ISLNK(Lstat(dest_ / "h").st_mode));
  EXPECT_EQ(Lstat(dest_ / "h").st_ino, Lstat(dest_ / "s").st_ino);
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, HardLinkToDirectoryOrMissingIsRejected) {
  auto r = Apply({Dir("d"), HardLink("h", "d")});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  ASSERT_TRUE(RemoveAll(dest_).ok());
  ASSERT_TRUE(MakeDirs(dest_).ok());
  r = Apply({HardLink("h", "missing")});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("missing"), std::string::npos) << r.status();
}

TEST_F(ApplyLayerTest, BadWhiteoutNamesAreRejected) {
  for (const char* name : {"d/.wh.", "d/.wh.."}) {
    ASSERT_TRUE(RemoveAll(dest_).ok());
    ASSERT_TRUE(MakeDirs(dest_).ok());
    auto r = Apply({File(name, "")});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << name << ": " << r.status();
  }
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, CorruptStreamsAreDataLoss) {
  std::string tar = BuildTar({File("a", std::string(100000, 'z')), File("b", "b")});
  std::string gz = Gzip(tar);
  std::string bad_gz = gz;
  for (size_t i = 20; i < 60 && i < bad_gz.size(); ++i) bad_gz[i] ^= 0x5a;
  std::string zs = Zstd(tar);
  std::string bad_zs = zs;
  for (size_t i = 10; i < 40 && i < bad_zs.size(); ++i) bad_zs[i] ^= 0x5a;
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 6] ^= 0x01;  // gzip trailer: CRC32 then ISIZE
  std::string bad_tar = tar;
  bad_tar[150] ^= 0x01;  // inside the first header's checksummed bytes
  struct Case {
    const char* name;
    Compression c;
    std::string data;
  } cases[] = {
      {"corrupt gzip", Compression::kGzip, bad_gz},
      {"gzip crc", Compression::kGzip, bad_crc},
      {"truncated gzip", Compression::kGzip, gz.substr(0, gz.size() / 2)},
      {"gzip trailing garbage", Compression::kGzip, gz + "garbage!"},
      {"empty gzip", Compression::kGzip, ""},
      {"plain data as gzip", Compression::kGzip, tar},
      {"corrupt zstd", Compression::kZstd, bad_zs},
      {"truncated zstd", Compression::kZstd, zs.substr(0, zs.size() - 5)},
      {"not a tar", Compression::kNone, std::string(5000, 'q')},
      {"gzip given as none", Compression::kNone, gz},
      {"bad tar checksum", Compression::kNone, bad_tar},
      {"truncated tar", Compression::kNone, tar.substr(0, 512 + 50000)},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(RemoveAll(dest_).ok());
    ASSERT_TRUE(MakeDirs(dest_).ok());
    auto r = ApplyLayer(StringSource(c.data), c.c, dest_);
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << c.name << ": " << r.status();
    EXPECT_FALSE(r.status().message().empty());
  }
  ExpectOutsideUntouched();
}

TEST_F(ApplyLayerTest, TruncatedStreamNamesTheEntry) {
  std::string noise(3 << 20, '\0');  // incompressible, so the cut lands inside "second"
  uint64_t x = 88172645463325252ull;
  for (char& c : noise) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  std::string tar = BuildTar({File("first", "1"), File("second", noise), File("third", "3")});
  std::string gz = Gzip(tar);
  std::string zs = Zstd(tar);
  struct Case {
    Compression c;
    std::string data;
  } cases[] = {
      {Compression::kNone, tar.substr(0, tar.size() / 2)},
      {Compression::kGzip, gz.substr(0, gz.size() / 2)},
      {Compression::kZstd, zs.substr(0, zs.size() / 2)},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(RemoveAll(dest_).ok());
    ASSERT_TRUE(MakeDirs(dest_).ok());
    auto r = ApplyLayer(StringSource(c.data), c.c, dest_);
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status();
    EXPECT_NE(r.status().message().find("\"second\""), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("runcated"), std::string::npos) << r.status();
  }
}

TEST_F(ApplyLayerTest, ReadFnErrorAbortsWithThatError) {
  std::string tar = BuildTar({File("a", std::string(3 << 20, 'a')), File("b", "b")});
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    for (size_t fail_after : {size_t{0}, size_t{100}, size_t{1 << 20}}) {
      ASSERT_TRUE(RemoveAll(dest_).ok());
      ASSERT_TRUE(MakeDirs(dest_).ok());
      std::string data = c == Compression::kGzip   ? Gzip(tar)
                         : c == Compression::kZstd ? Zstd(tar)
                                                   : tar;
      if (fail_after >= data.size()) fail_after = data.size() / 2;
      size_t pos = 0;
      ReadFn read = [&](char* buf, size_t n) -> StatusOr<size_t> {
        if (pos >= fail_after) return UnavailableError("registry 127.0.0.1: connection reset");
        size_t take = std::min(n, fail_after - pos);
        std::memcpy(buf, data.data() + pos, take);
        pos += take;
        return take;
      };
      auto r = ApplyLayer(read, c, dest_);
      EXPECT_EQ(r.status(), UnavailableError("registry 127.0.0.1: connection reset"))
          << static_cast<int>(c) << " after " << fail_after;
    }
  }
}

TEST_F(ApplyLayerTest, DestinationMustExistAndBeEmpty) {
  ASSERT_TRUE(WriteFileAtomic(dest_ / "leftover", "x").ok());
  auto r = ApplyLayer(StringSource(BuildTar({File("a", "a")})), Compression::kNone, dest_);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find(dest_.string()), std::string::npos);
  r = ApplyLayer(StringSource(""), Compression::kNone, base_ / "missing");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status();
}

TEST_F(ApplyLayerTest, EmptyLayers) {
  auto r = ApplyLayer(StringSource(""), Compression::kNone, dest_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 0u);
  EXPECT_EQ(r->diff_id, Sha256::Of(""));

  std::string zeros(1024, '\0');  // an end-of-archive marker only
  r = ApplyLayer(StringSource(Gzip(zeros)), Compression::kGzip, dest_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 0u);
  EXPECT_EQ(r->diff_id, Sha256::Of(zeros));
  EXPECT_EQ(r->uncompressed_bytes, 1024u);
  EXPECT_TRUE(List(dest_).empty());
}

TEST_F(ApplyLayerTest, SparseFile) {
  Entry s;
  s.path = "sparse";
  s.data = std::string(4 << 20, '\0');
  std::fill_n(s.data.begin(), 4096, 'A');
  std::fill_n(s.data.begin() + (1 << 20), 4096, 'B');
  s.sparse = {{0, 4096}, {1 << 20, 4096}};
  std::string tar = BuildTar({s});
  ASSERT_LT(tar.size(), size_t{1 << 20});  // the writer really stored it sparse
  auto r = ApplyLayer(StringSource(tar), Compression::kNone, dest_);
  ASSERT_TRUE(r.ok()) << r.status();
  std::string got = Slurp(dest_ / "sparse");
  EXPECT_EQ(got.size(), s.data.size());
  EXPECT_TRUE(got == s.data);
  EXPECT_LT(Lstat(dest_ / "sparse").st_blocks * 512, 1 << 20);  // holes stayed holes
}

TEST_F(ApplyLayerTest, Utf8BinaryAndLongNames) {
  // Under a UTF-8 locale (this thread only) libarchive writes a plain UTF-8
  // pax "path" record, as Go and Python do; ApplyLayer runs in the C locale.
  const std::string utf8_name = "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt";
  locale_t utf8 = ::newlocale(LC_ALL_MASK, "C.UTF-8", locale_t{});
  ASSERT_NE(utf8, locale_t{});
  locale_t old = ::uselocale(utf8);
  std::string tar = BuildTar({File(utf8_name, "utf8")});
  ::uselocale(old);
  ::freelocale(utf8);
  ASSERT_NE(tar.find("path=" + utf8_name), std::string::npos);
  ASSERT_EQ(tar.find("hdrcharset"), std::string::npos);
  auto r = ApplyLayer(StringSource(tar), Compression::kNone, dest_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(dest_ / utf8_name), "utf8");

  // Not UTF-8 at all (libarchive marks the pax record hdrcharset=BINARY), and
  // names longer than ustar's 100/155 bytes.
  fs::path second = base_ / "second";
  ASSERT_TRUE(MakeDirs(second).ok());
  std::string long_dir(150, 'd');
  std::string long_name(200, 'n');
  r = ApplyLayer(StringSource(BuildTar(
                     {File("bin\xff\xfe", "binary"), File(long_dir + "/" + long_name, "long")})),
                 Compression::kNone, second);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Slurp(second / "bin\xff\xfe"), "binary");
  EXPECT_EQ(Slurp(second / long_dir / long_name), "long");
}

TEST_F(ApplyLayerTest, ParallelAppliesAreIndependent) {
  std::vector<std::string> tars;
  for (int i = 0; i < 4; ++i) {
    tars.push_back(Gzip(BuildTar({Dir("shared"), File("shared/layer", std::to_string(i)),
                                  File("big", std::string(2 << 20, static_cast<char>('a' + i))),
                                  Symlink("evil", "/")})));
  }
  std::vector<fs::path> dests;
  std::vector<StatusOr<ApplyResult>> results(4, InternalError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    dests.push_back(base_ / ("layer" + std::to_string(i)));
    ASSERT_TRUE(MakeDirs(dests.back()).ok());
  }
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = ApplyLayer(StringSource(tars[i]), Compression::kGzip, dests[i]); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(Slurp(dests[i] / "shared/layer"), std::to_string(i));
    EXPECT_EQ(Slurp(dests[i] / "big"), std::string(2 << 20, static_cast<char>('a' + i)));
  }
}

// Measures nothing that can fail: prints throughput for a layer of many small
// files plus one large file, and checks only correctness.
TEST_F(ApplyLayerTest, ThroughputReport) {
  std::vector<Entry> entries;
  for (int d = 0; d < 20; ++d) {
    entries.push_back(Dir("usr/share/d" + std::to_string(d)));
    for (int f = 0; f < 100; ++f) {
      entries.push_back(File("usr/share/d" + std::to_string(d) + "/f" + std::to_string(f),
                             std::string(1000 + f, 'x')));
    }
  }
  std::string big(64 << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 64) big[i] = static_cast<char>(i * 2654435761u >> 24);
  entries.push_back(File("big.bin", big));
  std::string tar = BuildTar(entries);
  std::string gz = Gzip(tar);
  auto start = std::chrono::steady_clock::now();
  auto r = ApplyLayer(StringSource(gz, 1 << 20), Compression::kGzip, dest_);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, entries.size());
  EXPECT_EQ(r->diff_id, Sha256::Of(tar));
  EXPECT_EQ(Lstat(dest_ / "big.bin").st_size, static_cast<off_t>(big.size()));
  std::printf("[ report   ] %zu entries, %.1f MiB tar (%.1f MiB gzip) in %.3f s: %.0f MiB/s\n",
              entries.size(), tar.size() / 1048576.0, gz.size() / 1048576.0, secs,
              tar.size() / 1048576.0 / secs);
  RecordProperty("uncompressed_mib_per_s", static_cast<int>(tar.size() / 1048576.0 / secs));
}

}  // namespace
}  // namespace berth::archive
