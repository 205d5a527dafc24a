// Container Device Interface (CDI) specs: the JSON or YAML files that device
// vendors and Dynamic Resource Allocation drivers put in /etc/cdi and
// /var/run/cdi to say what a device means for a container (device nodes,
// environment, mounts, hooks, extra groups). Parsing and validation are pure
// functions of the file's text; spec versions 0.3.0 to 1.0.0 are accepted.
//
// Everything here is a plain value: copyable, thread-compatible.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::cdi {

struct DeviceNode {
  std::string path;       // in the container
  std::string host_path;  // empty: same as path
  std::string type;       // "c", "b", "u", "p"; empty: from the host node
  std::optional<int64_t> major, minor;
  std::optional<uint32_t> file_mode;
  std::string permissions;  // cgroup access, subset of "rwm"; empty: "rwm"
  std::optional<uint32_t> uid, gid;
};

struct MountEdit {
  std::string host_path, container_path;
  std::string type;  // empty: a bind mount
  std::vector<std::string> options;
};

// An OCI hook; hook_name is one of the OCI lifecycle points.
struct HookEdit {
  std::string hook_name;  // prestart, createRuntime, createContainer, startContainer,
                          // poststart, poststop
  std::string path;
  std::vector<std::string> args, env;
  std::optional<int64_t> timeout;
};

struct ContainerEdits {
  std::vector<std::string> env;  // "KEY=value"
  std::vector<DeviceNode> device_nodes;
  std::vector<MountEdit> mounts;
  std::vector<HookEdit> hooks;
  std::vector<uint32_t> additional_gids;

  // Appends everything of `other`.
  void Append(const ContainerEdits& other);
  bool empty() const;
};

struct Device {
  std::string name;  // unqualified: "gpu0"
  ContainerEdits edits;
};

struct Spec {
  std::string version;  // cdiVersion
  std::string vendor;   // kind = vendor/class
  std::string device_class;
  std::vector<Device> devices;
  ContainerEdits edits;  // applied once for any device of the spec
};

// A fully qualified device name "vendor.com/class=name".
struct QualifiedName {
  std::string vendor, device_class, name;
  std::string str() const;
};

// Parses "vendor/class=name"; INVALID_ARGUMENT saying what is wrong.
StatusOr<QualifiedName> ParseQualifiedName(std::string_view name);

// YAML (1.1 as Go's yaml.v2 reads it, which the CDI tools use) into JSON:
// plain scalars become null, booleans, integers (0x, 0o, 0 prefixes) or
// floats, quoted ones stay strings. One document; anchors and aliases are
// refused; nesting deeper than 64 is refused. INVALID_ARGUMENT naming the
// line otherwise.
StatusOr<nlohmann::json> ParseYaml(std::string_view text);

// Parses and validates a spec file's text, JSON when it starts with '{',
// else YAML. `origin` (the file name) prefixes every error.
StatusOr<Spec> ParseSpec(std::string_view text, std::string_view origin);

}  // namespace berth::cdi
