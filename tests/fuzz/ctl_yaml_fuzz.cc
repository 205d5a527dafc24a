// The YAML and JSON that people hand to berthctl (ctl/yaml_reader.h): pod and
// container configs, /etc/crictl.yaml (ctl/endpoint.h), and the durations and
// times its flags take (--timeout, logs --since).
#include <chrono>
#include <cstdint>

#include "ctl/endpoint.h"
#include "ctl/go_time.h"
#include "ctl/yaml_reader.h"
#include "fuzz/fuzz_util.h"

using berth::fuzz::AsText;
namespace ctl = berth::ctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = AsText(data, size);
  auto typed = ctl::ParseYaml(text, /*resolve_scalars=*/true);
  auto strings = ctl::ParseYaml(text, /*resolve_scalars=*/false);
  FUZZ_CHECK(typed.ok() == strings.ok(), "typing scalars changed whether the text parses");
  (void)ctl::ParseJsonOrYaml(text);

  auto config = ctl::ParseConfigFile(text);
  if (config.ok()) {
    auto settings = ctl::ResolveSettings(ctl::GlobalFlags{}, *config);
    if (settings.ok()) {
      FUZZ_CHECK(!settings->image_endpoint.empty() || settings->runtime_endpoint.empty(),
                 "image endpoint does not fall back to the runtime endpoint");
      (void)ctl::EndpointToGrpcTarget(settings->runtime_endpoint);
    }
  }
  if (size <= 64) {
    (void)ctl::ParseGoDuration(text);
    (void)ctl::ParseSinceTime(text,
                              std::chrono::system_clock::time_point(std::chrono::hours(500000)));
  }
  return 0;
}
