// What CNI gives berthd: plugin results (also read back from the result
// cache) and network configuration files (network/cni.h, cni_config.h).
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "network/cni.h"
#include "network/cni_config.h"

using berth::fuzz::AsText;
namespace network = berth::network;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = AsText(data, size);
  auto result = network::ParseCniResult(text, "eth0");
  if (result.ok() && result->ip.empty()) {
    FUZZ_CHECK(result->additional_ips.empty(), "additional ips without a first one");
  }
  for (const char* file : {"/etc/cni/net.d/10-fuzz.conflist", "/etc/cni/net.d/10-fuzz.conf"}) {
    auto list = network::ParseNetworkConfig(file, text);
    if (list.ok()) FUZZ_CHECK(!list->plugin_types.empty(), "a network without plugins");
  }
  return 0;
}
