#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "common/fs.h"
#include "store/metadata_store.h"

namespace berth::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("berth-store-" + RandomHex(4));
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  std::filesystem::path dir_;
};

TEST_F(StoreTest, PutGetListDelete) {
  auto db = MetadataStore::Open(dir_ / "meta.db");
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Put("images", "b", "2").ok());
  ASSERT_TRUE((*db)->Put("images", "a", std::string("1\0x", 3)).ok());
  ASSERT_TRUE((*db)->Put("other", "a", "9").ok());
  auto got = (*db)->Get("images", "a");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, std::string("1\0x", 3));
  auto list = (*db)->List("images");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first, "a");
  EXPECT_EQ((*list)[1].first, "b");
  ASSERT_TRUE((*db)->Delete("images", "a").ok());
  ASSERT_TRUE((*db)->Delete("images", "a").ok());
  auto gone = (*db)->Get("images", "a");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_F(StoreTest, BatchIsAtomicAndDurableAcrossReopen) {
  {
    auto db = MetadataStore::Open(dir_ / "meta.db");
    ASSERT_TRUE(db.ok());
    Batch b;
    b.Put("images", "x", "1");
    b.Put("names", "busybox:latest", "x");
    b.Delete("names", "absent");
    ASSERT_TRUE((*db)->Update(b).ok());
  }
  auto db = MetadataStore::Open(dir_ / "meta.db");
  ASSERT_TRUE(db.ok());
  auto v = (*db)->Get("names", "busybox:latest");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, "x");
}

// A child process writes in a loop and is SIGKILLed; every committed batch
// must be whole afterwards: keys come in pairs written in one batch.
TEST_F(StoreTest, SurvivesSigkillMidWrite) {
  ASSERT_TRUE(MakeDirs(dir_).ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto db = MetadataStore::Open(dir_ / "meta.db");
    if (!db.ok()) _exit(1);
    for (int i = 0;; ++i) {
      Batch b;
      b.Put("a", std::to_string(i), "v");
      b.Put("b", std::to_string(i), "v");
      if (!(*db)->Update(b).ok()) _exit(2);
    }
  }
  // Let it write for a while, then kill it hard.
  for (int i = 0; i < 50; ++i) usleep(2000);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto db = MetadataStore::Open(dir_ / "meta.db");
  ASSERT_TRUE(db.ok()) << db.status();
  auto a = (*db)->List("a");
  auto b = (*db)->List("b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(a->size(), 0u);
  EXPECT_EQ(a->size(), b->size());
}

// DeleteUnsynced skips only the wait for the disk: a process killed right
// after it returned leaves the record deleted, and writes after it are synced
// and kept as before.
TEST_F(StoreTest, UnsyncedDeleteSurvivesSigkill) {
  ASSERT_TRUE(MakeDirs(dir_).ok());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(ready[0]);
    auto db = MetadataStore::Open(dir_ / "meta.db");
    if (!db.ok()) _exit(1);
    if (!(*db)->Put("containers", "gone", "v").ok()) _exit(2);
    if (!(*db)->Put("containers", "kept", "v").ok()) _exit(2);
    if (!(*db)->DeleteUnsynced("containers", "gone").ok()) _exit(3);
    if (!(*db)->DeleteUnsynced("containers", "never-there").ok()) _exit(3);
    if (!(*db)->Put("containers", "after", "v").ok()) _exit(4);
    if (write(ready[1], "x", 1) != 1) _exit(5);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto db = MetadataStore::Open(dir_ / "meta.db");
  ASSERT_TRUE(db.ok()) << db.status();
  auto list = (*db)->List("containers");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first, "after");
  EXPECT_EQ((*list)[1].first, "kept");
}

}  // namespace
}  // namespace berth::store
