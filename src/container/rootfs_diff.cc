#include "container/rootfs_diff.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace berth::container {

namespace fs = std::filesystem;

namespace {

bool IsOpaque(const fs::path& dir) {
  char v[2];
  const ssize_t n = ::lgetxattr(dir.c_str(), "trusted.overlay.opaque", v, sizeof v);
  return n == 1 && v[0] == 'y';
}

class DiffWriter {
 public:
  explicit DiffWriter(fs::path tar_path) : a_(archive_write_new()), path_(std::move(tar_path)) {}
  ~DiffWriter() { archive_write_free(a_); }

  Status Open() {
    if (archive_write_set_format_pax_restricted(a_) != ARCHIVE_OK ||
        archive_write_open_filename(a_, path_.c_str()) != ARCHIVE_OK) {
      return Error("open");
    }
    return OkStatus();
  }
  Status Close() {
    if (archive_write_close(a_) != ARCHIVE_OK) return Error("close");
    return OkStatus();
  }

  // `dir` and everything below it; `rel` is its name in the archive ("" for the top).
  Status Walk(const fs::path& dir, const std::string& rel, RootfsDiff& diff) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename());
    if (ec) return InternalError(StrCat("list ", dir.string(), ": ", ec.message()));
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const fs::path p = dir / name;
      const std::string r = rel.empty() ? name : StrCat(rel, "/", name);
      struct stat st;
      if (::lstat(p.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // removed by the running container meanwhile
        return ErrnoStatus(errno, StrCat("stat ", p.string()));
      }
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
        diff.deleted.push_back(StrCat("/", r));
        continue;
      }
      if (S_ISSOCK(st.st_mode)) continue;
      const bool opaque = S_ISDIR(st.st_mode) && IsOpaque(p);
      if (opaque) diff.opaque.push_back(StrCat("/", r));
      RETURN_IF_ERROR(Add(p, r, st, opaque));
      ++diff.entries;
      if (S_ISDIR(st.st_mode)) RETURN_IF_ERROR(Walk(p, r, diff));
    }
    return OkStatus();
  }

 private:
  Status Add(const fs::path& p, const std::string& name, const struct stat& st, bool opaque) {
    archive_entry* e = archive_entry_new();
    ScopeGuard free_entry([&] { archive_entry_free(e); });
    archive_entry_copy_stat(e, &st);
    archive_entry_set_pathname(e, S_ISDIR(st.st_mode) ? StrCat(name, "/").c_str() : name.c_str());
    archive_entry_set_uname(e, "");
    archive_entry_set_gname(e, "");
    if (opaque) archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
    UniqueFd fd;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      fs::path target = fs::read_symlink(p, ec);
      if (ec) return InternalError(StrCat("read link ", p.string(), ": ", ec.message()));
      archive_entry_set_symlink(e, target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      fd = UniqueFd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", p.string()));
    } else if (!S_ISDIR(st.st_mode)) {
      archive_entry_set_size(e, 0);  // device nodes and FIFOs have no data
    }
    if (archive_write_header(a_, e) != ARCHIVE_OK) return Error(StrCat("write header of ", name));
    if (fd.valid()) {
      // Streamed; a file that shrank meanwhile is padded by libarchive to the
      // size in its header, one that grew is cut there.
      char buf[64 * 1024];
      int64_t left = st.st_size;
      while (left > 0) {
        ssize_t n = ::read(fd.get(), buf, std::min<int64_t>(left, sizeof buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoStatus(errno, StrCat("read ", p.string()));
        if (n == 0) break;
        if (archive_write_data(a_, buf, static_cast<size_t>(n)) != n) {
          return Error(StrCat("write data of ", name));
        }
        left -= n;
      }
    }
    return OkStatus();
  }

  Status Error(const std::string& what) {
    const char* msg = archive_error_string(a_);
    return InternalError(
        StrCat("rootfs diff ", path_.string(), ": ", what, ": ", msg ? msg : "unknown error"));
  }

  archive* a_;
  fs::path path_;
};

}  // namespace

StatusOr<RootfsDiff> WriteRootfsDiff(const fs::path& upper, const fs::path& tar_path) {
  RootfsDiff diff;
  DiffWriter w(tar_path);
  RETURN_IF_ERROR(w.Open());
  std::error_code ec;
  if (fs::is_directory(upper, ec)) RETURN_IF_ERROR(w.Walk(upper, "", diff));
  RETURN_IF_ERROR(w.Close());
  std::sort(diff.deleted.begin(), diff.deleted.end());
  return diff;
}

std::string DeletedFilesJson(const std::vector<std::string>& deleted) {
  return nlohmann::json(deleted).dump();
}

}  // namespace berth::container
