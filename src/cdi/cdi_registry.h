// Resolving CDI device names against the spec files of a set of
// directories, and applying the resulting edits to an OCI runtime spec.
//
// Spec directories are read again on every resolution (DRA drivers write
// and remove specs in /var/run/cdi while berthd runs; a directory of spec
// files is read in well under a millisecond). Later directories take
// priority over earlier ones, as in the CDI reference implementation
// (/var/run/cdi over /etc/cdi). Thread-safe: no state but the directories.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cdi/cdi_spec.h"
#include "common/status.h"

namespace berth::cdi {

// The CDI device names a container asks for: ContainerConfig.CDI_devices,
// then the values of its "cdi.k8s.io/<anything>" annotations (comma
// separated), without duplicates, in that order.
std::vector<std::string> RequestedDevices(const std::vector<std::string>& cdi_devices,
                                          const std::map<std::string, std::string>& annotations);

// The edits of `names`: for each spec involved its spec-wide edits (once),
// then each device's own. INVALID_ARGUMENT for a malformed name, NOT_FOUND
// naming every device no spec defines (and the directories searched, and
// spec files that could not be read), FAILED_PRECONDITION for a device two
// spec files of the same directory define.
StatusOr<ContainerEdits> Resolve(const std::vector<std::string>& spec_dirs,
                                 const std::vector<std::string>& names);

// Applies `edits` to an OCI runtime spec (config.json as JSON): env entries
// replace same-named ones, device nodes are added to linux.devices and
// allowed in linux.resources.devices (type and numbers read from the host
// node when the spec leaves them out), mounts are appended (a bind mount
// when the type is empty), hooks appended to their lifecycle point,
// additional gids added to process.user. NOT_FOUND naming a host device
// node that does not exist.
Status ApplyEdits(const ContainerEdits& edits, nlohmann::json& spec);

}  // namespace berth::cdi
