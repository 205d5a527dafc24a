// DeferredRemover on a real filesystem: a discarded tree leaves its place at
// once and is deleted by the worker; leftovers of a crash are deleted by the
// next instance; a detached mount leaves the mount table at once and its
// file system is released by the worker.
#include "container/deferred_remover.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>

#include "common/fs.h"

namespace berth::container {
namespace {

namespace fs = std::filesystem;

class DeferredRemoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / StrCat("berth-trash-test-", RandomHex(4));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A tree of `files` files in two levels.
  fs::path MakeTree(const std::string& name, int files) {
    const fs::path root = dir_ / name;
    fs::create_directories(root / "sub");
    for (int i = 0; i < files; ++i)
      std::ofstream(root / (i % 2 ? "sub" : ".") / StrCat("f", i)) << i;
    return root;
  }

  static size_t Entries(const fs::path& dir) {
    size_t n = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it)
      ++n;
    return n;
  }

  // Whether `path` is a mount point in this process's mount table.
  static bool Mounted(const fs::path& path) {
    auto text = ReadFile("/proc/self/mountinfo");
    if (!text.ok()) return false;
    const std::string needle = StrCat(" ", path.string(), " ");
    return text->find(needle) != std::string::npos;
  }

  fs::path dir_;
};

TEST_F(DeferredRemoverTest, DiscardMovesTheTreeAwayAndTheWorkerDeletesIt) {
  const fs::path trash = dir_ / "trash";
  DeferredRemover remover({trash});
  const fs::path tree = MakeTree("bundle", 200);
  ASSERT_TRUE(remover.Discard(tree).ok());
  EXPECT_FALSE(fs::exists(tree));
  remover.Flush();
  EXPECT_EQ(Entries(trash), 0u);
  // Missing paths are fine (RemoveContainer is idempotent).
  EXPECT_TRUE(remover.Discard(dir_ / "never-there").ok());
}

TEST_F(DeferredRemoverTest, LeftoversOfACrashAreDeletedByTheNextInstance) {
  const fs::path trash = dir_ / "trash";
  fs::create_directories(trash);
  fs::rename(MakeTree("a", 10), trash / "a-1234");
  fs::rename(MakeTree("b", 10), trash / "b-5678");
  {
    DeferredRemover remover({trash});
    remover.Flush();
    EXPECT_EQ(Entries(trash), 0u);
  }
  EXPECT_TRUE(fs::exists(trash));
}

TEST_F(DeferredRemoverTest, QueuedTreesAreDeletedBeforeTheDestructorReturns) {
  const fs::path trash = dir_ / "trash";
  {
    DeferredRemover remover({trash});
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(remover.Discard(MakeTree(StrCat("t", i), 50)).ok());
  }
  EXPECT_EQ(Entries(trash), 0u);
}

// What RemoveContainer does with a container's rootfs: the overlay is out of
// the mount table when DetachMount returns, what was written through it is in
// the upper directory, and the layer discarded after it is deleted by the
// worker once the mount's last reference is gone.
TEST_F(DeferredRemoverTest, DetachedOverlayLeavesTheMountTableAtOnce) {
  const fs::path trash = dir_ / "trash";
  const fs::path layer = dir_ / "layer";
  const fs::path merged = dir_ / "rootfs";
  for (const char* d : {"lower", "upper", "work"}) fs::create_directories(layer / d);
  fs::create_directories(merged);
  const std::string opts =
      StrCat("lowerdir=", (layer / "lower").string(), ",upperdir=", (layer / "upper").string(),
             ",workdir=", (layer / "work").string());
  ASSERT_EQ(::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()), 0) << errno;
  std::ofstream(merged / "written") << "by the container";
  ASSERT_TRUE(Mounted(merged));

  DeferredRemover remover({trash});
  Status s = remover.DetachMount(merged);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(Mounted(merged));
  EXPECT_TRUE(fs::exists(layer / "upper" / "written"));
  ASSERT_TRUE(remover.Discard(layer).ok());
  remover.Flush();
  EXPECT_FALSE(fs::exists(layer));
  EXPECT_EQ(Entries(trash), 0u);
  // Not (or no longer) a mount point, or missing: nothing to do.
  EXPECT_TRUE(remover.DetachMount(merged).ok());
  EXPECT_TRUE(remover.DetachMount(dir_ / "never-there").ok());
  EXPECT_TRUE(fs::exists(merged));
}

}  // namespace
}  // namespace berth::container
