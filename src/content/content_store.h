// Blobs by digest. Writers hash while writing into a private ingest file and
// commit by rename, so a blob is visible under its digest only once its bytes
// are complete and verified; an interrupted write leaves only an ingest file,
// which CleanIngest() removes at start-up.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fs.h"
#include "common/status.h"

namespace berth::content {

// Writes one blob. Not thread-safe. Destroying an uncommitted writer removes
// its ingest file.
class Writer {
 public:
  ~Writer();
  Status Write(const char* data, size_t len);
  // Verifies size (if known) and digest, then makes the blob visible. A blob
  // already present under that digest is success (content is identical).
  Status Commit();
  uint64_t written() const { return written_; }

 private:
  friend class ContentStore;
  Writer(std::filesystem::path ingest, std::filesystem::path target, Digest expected,
         int64_t expected_size, UniqueFd fd)
      : ingest_(std::move(ingest)),
        target_(std::move(target)),
        expected_(std::move(expected)),
        expected_size_(expected_size),
        fd_(std::move(fd)) {}

  std::filesystem::path ingest_, target_;
  Digest expected_;
  int64_t expected_size_;
  UniqueFd fd_;
  Sha256 hash_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

struct BlobInfo {
  Digest digest;
  uint64_t size;
};

// Thread-safe: all state is in the filesystem and every change is a rename
// or unlink.
class ContentStore {
 public:
  explicit ContentStore(std::filesystem::path root) : root_(std::move(root)) {}
  Status Init();  // creates directories, removes stale ingest files

  // `expected_size` < 0 means unknown.
  StatusOr<std::unique_ptr<Writer>> NewWriter(const Digest& expected, int64_t expected_size);
  // Convenience: verify and store a small blob held in memory.
  Status WriteBlob(const Digest& expected, std::string_view data);

  bool Exists(const Digest& d) const;
  StatusOr<std::string> ReadBlob(const Digest& d) const;  // NOT_FOUND when absent
  std::filesystem::path BlobPath(const Digest& d) const;
  Status Delete(const Digest& d);  // absent is success
  StatusOr<std::vector<BlobInfo>> List() const;
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

}  // namespace berth::content
