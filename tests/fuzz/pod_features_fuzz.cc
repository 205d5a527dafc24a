// Outside input of image volumes and user namespaces: Mount.image_sub_path and the kubelet's
// ID mappings (container/image_volume.h, common/userns.h).
// Properties: an accepted sub path is relative and has no ".." component; accepted mappings
// do not overlap, and MapToHost of every mapped container ID lands in that mapping's host range.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/userns.h"
#include "container/image_volume.h"
#include "fuzz/fuzz_util.h"

using berth::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = AsText(data, size);
  if (berth::container::ValidateImageSubPath(text).ok()) {
    FUZZ_CHECK(text.empty() || text.front() != '/', "accepted absolute \"%s\"",
               std::string(text).c_str());
    std::string padded = "/" + std::string(text) + "/";
    FUZZ_CHECK(padded.find("/../") == std::string::npos, "accepted \"%s\" with ..",
               std::string(text).c_str());
  }
  // The same bytes as mapping lines of three 32-bit numbers.
  std::vector<berth::IdMapping> maps;
  for (size_t off = 0; off + 12 <= size && maps.size() < 400; off += 12) {
    berth::IdMapping m;
    std::memcpy(&m.container_id, data + off, 4);
    std::memcpy(&m.host_id, data + off + 4, 4);
    std::memcpy(&m.length, data + off + 8, 4);
    maps.push_back(m);
  }
  if (berth::ValidateIdMappings(maps, "uid").ok()) {
    for (const auto& m : maps) {
      for (uint64_t probe : {uint64_t{0}, uint64_t{m.length} - 1, uint64_t{m.length} / 2}) {
        const uint32_t id = static_cast<uint32_t>(m.container_id + probe);
        FUZZ_CHECK(berth::MapToHost(maps, id) == int64_t{m.host_id} + static_cast<int64_t>(probe),
                   "container id %u maps wrongly", id);
      }
    }
  }
  return 0;
}
