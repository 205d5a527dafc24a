// The /proc maps rewrite preloaded into CRIU (src/criu_compat/maps_rewrite.h):
// any text in, a buffer no longer than the input plus 16 out, and text
// without a [vvar_vclock] directly after [vvar] unchanged.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "criu_compat/maps_rewrite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t n = 0;
  char* out = berth_merge_vvar_vclock(reinterpret_cast<const char*>(data), size, &n);
  if (out == nullptr) return 0;
  if (n > size + 16) std::abort();
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.find("[vvar_vclock]") == std::string_view::npos &&
      (n != size || std::memcmp(out, data, size) != 0)) {
    std::abort();
  }
  std::free(out);
  return 0;
}
