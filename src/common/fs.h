// Small filesystem helpers. Every error names the path it is about.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

Status MakeDirs(const std::filesystem::path& dir, mode_t mode = 0755);
StatusOr<std::string> ReadFile(const std::filesystem::path& path);
// Writes to a temporary file beside `path`, fsyncs it and renames it over
// `path`, so readers see either the old or the new content, even after SIGKILL.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       mode_t mode = 0644);
// Removes a tree; a missing path is success.
Status RemoveAll(const std::filesystem::path& path);
Status FsyncDir(const std::filesystem::path& dir);

// A random lowercase hex string of 2*bytes characters (ids, temp names).
std::string RandomHex(size_t bytes);

// Disk usage (bytes and inodes) of a tree, not following symlinks, counting
// each hard-linked inode once.
struct DiskUsage {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};
StatusOr<DiskUsage> MeasureDiskUsage(const std::filesystem::path& root);

}  // namespace berth
