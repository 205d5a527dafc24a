// A reader for the YAML that people hand to crictl-style tools: the client
// config file (/etc/crictl.yaml) and pod/container configs (JSON or YAML).
// It covers block mappings and sequences, plain, single- and double-quoted
// scalars, literal (|) and folded (>) blocks, one-line flow collections
// ([a, b], {k: v}), comments and a leading "---". Anchors, aliases, tags and
// multi-document streams are rejected with an error naming the line.
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
// line number.
StatusOr<nlohmann::json> ParseYaml(std::string_view text, bool resolve_scalars = true);

// Parses a config file that may be JSON or YAML, like Go's
// NewYAMLOrJSONDecoder: text whose first non-space character is '{' is JSON.
StatusOr<nlohmann::json> ParseJsonOrYaml(std::string_view text);

}  // namespace berth::ctl
