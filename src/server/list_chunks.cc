#include "server/list_chunks.h"

namespace berth::server {

std::vector<std::pair<size_t, size_t>> ChunkRanges(const std::vector<size_t>& sizes,
                                                   size_t max_bytes) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > begin && bytes + sizes[i] > max_bytes) {
      out.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += sizes[i];
  }
  if (begin < sizes.size()) out.emplace_back(begin, sizes.size());
  return out;
}

}  // namespace berth::server
