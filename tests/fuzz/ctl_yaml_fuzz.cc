// The YAML and JSON that people hand to berthctl (ctl/yaml_reader.h): pod and
// container configs and /etc/crictl.yaml.
#include <cstdint>

#include "ctl/yaml_reader.h"
#include "fuzz/fuzz_util.h"

using berth::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = AsText(data, size);
  auto typed = berth::ctl::ParseYaml(text, /*resolve_scalars=*/true);
  auto strings = berth::ctl::ParseYaml(text, /*resolve_scalars=*/false);
  FUZZ_CHECK(typed.ok() == strings.ok(), "typing scalars changed whether the text parses");
  (void)berth::ctl::ParseJsonOrYaml(text);
  return 0;
}
