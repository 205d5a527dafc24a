// hosts.toml files of the registry configuration directory
// (registry/hosts.h). Paths in them are only joined, never opened here.
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "registry/hosts.h"

using berth::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto endpoints = berth::registry::ParseHostsToml(
      AsText(data, size), "/etc/berth/certs.d/registry.example", "hosts.toml");
  if (!endpoints.ok()) return 0;
  FUZZ_CHECK(!endpoints->empty(), "a hosts.toml that parses names at least one endpoint");
  for (const auto& e : *endpoints) {
    FUZZ_CHECK(e.url.starts_with("http://") || e.url.starts_with("https://"), "url %s",
               e.url.c_str());
  }
  return 0;
}
