// Reading files inside a container's rootfs without following its symlinks
// out of it: image content is hostile, and /etc/passwd may be a symlink to
// the host's /etc/shadow.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"

namespace berth {

// Reads `rel` (e.g. "etc/passwd") resolved as if `root` were "/"
// (openat2 RESOLVE_IN_ROOT). NOT_FOUND when absent. At most `max_bytes`.
StatusOr<std::string> ReadFileInRoot(const std::filesystem::path& root, std::string_view rel,
                                     size_t max_bytes = 4 << 20);

}  // namespace berth
