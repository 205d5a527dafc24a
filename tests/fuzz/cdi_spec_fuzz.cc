// Fuzzes the CDI spec parser (cdi/cdi_spec.h): spec files come from device
// drivers and DRA plugins, so any bytes must parse or fail without a crash,
// and a spec that parses must keep the parser's promises.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cdi/cdi_spec.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "cdi_spec: property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)berth::cdi::ParseYaml(text);
  auto spec = berth::cdi::ParseSpec(text, "fuzz.yaml");
  if (!spec.ok()) {
    Check(spec.status().code() == berth::StatusCode::kInvalidArgument,
          "errors are INVALID_ARGUMENT");
    return 0;
  }
  Check(!spec->devices.empty(), "a spec has devices");
  Check(!spec->vendor.empty() && !spec->device_class.empty(), "a spec has a kind");
  for (const auto& d : spec->devices) {
    auto q = berth::cdi::ParseQualifiedName(
        berth::cdi::QualifiedName{spec->vendor, spec->device_class, d.name}.str());
    Check(q.ok(), "every device has a valid qualified name");
    for (const auto& n : d.edits.device_nodes)
      Check(!n.path.empty() && n.path[0] == '/', "absolute device paths");
  }
  return 0;
}
