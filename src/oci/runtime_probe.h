// Finding out whether an OCI runtime can run containers on this host, and
// what it supports. A runtime can be installed and still unusable (crun
// refuses hybrid cgroup v1/v2 hosts), so the only reliable test is to run a
// tiny container with it: berthd does that once at start-up for each
// runtime handler and picks the default from the results.
#pragma once

#include <string>

#include "common/status.h"

namespace berth::oci {

// Optional features a runtime handler offers to pods (CRI RuntimeHandlerFeatures).
struct HandlerFeatures {
  // Mount.recursive_read_only works: the runtime knows the "rro" mount option
  // and the kernel has mount_setattr(2).
  bool recursive_read_only_mounts = false;
  // Pods in user namespaces work: the host can ID-map the layers' filesystem
  // under overlayfs and the runtime ran a container in a user namespace.
  bool user_namespaces = false;
};

struct RuntimeProbe {
  bool works = false;
  std::string error;  // why not, from the runtime's own output, when !works
  HandlerFeatures features;
  std::string user_namespaces_error;  // why not, when !features.user_namespaces
};

struct ProbeOptions {
  std::string binary;        // the runtime, e.g. /usr/bin/runc
  std::string work_dir;      // scratch space (bundle + runtime root), removed afterwards
  std::string probe_binary;  // a static program that exits 0 when run with "-v" (berth-pause)
  bool systemd_cgroup = false;
  // Also run the probe container in a new user namespace (the caller has
  // checked that the host can ID-map; the reason it cannot otherwise).
  bool try_user_namespace = false;
  std::string user_namespace_unavailable = "not probed";
};

// Runs `probe_binary -v` in a container with its own namespaces and cgroup,
// then removes everything the run created. Never fails: a runtime that
// cannot run reports works = false and its error.
RuntimeProbe ProbeRuntime(const ProbeOptions& options);

// True when the kernel implements mount_setattr(2) (Linux 5.12+).
bool KernelHasMountSetattr();

// Parses the output of `<runtime> features` (OCI runtime features JSON).
HandlerFeatures ParseRuntimeFeatures(const std::string& features_json, bool kernel_mount_setattr);

}  // namespace berth::oci
