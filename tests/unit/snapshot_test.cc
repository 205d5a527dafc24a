#include <gtest/gtest.h>

#include "common/fs.h"
#include "snapshot/layer_store.h"

namespace berth::snapshot {
namespace {

class LayerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("berth-layers-" + RandomHex(4));
    store_ = std::make_unique<LayerStore>(dir_);
    ASSERT_TRUE(store_->Init().ok());
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }
  std::filesystem::path dir_;
  std::unique_ptr<LayerStore> store_;
};

TEST_F(LayerStoreTest, CommitMakesLayerVisibleOnce) {
  Digest id = Sha256::Of("layer");
  auto tmp = store_->NewTempDir();
  ASSERT_TRUE(tmp.ok());
  ASSERT_TRUE(WriteFileAtomic(*tmp / "f", "data").ok());
  EXPECT_FALSE(store_->Has(id));
  ASSERT_TRUE(store_->Commit(*tmp, id).ok());
  EXPECT_TRUE(store_->Has(id));
  EXPECT_EQ(*ReadFile(store_->LayerDir(id) / "f"), "data");
  // A second pull of the same layer loses the race harmlessly.
  auto tmp2 = store_->NewTempDir();
  ASSERT_TRUE(tmp2.ok());
  ASSERT_TRUE(WriteFileAtomic(*tmp2 / "f", "data").ok());
  ASSERT_TRUE(store_->Commit(*tmp2, id).ok());
  EXPECT_FALSE(std::filesystem::exists(*tmp2));
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(LayerStoreTest, RemoveIsIdempotentAndInitCleansTemp) {
  Digest id = Sha256::Of("x");
  auto tmp = store_->NewTempDir();
  ASSERT_TRUE(tmp.ok());
  ASSERT_TRUE(store_->Commit(*tmp, id).ok());
  ASSERT_TRUE(store_->Remove(id).ok());
  ASSERT_TRUE(store_->Remove(id).ok());
  EXPECT_FALSE(store_->Has(id));
  auto stale = store_->NewTempDir();
  ASSERT_TRUE(stale.ok());
  LayerStore again(dir_);
  ASSERT_TRUE(again.Init().ok());
  EXPECT_FALSE(std::filesystem::exists(*stale));
}

TEST_F(LayerStoreTest, LowerDirOptionIsTopFirst) {
  Digest a = Sha256::Of("a"), b = Sha256::Of("b");
  EXPECT_EQ(store_->LowerDirOption({a, b}),
            store_->LayerDir(b).string() + ":" + store_->LayerDir(a).string());
}

}  // namespace
}  // namespace berth::snapshot
