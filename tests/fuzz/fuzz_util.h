// Small helpers shared by the fuzz targets. A property a target checks is
// asserted with FUZZ_CHECK: it prints what differed and aborts, which
// libFuzzer reports as a crash and the replay driver as a failed test.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond, ...)                                                          \
  do {                                                                                 \
    if (cond) break;                                                                   \
    std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
    std::fprintf(stderr, __VA_ARGS__);                                                 \
    std::fprintf(stderr, "\n");                                                        \
    std::abort();                                                                      \
  } while (0)

namespace berth::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace berth::fuzz
