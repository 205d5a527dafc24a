// How the Stream* list RPCs cut a list into messages: consecutive items, in
// order, each exactly once, every chunk at least one item and at most
// kListChunkBytes on the wire unless a single item is larger. Far below
// gRPC's default 4 MiB receive limit of any client, so a node with many
// thousand containers or images never hits a message size limit, which the
// List* twins can. Pure; thread-safe.
#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include <cstddef>
#include <utility>
#include <vector>

namespace berth::server {

inline constexpr size_t kListChunkBytes = 1 << 20;

// [begin, end) index ranges of the chunks of items whose encoded sizes (as
// fields of the response: item bytes plus tag and length) are `sizes`.
// Empty when there are no items.
std::vector<std::pair<size_t, size_t>> ChunkRanges(const std::vector<size_t>& sizes,
                                                   size_t max_bytes = kListChunkBytes);

// The encoded size of `item` as an element of a repeated message field.
template <typename Item>
size_t EncodedFieldSize(const Item& item) {
  const size_t n = item.ByteSizeLong();
  size_t varint = 1;
  for (size_t v = n; v >= 0x80; v >>= 7) ++varint;
  return 1 + varint + n;  // field numbers below 16 take one tag byte
}

template <typename Item>
std::vector<std::pair<size_t, size_t>> ChunkRanges(
    const google::protobuf::RepeatedPtrField<Item>& items, size_t max_bytes = kListChunkBytes) {
  std::vector<size_t> sizes;
  sizes.reserve(items.size());
  for (const Item& i : items) sizes.push_back(EncodedFieldSize(i));
  return ChunkRanges(sizes, max_bytes);
}

}  // namespace berth::server
