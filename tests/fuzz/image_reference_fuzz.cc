// Image references as users and kubelets type them (image/reference.h).
// Property: a parsed reference is normal, so printing and parsing it again
// gives the same reference.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "image/manifest.h"
#include "image/reference.h"

using berth::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = AsText(data, size);
  (void)berth::image::LooksLikeImageId(text);
  (void)berth::image::ParsePlatform(text);
  auto ref = berth::image::ParseReference(text);
  if (!ref.ok()) return 0;
  FUZZ_CHECK(!ref->domain.empty() && !ref->repository.empty(), "input \"%s\"",
             std::string(text).c_str());
  FUZZ_CHECK(!ref->tag.empty() || ref->digest.has_value(), "input \"%s\"",
             std::string(text).c_str());
  std::string printed = ref->String();
  auto again = berth::image::ParseReference(printed);
  FUZZ_CHECK(again.ok(), "input \"%s\" printed as \"%s\", which does not parse: %s",
             std::string(text).c_str(), printed.c_str(), again.status().ToString().c_str());
  FUZZ_CHECK(*again == *ref, "input \"%s\" printed as \"%s\" parses differently",
             std::string(text).c_str(), printed.c_str());
  FUZZ_CHECK(again->String() == printed, "\"%s\" prints as \"%s\"", printed.c_str(),
             again->String().c_str());
  if (!ref->tag.empty()) (void)ref->TagRef();
  return 0;
}
