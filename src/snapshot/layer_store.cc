#include "snapshot/layer_store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "common/fs.h"

namespace berth::snapshot {

namespace fs = std::filesystem;

Status LayerStore::Init() {
  RETURN_IF_ERROR(MakeDirs(root_ / "layers", 0700));
  RETURN_IF_ERROR(RemoveAll(root_ / "tmp"));
  return MakeDirs(root_ / "tmp", 0700);
}

fs::path LayerStore::LayerDir(const Digest& diff_id) const {
  return root_ / "layers" / diff_id.hex();
}

bool LayerStore::Has(const Digest& diff_id) const {
  struct stat st;
  return ::stat(LayerDir(diff_id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

StatusOr<fs::path> LayerStore::NewTempDir() {
  fs::path dir = root_ / "tmp" / RandomHex(8);
  if (::mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus(errno, StrCat("mkdir ", dir.string()));
  return dir;
}

Status LayerStore::Commit(const fs::path& temp_dir, const Digest& diff_id) {
  fs::path target = LayerDir(diff_id);
  // RENAME_NOREPLACE semantics via rename(2) on directories: rename onto an
  // existing non-empty directory fails with ENOTEMPTY/EEXIST.
  if (::rename(temp_dir.c_str(), target.c_str()) != 0) {
    int err = errno;
    if ((err == ENOTEMPTY || err == EEXIST) && Has(diff_id)) {
      Discard(temp_dir);
      return OkStatus();
    }
    return ErrnoStatus(err, StrCat("commit layer ", diff_id.str()));
  }
  return FsyncDir(root_ / "layers");
}

void LayerStore::Discard(const fs::path& temp_dir) { (void)RemoveAll(temp_dir); }

Status LayerStore::Remove(const Digest& diff_id) {
  // Rename away first so a half-removed layer is never visible under its id.
  fs::path target = LayerDir(diff_id);
  fs::path doomed = root_ / "tmp" / StrCat("rm-", diff_id.hex(), "-", RandomHex(4));
  if (::rename(target.c_str(), doomed.c_str()) != 0) {
    if (errno == ENOENT) return OkStatus();
    return ErrnoStatus(errno, StrCat("remove layer ", diff_id.str()));
  }
  return RemoveAll(doomed);
}

StatusOr<std::vector<Digest>> LayerStore::List() const {
  std::vector<Digest> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / "layers", ec)) {
    auto d = Digest::Parse("sha256:" + e.path().filename().string());
    if (d.ok()) out.push_back(*d);
  }
  if (ec) return ErrnoStatus(ec.value(), StrCat("list layers in ", root_.string()));
  return out;
}

std::string LayerStore::LowerDirOption(const std::vector<Digest>& bottom_first) const {
  std::string out;
  for (size_t i = bottom_first.size(); i-- > 0;) {  // top first
    if (!out.empty()) out += ':';
    out += LayerDir(bottom_first[i]).string();
  }
  return out;
}

}  // namespace berth::snapshot
