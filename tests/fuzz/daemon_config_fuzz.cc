// berthd's TOML configuration files (config/config.h).
// Property: the effective configuration printed by `berthd config` loads
// back into the same configuration.
#include <cstdint>
#include <string>

#include "config/config.h"
#include "fuzz/fuzz_util.h"

using berth::fuzz::AsText;
namespace config = berth::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  config::Config cfg = config::Config::Defaults();
  if (!config::MergeToml(AsText(data, size), "fuzz.toml", cfg).ok()) return 0;
  (void)cfg.Validate();
  std::string printed = cfg.ToToml();
  config::Config again = config::Config::Defaults();
  auto s = config::MergeToml(printed, "printed.toml", again);
  FUZZ_CHECK(s.ok(), "printed config does not load: %s\n%s", s.ToString().c_str(), printed.c_str());
  FUZZ_CHECK(again.ToToml() == printed, "printed config loads differently:\n%s\n---\n%s",
             printed.c_str(), again.ToToml().c_str());
  return 0;
}
