// Berth's RuntimeDefault seccomp profile: the same effect as the default
// profile of moby/containerd (deny with EPERM, allow a long list of syscalls,
// more when the container holds certain capabilities), rendered as an OCI
// linux.seccomp object for one host architecture and capability set.
// Pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace berth::oci {

struct KernelVersion {
  int major = 0;  // 0.0 = unknown: rules with a minimum kernel are kept
  int minor = 0;
};

// `arch` is a Go architecture name ("amd64", "arm64", "386", "arm", "ppc64le",
// "s390x", "riscv64", ...); it selects the native + compat seccomp arches and
// the arch-specific rules. `capabilities` are the container's bounding set
// ("CAP_SYS_ADMIN", ...); rules conditional on capabilities follow it.
nlohmann::json DefaultSeccompProfile(const std::vector<std::string>& capabilities,
                                     std::string_view arch = "amd64", KernelVersion kernel = {});

}  // namespace berth::oci
