// berthd's TOML configuration files (config/config.h).
// Property: the effective configuration printed by `berthd config` loads
// back into the same configuration. berthd prints only a configuration that
// validates (it refuses to start or print otherwise), so the property is
// judged on those: toml++ 3.3 prints a key holding a ' bare (`a'b = ...`),
// which does not parse, but no valid key (handler names are DNS-1123 labels)
// can hold one.
#include <cstdint>
#include <string>

#include "config/config.h"
#include "fuzz/fuzz_util.h"

using berth::fuzz::AsText;
namespace config = berth::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  config::Config cfg = config::Config::Defaults();
  if (!config::MergeToml(AsText(data, size), "fuzz.toml", cfg).ok()) return 0;
  if (!cfg.Validate().ok()) return 0;
  std::string printed = cfg.ToToml();
  config::Config again = config::Config::Defaults();
  auto s = config::MergeToml(printed, "printed.toml", again);
  FUZZ_CHECK(s.ok(), "printed config does not load: %s\n%s", s.ToString().c_str(), printed.c_str());
  FUZZ_CHECK(again.ToToml() == printed, "printed config loads differently:\n%s\n---\n%s",
             printed.c_str(), again.ToToml().c_str());
  return 0;
}
