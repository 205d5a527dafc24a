// YAML text exactly as crictl prints it: crictl converts its JSON to YAML
// with sigs.k8s.io/yaml (JSONToYAML), which decodes the JSON and re-encodes it
// with gopkg.in/yaml.v2. That encoder's choices are reproduced here: mapping
// keys in yaml.v2's "natural" order, block style with sequences not indented
// under their key, "{}" and "[]" for empty collections, plain scalars where
// they would read back as the same string and quotes otherwise, literal
// blocks for multi-line strings, and folding of long scalars at spaces past
// column 80.
//
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::ctl {

// Converts one JSON document into YAML. The result ends with one newline.
// Fails (InvalidArgument) when `text` is not valid JSON.
StatusOr<std::string> JsonToYaml(std::string_view text);

// yaml.v2's ordering of string mapping keys: runs of digits compare by value,
// letters sort after non-letters. Exposed for tests.
bool YamlKeyLess(std::string_view a, std::string_view b);

// How yaml.v2 types an unquoted scalar (its resolve()).
enum class YamlScalarKind { kString, kNull, kBool, kInt, kFloat, kTimestamp };
YamlScalarKind ResolvePlainScalar(std::string_view s);

// True when yaml.v2 writes `s` as a plain (unquoted) scalar in block context,
// i.e. it would not read back as null, bool, number or timestamp and has no
// indicator characters in the wrong place. Exposed for tests.
bool YamlPlainAllowed(std::string_view s);

}  // namespace berth::ctl
