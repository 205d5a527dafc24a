// The YAML that people hand to crictl-style tools: the client config file
// (/etc/crictl.yaml) and pod/container configs (JSON or YAML), read with
// libyaml (common/yaml.h) and typed the way crictl's yaml.v2 types plain
// scalars. Anchors, aliases, duplicate keys and multi-document streams are
// rejected with an error naming the line and column.
//
// Pure functions, thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace berth::ctl {

// Parses `text` into a JSON value. With `resolve_scalars`, plain scalars are
// typed the way yaml.v2 types them (null, ~, true/false/yes/no/on/off,
// integers, floats); otherwise every scalar stays a string (an empty value is
// ""). An empty document yields null. Errors are InvalidArgument and name the
// line and column.
StatusOr<nlohmann::json> ParseYaml(std::string_view text, bool resolve_scalars = true);

// Parses a config file that may be JSON or YAML, like Go's
// NewYAMLOrJSONDecoder: text whose first non-space character is '{' is JSON.
StatusOr<nlohmann::json> ParseJsonOrYaml(std::string_view text);

}  // namespace berth::ctl
