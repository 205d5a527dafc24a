// The identity a process runs with, as the kernel reports it in
// /proc/<pid>/status: what ContainerStatus.user says of a container's init.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::container {

struct ProcessIdentity {
  uint32_t uid = 0;              // real uid
  uint32_t gid = 0;              // real gid
  std::vector<uint32_t> groups;  // supplementary groups, in the kernel's order
};

// From the text of /proc/<pid>/status ("Uid:", "Gid:" and "Groups:" lines);
// DATA_LOSS when a line is missing or malformed.
StatusOr<ProcessIdentity> ParseProcStatusIdentity(std::string_view status);

// Reads /proc/<pid>/status; NOT_FOUND when the process is gone.
StatusOr<ProcessIdentity> ReadProcessIdentity(pid_t pid);

struct ContainerRecord;
// Replaces the uid, gid and supplementary groups of a just started
// container's record with those its init really has; keeps the spec's when
// the init is already gone.
void RecordProcessIdentity(ContainerRecord& r);

}  // namespace berth::container
