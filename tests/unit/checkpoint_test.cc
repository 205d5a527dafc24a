// The parts of a checkpoint archive that need no CRIU: the writable layer as
// rootfs-diff.tar plus deleted.files (container/rootfs_diff.h), and the
// /proc maps rewrite that lets CRIU 3.17 run on Linux 6.13+
// (criu_compat/maps_rewrite.h).
#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "common/fs.h"
#include "container/rootfs_diff.h"
#include "criu_compat/maps_rewrite.h"

namespace berth::container {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string Merge(const std::string& in) {
  size_t n = 0;
  char* out = berth_merge_vvar_vclock(in.data(), in.size(), &n);
  EXPECT_NE(out, nullptr);
  std::string s(out, n);
  std::free(out);
  return s;
}

// What Linux 6.18 shows (x86-64): [vvar], [vvar_vclock], [vdso], touching.
constexpr char kMaps618[] =
    "55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1234                       /usr/bin/cat\n"
    "7f4c4a25e000-7f4c4a262000 r--p 00000000 00:00 0                          [vvar]\n"
    "7f4c4a262000-7f4c4a264000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
    "7f4c4a264000-7f4c4a266000 r-xp 00000000 00:00 0                          [vdso]\n"
    "7ffd1e0f0000-7ffd1e111000 rw-p 00000000 00:00 0                          [stack]\n";

TEST(CriuMapsRewrite, MergesVvarVclockIntoVvar) {
  EXPECT_EQ(
      Merge(kMaps618),
      "55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1234                       /usr/bin/cat\n"
      "7f4c4a25e000-7f4c4a264000 r--p 00000000 00:00 0                          [vvar]\n"
      "7f4c4a264000-7f4c4a266000 r-xp 00000000 00:00 0                          [vdso]\n"
      "7ffd1e0f0000-7ffd1e111000 rw-p 00000000 00:00 0                          [stack]\n");
}

TEST(CriuMapsRewrite, DropsTheVclockBlockOfSmaps) {
  const std::string smaps =
      "7f4c4a25e000-7f4c4a262000 r--p 00000000 00:00 0                          [vvar]\n"
      "Size:                 16 kB\n"
      "VmFlags: rd mr pf io de dd sd \n"
      "7f4c4a262000-7f4c4a264000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
      "Size:                  8 kB\n"
      "VmFlags: rd mr pf io de dd sd \n"
      "7f4c4a264000-7f4c4a266000 r-xp 00000000 00:00 0                          [vdso]\n"
      "Size:                  8 kB\n"
      "VmFlags: rd ex mr mw me de sd \n";
  EXPECT_EQ(Merge(smaps),
            "7f4c4a25e000-7f4c4a264000 r--p 00000000 00:00 0                          [vvar]\n"
            "Size:                 16 kB\n"
            "VmFlags: rd mr pf io de dd sd \n"
            "7f4c4a264000-7f4c4a266000 r-xp 00000000 00:00 0                          [vdso]\n"
            "Size:                  8 kB\n"
            "VmFlags: rd ex mr mw me de sd \n");
}

TEST(CriuMapsRewrite, LeavesOtherLayoutsAlone) {
  // Before 6.13: no [vvar_vclock].
  const std::string old =
      "7ffc3502000-7ffc3504000 r--p 00000000 00:00 0                          [vvar]\n"
      "7ffc3504000-7ffc3506000 r-xp 00000000 00:00 0                          [vdso]\n";
  EXPECT_EQ(Merge(old), old);
  // A [vvar_vclock] not right after [vvar] stays; so does a file of that name.
  const std::string apart =
      "7f0000000000-7f0000004000 r--p 00000000 00:00 0                          [vvar]\n"
      "7f0000005000-7f0000007000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
      "7f0000008000-7f0000009000 r--p 00000000 fe:01 77                         "
      "/tmp/x[vvar_vclock]\n";
  EXPECT_EQ(Merge(apart), apart);
  EXPECT_EQ(Merge(""), "");
  EXPECT_EQ(Merge("no newline at the end"), "no newline at the end");
  // Narrow (8-digit) addresses may grow when merged.
  EXPECT_EQ(Merge("00001000-0000f000 r--p 00000000 00:00 0 [vvar]\n"
                  "0000f000-100000000 r--p 00000000 00:00 0 [vvar_vclock]\n"
                  "100000000-100002000 r-xp 00000000 00:00 0 [vdso]\n"),
            "00001000-100000000 r--p 00000000 00:00 0 [vvar]\n"
            "100000000-100002000 r-xp 00000000 00:00 0 [vdso]\n");
}

class RootfsDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-rootfs-diff-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    upper_ = dir_ / "upper";
    fs::create_directories(upper_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Entry {
    mode_t mode = 0;
    uid_t uid = 0;
    std::string data;
    std::string link;
    std::string opaque;
  };
  std::map<std::string, Entry> ReadTar(const fs::path& tar) {
    std::map<std::string, Entry> out;
    archive* a = archive_read_new();
    archive_read_support_format_all(a);
    EXPECT_EQ(archive_read_open_filename(a, tar.c_str(), 10240), ARCHIVE_OK);
    archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      Entry x;
      x.mode = archive_entry_mode(e);
      x.uid = static_cast<uid_t>(archive_entry_uid(e));
      if (const char* l = archive_entry_symlink(e)) x.link = l;
      char buf[4096];
      la_ssize_t n;
      while ((n = archive_read_data(a, buf, sizeof buf)) > 0) x.data.append(buf, n);
      archive_entry_xattr_reset(e);
      const char* name;
      const void* value;
      size_t size;
      while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (std::string(name) == "trusted.overlay.opaque") {
          x.opaque.assign(static_cast<const char*>(value), size);
        }
      }
      out[archive_entry_pathname(e)] = x;
    }
    archive_read_free(a);
    return out;
  }

  fs::path dir_, upper_;
};

