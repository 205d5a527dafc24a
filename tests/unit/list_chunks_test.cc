// Chunking of the Stream* list RPCs on lists as large as a busy node's: every item exactly
// once, in order, each chunk within the limit and under gRPC's default 4 MiB receive limit.
// The CRI header comes first: see server/signals.h.
#include "runtime/v1/api.pb.h"
// (blank line keeps clang-format from reordering)

#include <gtest/gtest.h>

#include <string>

#include "server/list_chunks.h"

namespace berth::server {
namespace {

namespace v1 = ::runtime::v1;

// Checks what the server promises about `ranges` over `items`; returns the chunk count.
template <typename Item, typename Resp>
size_t CheckChunks(const google::protobuf::RepeatedPtrField<Item>& items,
                   google::protobuf::RepeatedPtrField<Item>* (Resp::*field)()) {
  std::vector<std::pair<size_t, size_t>> ranges = ChunkRanges(items);
  size_t next = 0;
  for (const auto& [begin, end] : ranges) {
    EXPECT_EQ(begin, next) << "gap or overlap";
    EXPECT_LT(begin, end) << "empty chunk";
    Resp chunk;
    for (size_t i = begin; i < end; ++i) *(chunk.*field)()->Add() = items[static_cast<int>(i)];
    const size_t wire = chunk.ByteSizeLong();
    if (end - begin > 1) {
      EXPECT_LE(wire, kListChunkBytes);
    }
    EXPECT_LT(wire, size_t{4} << 20);
    next = end;
  }
  EXPECT_EQ(next, static_cast<size_t>(items.size()));
  return ranges.size();
}

TEST(ListChunks, FiveThousandImages) {
  google::protobuf::RepeatedPtrField<v1::Image> images;
  size_t total = 0;
  for (int i = 0; i < 5000; ++i) {
    v1::Image* img = images.Add();
    img->set_id("sha256:" + std::string(64, static_cast<char>('a' + i % 6)));
    for (int t = 0; t < 20; ++t) {
      img->add_repo_tags("registry.example.com/team-" + std::to_string(i) + "/app:v" +
                         std::to_string(t));
    }
    img->add_repo_digests("registry.example.com/team-" + std::to_string(i) +
                          "/app@sha256:" + std::string(64, '0'));
    img->set_size(1000000 + i);
    total += EncodedFieldSize(*img);
  }
  ASSERT_GT(total, size_t{4} << 20) << "the list must be larger than one default message";
  size_t chunks = CheckChunks(images, &v1::StreamImagesResponse::mutable_images);
  EXPECT_GE(chunks, total / kListChunkBytes);
}

TEST(ListChunks, TwoThousandContainers) {
  google::protobuf::RepeatedPtrField<v1::Container> containers;
  for (int i = 0; i < 2000; ++i) {
    v1::Container* c = containers.Add();
    c->set_id(std::string(64, static_cast<char>('0' + i % 10)));
    c->set_pod_sandbox_id(std::string(64, 'f'));
    c->mutable_metadata()->set_name("container-" + std::to_string(i));
    c->mutable_image()->set_image("registry.example.com/app:v1");
    c->set_image_ref("sha256:" + std::string(64, 'c'));
    for (int l = 0; l < 20; ++l) {
      (*c->mutable_labels())["label-" + std::to_string(l)] = std::string(80, 'x');
      (*c->mutable_annotations())["annotation-" + std::to_string(l)] = std::string(200, 'y');
    }
  }
  EXPECT_GT(CheckChunks(containers, &v1::StreamContainersResponse::mutable_containers), 5u);
}

TEST(ListChunks, EmptyListHasNoChunk) { EXPECT_TRUE(ChunkRanges(std::vector<size_t>{}).empty()); }

TEST(ListChunks, AnItemLargerThanTheLimitIsAChunkOfItsOwn) {
  auto ranges = ChunkRanges(std::vector<size_t>{10, 50, 10, 10}, 30);
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[0], std::make_pair(size_t{0}, size_t{1}));
  EXPECT_EQ(ranges[1], std::make_pair(size_t{1}, size_t{2}));
  EXPECT_EQ(ranges[2], std::make_pair(size_t{2}, size_t{4}));
}

TEST(ListChunks, EncodedFieldSizeMatchesTheWire) {
  v1::StreamImagesResponse one;
  v1::Image* img = one.add_images();
  img->set_id(std::string(300, 'z'));  // a two-byte length prefix
  EXPECT_EQ(EncodedFieldSize(*img), one.ByteSizeLong());
}

}  // namespace
}  // namespace berth::server
