// Forensic container checkpoints (CRI CheckpointContainer, Kubernetes'
// ContainerCheckpoint): the OCI runtime's `checkpoint --leave-running`,
// which drives CRIU, dumps the running container's processes; the CRIU
// image files and the container's spec and record go into one tar archive
// at the requested location. The container keeps running.
//
// Archive layout (what CRI-O and containerd write, the parts Berth has):
//   checkpoint/      CRIU's image files (inventory.img, core-*.img, pages-*.img ...)
//   config.dump      the container record (JSON)
//   spec.dump        the OCI runtime spec (config.json)
//   dump.log         CRIU's log of the dump
//
// Free functions; the caller serialises operations on one container.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::container {

// OK when `criu` is installed and `criu check` passes on this host;
// otherwise FAILED_PRECONDITION saying why, in CRIU's own words.
Status CheckCriu();

struct CheckpointRequest {
  std::string container_id;
  std::string runtime_binary;             // runc (crun takes the same arguments)
  std::vector<std::string> runtime_args;  // --root ... and other global arguments
  std::string bundle;                     // holds config.json
  std::string record_json;                // the container record, for config.dump
  std::filesystem::path work_dir;         // scratch directory, removed afterwards
  std::string location;                   // absolute path of the archive to write
};

// Checkpoints the running container and writes the archive atomically (a
// temporary file renamed into place). INVALID_ARGUMENT for a location that
// is not absolute or whose directory does not exist.
Status WriteCheckpoint(const CheckpointRequest& req);

}  // namespace berth::container
