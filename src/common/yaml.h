// YAML (libyaml's parser) read into JSON values, for the YAML that people
// hand to Berth: CDI specs (cdi/cdi_spec.h), berthctl's pod and container
// configs and /etc/crictl.yaml (ctl/yaml_reader.h). Each caller types plain
// scalars its own way (yaml.v2's rules differ slightly between the tools
// whose files they read); quoted and block scalars always stay strings.
//
// One document; anchors and aliases are refused (no Berth input needs them,
// and they make "billion laughs" documents cheap); nesting deeper than 64
// is refused. Mapping keys are the string form of their typed value, as
// sigs.k8s.io/yaml makes them.
//
// Pure functions, thread-safe. Link berth_yaml.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth {

// The JSON value of a plain (unquoted) scalar.
using YamlPlainResolver = std::function<nlohmann::json(const std::string& plain)>;

struct YamlReadOptions {
  // Types plain scalars; null: they stay strings.
  YamlPlainResolver resolve_plain;
  // A key given twice in one mapping is an error; else the last one wins
  // (yaml.v2's non-strict decoding, which CDI tools use).
  bool reject_duplicate_keys = false;
};

// Parses `text` into a JSON value. An empty document is null. Errors are
// INVALID_ARGUMENT: "YAML line L, column C: <what>".
StatusOr<nlohmann::json> YamlToJson(std::string_view text, const YamlReadOptions& options = {});

}  // namespace berth
