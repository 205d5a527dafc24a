#include "common/fs.h"

#include <fcntl.h>
#include <fts.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <utility>

namespace berth {

namespace fs = std::filesystem;

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) Reset(o.Release());
  return *this;
}

UniqueFd::~UniqueFd() { Reset(); }

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status MakeDirs(const fs::path& dir, mode_t mode) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("create directory ", dir.string()));
  if (::chmod(dir.c_str(), mode) != 0) {
    return ErrnoStatus(errno, StrCat("chmod ", dir.string()));
  }
  return OkStatus();
}

StatusOr<std::string> ReadFile(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", path.string()));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", path.string()));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status FsyncDir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", dir.string()));
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, StrCat("fsync ", dir.string()));
  return OkStatus();
}

Status WriteFileAtomic(const fs::path& path, std::string_view data, mode_t mode) {
  fs::path tmp = path;
  tmp += StrCat(".tmp-", RandomHex(6));
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("create ", tmp.string()));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, StrCat("write ", tmp.string()));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, StrCat("fsync ", tmp.string()));
  }
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, StrCat("rename ", tmp.string(), " to ", path.string()));
  }
  return FsyncDir(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

Status RemoveAll(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec && ec.value() != ENOENT) {
    return ErrnoStatus(ec.value(), StrCat("remove ", path.string()));
  }
  return OkStatus();
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

StatusOr<DiskUsage> MeasureDiskUsage(const fs::path& root) {
  DiskUsage usage;
  struct stat st;
  if (::lstat(root.c_str(), &st) != 0) {
    if (errno == ENOENT) return usage;
    return ErrnoStatus(errno, StrCat("stat ", root.string()));
  }
  char* paths[] = {const_cast<char*>(root.c_str()), nullptr};
  FTS* fts = ::fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, nullptr);
  if (fts == nullptr) return ErrnoStatus(errno, StrCat("walk ", root.string()));
  std::set<std::pair<dev_t, ino_t>> seen;
  while (FTSENT* e = ::fts_read(fts)) {
    if (e->fts_info == FTS_DP || e->fts_info == FTS_ERR || e->fts_info == FTS_DNR ||
        e->fts_info == FTS_NS) {
      continue;
    }
    const struct stat* s = e->fts_statp;
    if (s->st_nlink > 1 && !S_ISDIR(s->st_mode)) {
      if (!seen.emplace(s->st_dev, s->st_ino).second) continue;
    }
    usage.inodes++;
    usage.bytes += static_cast<uint64_t>(s->st_blocks) * 512;
  }
  ::fts_close(fts);
  return usage;
}

}  // namespace berth
