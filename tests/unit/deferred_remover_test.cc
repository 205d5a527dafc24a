// DeferredRemover on a real filesystem: a discarded tree leaves its place at
// once and is deleted by the worker; leftovers of a crash are deleted by the
// next instance.
#include "container/deferred_remover.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace berth::container
