// What registries and users hand the registry client about credentials
// (registry/auth.h): WWW-Authenticate challenges, Docker config.json files
// and the base64 inside them. The first byte picks the parser, so that one
// corpus holds all three kinds of input:
//   'c' challenge header, 'j' config.json, anything else: base64 text.
// Property: base64 decoding inverts encoding.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "registry/auth.h"

using berth::fuzz::AsText;
namespace registry = berth::registry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char kind = static_cast<char>(data[0]);
  std::string_view text = AsText(data + 1, size - 1);
  if (kind == 'c') {
    for (const auto& c : registry::ParseAuthChallenges(text)) {
      FUZZ_CHECK(!c.scheme.empty(), "empty scheme");
      (void)c.param("realm");
    }
    return 0;
  }
  if (kind == 'j') {
    for (std::string_view host :
         {"docker.io", "127.0.0.1:5000", "registry-1.docker.io", "[::1]:5000", ""}) {
      auto found = registry::ParseDockerConfig(text, host, "config.json");
      if (found.ok() && found->has_value()) (void)registry::ResolveBasicCredentials(**found);
    }
    return 0;
  }
  auto decoded = berth::Base64Decode(text);
  if (decoded) {
    registry::AuthConfig auth;
    auth.auth = std::string(text);
    (void)registry::ResolveBasicCredentials(auth);
  }
  std::string encoded = berth::Base64Encode(text);
  auto back = berth::Base64Decode(encoded);
  FUZZ_CHECK(back.has_value() && *back == text, "base64 of %zu bytes does not decode back",
             text.size());
  return 0;
}
