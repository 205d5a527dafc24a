// Outside input of the native exec path: the OCI `linux.seccomp` of a container (a Localhost
// profile is the node's file), compiled with libseccomp by oci::CompileSeccomp.
// Properties: any JSON is an error or a program, never a crash or an exception; a program is
// whole classic-BPF instructions ending in a return.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz/fuzz_util.h"
#include "oci/native_exec.h"

using berth::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto profile = nlohmann::json::parse(AsText(data, size), nullptr, false);
  if (profile.is_discarded()) return 0;
  auto compiled = berth::oci::CompileSeccomp(profile);
  if (!compiled.ok()) return 0;
  FUZZ_CHECK(!compiled->program.empty(), "an accepted profile compiled to no program");
  const uint64_t last = compiled->program.back();
  const uint16_t code = static_cast<uint16_t>(last & 0xffff);
  FUZZ_CHECK((code & 0x07) == 0x06, "the program does not end in BPF_RET (code 0x%x)", code);
  return 0;
}
