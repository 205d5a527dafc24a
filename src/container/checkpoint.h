// Forensic container checkpoints (CRI CheckpointContainer, Kubernetes'
// ContainerCheckpoint): the OCI runtime's `checkpoint --leave-running`,
// which drives CRIU, dumps the running container's processes; the CRIU
// image files and the container's spec and record go into one tar archive
// at the requested location. The container keeps running.
//
// Archive layout (what CRI-O and containerd write):
//   checkpoint/      CRIU's image files (inventory.img, core-*.img, pages-*.img ...)
//   config.dump      the container record (JSON)
//   spec.dump        the OCI runtime spec (config.json)
//   rootfs-diff.tar  the writable layer: what the container added or changed
//   deleted.files    what it deleted (JSON array of paths), when anything
//   dump.log         CRIU's log of the dump
//
// Debian 12's CRIU 3.17 fails `criu check` on Linux 6.13 and later for the
// kernel's [vvar_vclock] area; where it passes with Berth's compatibility
// shim preloaded (src/criu_compat/), CRIU runs with it.
//
// Free functions; the caller serialises operations on one container.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::container {

// How CRIU is to run on this host.
struct CriuSetup {
  // Environment additions for CRIU (LD_PRELOAD of the compatibility shim),
  // empty when plain `criu check` passes.
  std::vector<std::string> env;
};

// OK when `criu` is installed and `criu check` passes on this host, as it
// is or, when it fails for the vDSO layout of Linux 6.13+, with the
// compatibility library `compat_library` (if not empty) preloaded;
// otherwise FAILED_PRECONDITION saying why, in CRIU's own words.
StatusOr<CriuSetup> CheckCriu(const std::string& compat_library);

struct CheckpointRequest {
  std::string container_id;
  std::string runtime_binary;             // runc (crun takes the same arguments)
  std::vector<std::string> runtime_args;  // --root ... and other global arguments
  std::string bundle;                     // holds config.json
  std::string record_json;                // the container record, for config.dump
  std::filesystem::path work_dir;         // scratch directory, removed afterwards
  std::string location;                   // absolute path of the archive to write
  std::filesystem::path rootfs_upper;     // the overlay upper directory (writable layer)
  std::string criu_compat_library;        // libberth-criu-compat.so, or empty
};

// Checkpoints the running container and writes the archive atomically (a
// temporary file renamed into place). INVALID_ARGUMENT for a location that
// is not absolute or whose directory does not exist.
Status WriteCheckpoint(const CheckpointRequest& req);

}  // namespace berth::container
