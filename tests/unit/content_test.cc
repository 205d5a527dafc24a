#include <gtest/gtest.h>

#include "content/content_store.h"

namespace berth::content {
namespace {

class ContentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("berth-content-" + RandomHex(4));
    store_ = std::make_unique<ContentStore>(dir_);
    ASSERT_TRUE(store_->Init().ok());
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  size_t IngestFiles() {
    return std::distance(std::filesystem::directory_iterator(dir_ / "ingest"),
                         std::filesystem::directory_iterator());
  }
  std::filesystem::path dir_;
  std::unique_ptr<ContentStore> store_;
};

TEST_F(ContentTest, WriteVerifyAndRead) {
  Digest d = Sha256::Of("hello world");
  auto w = store_->NewWriter(d, 11);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("hello ", 6).ok());
  EXPECT_FALSE(store_->Exists(d));  // not visible before commit
  ASSERT_TRUE((*w)->Write("world", 5).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE(store_->Exists(d));
  auto data = store_->ReadBlob(d);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, "hello world");
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].size, 11u);
}

TEST_F(ContentTest, DigestMismatchStoresNothing) {
  Digest d = Sha256::Of("expected");
  {
    auto w = store_->NewWriter(d, -1);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("tampered", 8).ok());
    Status s = (*w)->Commit();
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find(d.str()), std::string::npos);
  }
  EXPECT_FALSE(store_->Exists(d));
  EXPECT_EQ(IngestFiles(), 0u);
  EXPECT_EQ(store_->ReadBlob(d).status().code(), StatusCode::kNotFound);
}

TEST_F(ContentTest, SizeMismatchRejected) {
  Digest d = Sha256::Of("abc");
  auto w = store_->NewWriter(d, 4);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("abc", 3).ok());
  EXPECT_EQ((*w)->Commit().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(store_->Exists(d));
}

TEST_F(ContentTest, InitRemovesStaleIngestAndDeleteIsIdempotent) {
  Digest d = Sha256::Of("x");
  auto w = store_->NewWriter(d, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("x", 1).ok());
  // Simulate a crash: the writer's file stays while a new store starts.
  ContentStore again(dir_);
  ASSERT_TRUE(again.Init().ok());
  EXPECT_EQ(IngestFiles(), 0u);
  ASSERT_TRUE(store_->WriteBlob(d, "x").ok());
  ASSERT_TRUE(store_->WriteBlob(d, "x").ok());  // already present
  ASSERT_TRUE(store_->Delete(d).ok());
  ASSERT_TRUE(store_->Delete(d).ok());
  EXPECT_FALSE(store_->Exists(d));
}

}  // namespace
}  // namespace berth::content