TEST_F(RootfsDiffTest, ArchivesChangesAndListsWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts (mknod 0/0) and trusted xattrs need root";
  fs::create_directories(upper_ / "etc");
  ASSERT_TRUE(WriteFileAtomic(upper_ / "etc" / "motd", "changed\n", 0640).ok());
  ASSERT_EQ(::chown((upper_ / "etc" / "motd").c_str(), 1234, 4321), 0);
  fs::create_symlink("motd", upper_ / "etc" / "motd.link");
  // Deleted files: overlayfs whiteouts, character devices 0/0.
  ASSERT_EQ(::mknod((upper_ / "etc" / "passwd-").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  fs::create_directories(upper_ / "var" / "lib");
  ASSERT_EQ(::mknod((upper_ / "var" / "lib" / "gone").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  // A directory deleted and made again: opaque.
  fs::create_directories(upper_ / "data");
  ASSERT_EQ(::setxattr((upper_ / "data").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_TRUE(WriteFileAtomic(upper_ / "data" / "new", "fresh", 0644).ok());
  // A FIFO is archived; a big file is streamed whole.
  ASSERT_EQ(::mkfifo((upper_ / "fifo").c_str(), 0600), 0);
  const std::string big(3 << 20, 'b');
  ASSERT_TRUE(WriteFileAtomic(upper_ / "big", big, 0600).ok());

  const fs::path tar = dir_ / "rootfs-diff.tar";
  StatusOr<RootfsDiff> diff = WriteRootfsDiff(upper_, tar);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_THAT(diff->deleted, ElementsAre("/etc/passwd-", "/var/lib/gone"));
  EXPECT_THAT(diff->opaque, ElementsAre("/data"));
  EXPECT_EQ(DeletedFilesJson(diff->deleted), R"(["/etc/passwd-","/var/lib/gone"])");

  std::map<std::string, Entry> entries = ReadTar(tar);
  std::vector<std::string> names;
  for (const auto& [n, _] : entries) names.push_back(n);
  EXPECT_THAT(names, ElementsAre("big", "data/", "data/new", "etc/", "etc/motd", "etc/motd.link",
                                 "fifo", "var/", "var/lib/"));
  EXPECT_EQ(diff->entries, names.size());
  EXPECT_EQ(entries["etc/motd"].data, "changed\n");
  EXPECT_EQ(entries["etc/motd"].mode, S_IFREG | 0640);
  EXPECT_EQ(entries["etc/motd"].uid, 1234u);
  EXPECT_EQ(entries["etc/motd.link"].link, "motd");
  EXPECT_EQ(entries["data/"].opaque, "y");
  EXPECT_EQ(entries["data/new"].data, "fresh");
  EXPECT_TRUE(S_ISFIFO(entries["fifo"].mode));
  EXPECT_EQ(entries["big"].data.size(), big.size());
  EXPECT_EQ(entries["big"].data, big);
}

TEST_F(RootfsDiffTest, AbsentOrEmptyUpperIsAnEmptyArchive) {
  for (const fs::path& upper : {upper_, dir_ / "absent"}) {
    const fs::path tar = dir_ / "empty.tar";
    StatusOr<RootfsDiff> diff = WriteRootfsDiff(upper, tar);
    ASSERT_TRUE(diff.ok()) << diff.status().ToString();
    EXPECT_EQ(diff->entries, 0u);
    EXPECT_THAT(diff->deleted, IsEmpty());
    EXPECT_THAT(ReadTar(tar), IsEmpty());
    EXPECT_EQ(DeletedFilesJson(diff->deleted), "[]");
  }
}

TEST_F(RootfsDiffTest, UnwritableTarIsAnError) {
  StatusOr<RootfsDiff> diff = WriteRootfsDiff(upper_, dir_ / "no-such-dir" / "x.tar");
  EXPECT_FALSE(diff.ok());
  EXPECT_THAT(std::string(diff.status().message()), ::testing::HasSubstr("no-such-dir"));
}

}  // namespace
}  // namespace berth::container
