// Unpacked image layers, one directory per layer keyed by its diff_id (the
// digest of the uncompressed tar), in overlayfs "diff" form: whiteouts are
// 0:0 character devices and opaque directories carry trusted.overlay.opaque.
//
// Why diff_id and not chain id: a layer unpacked this way does not depend on
// its parents, so identical layers are shared by every image that has them and
// all layers of one image can be unpacked in parallel. A container's rootfs is
// the ordered list of these directories as overlay lowerdirs (see Mounts()).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/status.h"

namespace berth::snapshot {

// Thread-safe: every change is a mkdir, rename or recursive remove on a
// directory no other caller uses (temp directories have random names; a
// committed layer is only removed by GC under the image service's lock).
class LayerStore {
 public:
  explicit LayerStore(std::filesystem::path root) : root_(std::move(root)) {}

  // Creates directories; removes temp directories left by an interrupted pull.
  Status Init();

  bool Has(const Digest& diff_id) const;
  // The directory holding the layer's files.
  std::filesystem::path LayerDir(const Digest& diff_id) const;

  // A fresh empty directory to unpack into; pass it to Commit or Discard.
  StatusOr<std::filesystem::path> NewTempDir();
  // Makes a fully unpacked temp dir visible as `diff_id`. If another pull
  // committed the same layer first, the temp dir is discarded (same content).
  Status Commit(const std::filesystem::path& temp_dir, const Digest& diff_id);
  void Discard(const std::filesystem::path& temp_dir);

  Status Remove(const Digest& diff_id);  // absent is success
  StatusOr<std::vector<Digest>> List() const;

  // The overlay lowerdir option value for layers listed bottom-first
  // (overlayfs wants the top-most layer first).
  std::string LowerDirOption(const std::vector<Digest>& diff_ids_bottom_first) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

}  // namespace berth::snapshot
