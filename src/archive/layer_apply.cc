#include "archive/layer_apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/fs.h"

namespace berth::archive {
namespace {

// libarchive's message for the last error; it has none (NULL) after some
// failures, e.g. a GNU long-name entry cut short (found by the layer_apply
// fuzzer: a NULL formatted as a string threw from fmt).
std::string ArchiveError(struct archive* ar) {
  const char* msg = archive_error_string(ar);
  return msg != nullptr ? msg : "unknown error";
}

constexpr size_t kBufferSize = 1 << 20;
constexpr int kMaxSymlinkHops = 40;  // the kernel's own limit for one path walk

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kWhiteoutOpaque = ".wh..wh..opq";

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Lexically cleans a tar member name or hard link target into a path relative
// to the layer root ("a/b/c", "" for the root itself). Leading '/' is dropped
// (tar names are relative to the extraction root). Returns false when `..`
// climbs above the root.
bool CleanRelative(std::string_view name, std::string* out) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  out->clear();
  for (std::string_view p : parts) {
    if (!out->empty()) out->push_back('/');
    out->append(p);
  }
  return true;
}

// Like CleanRelative, but `..` above the root stays at the root, which is how
// the kernel resolves paths under RESOLVE_IN_ROOT.
std::string CleanClamped(std::string_view name) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (std::string_view p : parts) {
    if (!out.empty()) out.push_back('/');
    out.append(p);
  }
  return out;
}

void SplitParent(const std::string& path, std::string* parent, std::string* base) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    parent->clear();
    *base = path;
  } else {
    *parent = path.substr(0, slash);
    *base = path.substr(slash + 1);
  }
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return StrCat(a, "/", b);
}

// Entry names in messages are quoted so that odd characters stay visible.
std::string Quote(std::string_view s) { return StrCat("\"", s, "\""); }

int OpenInRoot(int root_fd, const std::string& path, uint64_t flags) {
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  const char* p = path.empty() ? "." : path.c_str();
  long fd = -1;
  for (int attempt = 0; attempt < 64; ++attempt) {
    fd = ::syscall(SYS_openat2, root_fd, p, &how, sizeof(how));
    // EAGAIN: a concurrent rename somewhere on the system made the kernel
    // distrust its ".." check; retrying is what the man page asks for.
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  return static_cast<int>(fd);
}

// A path usable with the plain (non-*at) xattr calls for `base` inside the
// directory `dir_fd`: the kernel resolves /proc/self/fd/N to that directory
// itself, whatever its path is.
std::string ProcPath(int dir_fd, std::string_view base) {
  if (base.empty()) return StrCat("/proc/self/fd/", dir_fd);
  return StrCat("/proc/self/fd/", dir_fd, "/", base);
}

// Removes `base` in `dir_fd`, recursively if it is a directory.
Status RemoveAt(int dir_fd, const std::string& base, const std::string& shown) {
  if (::unlinkat(dir_fd, base.c_str(), 0) == 0) return OkStatus();
  if (errno == ENOENT) return OkStatus();
  if (errno != EISDIR) return ErrnoStatus(errno, StrCat("remove ", Quote(shown)));
  int fd = ::openat(dir_fd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, StrCat("open ", Quote(shown), " for removal"));
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, StrCat("read directory ", Quote(shown)));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  std::vector<std::string> children;
  errno = 0;
  while (struct dirent* d = ::readdir(dir)) {
    std::string_view n = d->d_name;
    if (n != "." && n != "..") children.emplace_back(n);
    errno = 0;
  }
  if (errno != 0) return ErrnoStatus(errno, StrCat("read directory ", Quote(shown)));
  for (const std::string& child : children) {
    RETURN_IF_ERROR(RemoveAt(::dirfd(dir), child, JoinPath(shown, child)));
  }
  closer.reset();
  if (::unlinkat(dir_fd, base.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoStatus(errno, StrCat("remove directory ", Quote(shown)));
  }
  return OkStatus();
}

// Produces the uncompressed tar stream in large blocks and hashes it on the way.
class TarSource {
 public:
  TarSource(const ReadFn& read, Compression compression)
      : read_(read), compression_(compression), out_(new char[kBufferSize]) {}
  TarSource(const TarSource&) = delete;
  TarSource& operator=(const TarSource&) = delete;
  ~TarSource() {
    if (zlib_ready_) ::inflateEnd(&zs_);
    if (zstd_ != nullptr) ::ZSTD_freeDStream(zstd_);
  }

  Status Init() {
    if (compression_ == Compression::kNone) return OkStatus();
    in_.reset(new char[kBufferSize]);
    if (compression_ == Compression::kGzip) {
      zs_ = {};
      // 16 + MAX_WBITS: gzip framing only (no raw deflate, no zlib header).
      if (::inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
        return ResourceExhaustedError("cannot initialise the gzip decompressor");
      }
      zlib_ready_ = true;
    } else {
      zstd_ = ::ZSTD_createDStream();
      if (zstd_ == nullptr) return ResourceExhaustedError("cannot create a zstd decompressor");
      size_t r = ::ZSTD_initDStream(zstd_);
      if (::ZSTD_isError(r)) {
        return InternalError(StrCat("cannot initialise zstd: ", ::ZSTD_getErrorName(r)));
      }
    }
    return OkStatus();
  }

  // Next block of the tar stream; size 0 at its end. `*data` stays valid until
  // the next call.
  StatusOr<size_t> Next(const char** data) {
    *data = out_.get();
    if (!pending_.ok()) return pending_;
    if (done_) return size_t{0};
    StatusOr<size_t> n = compression_ == Compression::kNone   ? ReadPlain()
                         : compression_ == Compression::kGzip ? ReadGzip()
                                                              : ReadZstd();
    if (!n.ok()) return n;
    if (*n == 0) {
      done_ = true;
    } else {
      hash_.Update(out_.get(), *n);
      total_ += *n;
    }
    return n;
  }

  // Reads (and hashes) whatever the tar reader left unread.
  Status Drain() {
    const char* data;
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, Next(&data));
      if (n == 0) return OkStatus();
    }
  }

  Digest Finish() { return hash_.Finish(); }
  uint64_t total() const { return total_; }
  // True when the last error came from the ReadFn (it is then passed on
  // unchanged), false when it is ours (decompression).
  bool source_failed() const { return source_failed_; }

 private:
  // Hands out the bytes produced before an error first, so that the error is
  // reported at the entry it belongs to, then the error on the next call.
  StatusOr<size_t> Fail(Status error, size_t produced) {
    if (produced == 0) return error;
    pending_ = std::move(error);
    return produced;
  }

  StatusOr<size_t> CallRead(char* buf, size_t n) {
    StatusOr<size_t> got = read_(buf, n);
    if (!got.ok()) {
      source_failed_ = true;
      return got;
    }
    if (*got > n) {
      return InternalError(
          StrCat("layer source returned ", *got, " bytes for a ", n, "-byte buffer"));
    }
    compressed_ += *got;
    return got;
  }

  StatusOr<size_t> ReadPlain() {
    size_t have = 0;
    while (have < kBufferSize) {
      StatusOr<size_t> got = CallRead(out_.get() + have, kBufferSize - have);
      if (!got.ok()) return Fail(std::move(got).status(), have);
      size_t n = *got;
      if (n == 0) break;
      have += n;
    }
    return have;
  }

  // Fills in_ when it is used up; false at the end of the source.
  StatusOr<bool> Refill() {
    if (in_pos_ < in_len_) return true;
    if (source_eof_) return false;
    ASSIGN_OR_RETURN(size_t n, CallRead(in_.get(), kBufferSize));
    in_pos_ = 0;
    in_len_ = n;
    if (n == 0) source_eof_ = true;
    return n > 0;
  }

  // When the source is exhausted the decompressor is still called once with no
  // input: it may hold output that did not fit into the previous block. Only
  // if that yields nothing and the member/frame is incomplete is it truncated.
  StatusOr<size_t> ReadGzip() {
    size_t have = 0;
    while (have < kBufferSize) {
      StatusOr<bool> refilled = Refill();
      if (!refilled.ok()) return Fail(std::move(refilled).status(), have);
      bool more = *refilled;
      if (!more && gzip_member_complete_) break;
      zs_.next_in = reinterpret_cast<Bytef*>(in_.get() + in_pos_);
      zs_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
      zs_.next_out = reinterpret_cast<Bytef*>(out_.get() + have);
      zs_.avail_out = static_cast<uInt>(kBufferSize - have);
      size_t before = have;
      int rc = ::inflate(&zs_, Z_NO_FLUSH);
      in_pos_ = in_len_ - zs_.avail_in;
      have = kBufferSize - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        // Another member may follow (gzip allows concatenation).
        gzip_member_complete_ = true;
        if (::inflateReset(&zs_) != Z_OK) {
          return Fail(InternalError("cannot reset the gzip decompressor"), have);
        }
      } else if (rc == Z_OK || rc == Z_BUF_ERROR) {
        gzip_member_complete_ = false;
        if (!more && have == before) {
          return Fail(DataLossError(StrCat("gzip stream is truncated after ", compressed_,
                                           " compressed bytes")),
                      have);
        }
      } else {
        const char* msg = zs_.msg != nullptr ? zs_.msg : "invalid data";
        return Fail(DataLossError(StrCat("gzip stream is corrupt near compressed offset ",
                                         compressed_ - (in_len_ - in_pos_), ": ", msg)),
                    have);
      }
    }
    return have;
  }

  StatusOr<size_t> ReadZstd() {
    ZSTD_outBuffer out = {out_.get(), kBufferSize, 0};
    while (out.pos < out.size) {
      StatusOr<bool> refilled = Refill();
      if (!refilled.ok()) return Fail(std::move(refilled).status(), out.pos);
      bool more = *refilled;
      if (!more && zstd_frame_complete_) break;
      ZSTD_inBuffer in = {in_.get(), in_len_, in_pos_};
      size_t before = out.pos;
      size_t r = ::ZSTD_decompressStream(zstd_, &out, &in);
      in_pos_ = in.pos;
      if (::ZSTD_isError(r)) {
        return Fail(
            DataLossError(StrCat("zstd stream is corrupt near compressed offset ",
                                 compressed_ - (in_len_ - in_pos_), ": ", ::ZSTD_getErrorName(r))),
            out.pos);
      }
      // 0 means a frame ended and all of it was flushed.
      zstd_frame_complete_ = r == 0;
      if (!more && !zstd_frame_complete_ && out.pos == before) {
        return Fail(DataLossError(StrCat("zstd stream is truncated after ", compressed_,
                                         " compressed bytes")),
                    out.pos);
      }
    }
    return out.pos;
  }

  const ReadFn& read_;
  Compression compression_;
  std::unique_ptr<char[]> out_;
  std::unique_ptr<char[]> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool source_eof_ = false;
  bool done_ = false;
  z_stream zs_ = {};
  bool zlib_ready_ = false;
  bool gzip_member_complete_ = false;
  ZSTD_DStream* zstd_ = nullptr;
  bool zstd_frame_complete_ = false;
  Sha256 hash_;
  uint64_t total_ = 0;
  uint64_t compressed_ = 0;
  bool source_failed_ = false;
  Status pending_;
};

struct DirTimes {
  std::string path;
  struct timespec times[2];
};

// Materialises entries under the root. Not thread-safe; one per apply.
class Materializer {
 public:
  Materializer(int root_fd, struct archive* ar) : root_fd_(root_fd), ar_(ar) {}

  Status Apply(struct archive_entry* e);
  Status SetDirTimes();

 private:
  // A directory descriptor for `parent` (clean, relative), creating missing
  // directories. Borrowed: valid until the next call that changes the cache.
  StatusOr<int> ParentDir(const std::string& parent, const std::string& entry);
  StatusOr<UniqueFd> ResolveDir(std::string path, bool create, const std::string& entry);
  void InvalidateCache() { cache_stale_ = true; }

  Status ApplyWhiteout(const std::string& parent, const std::string& base, struct archive_entry* e,
                       const std::string& path);
  Status CreateFile(int dir_fd, const std::string& base, const std::string& path,
                    struct archive_entry* e);
  Status CreateDir(int dir_fd, const std::string& base, const std::string& path,
                   struct archive_entry* e);
  Status CreateSymlink(int dir_fd, const std::string& base, const std::string& path,
                       struct archive_entry* e);
  Status CreateNode(int dir_fd, const std::string& base, const std::string& path,
                    struct archive_entry* e);
  Status CreateHardLink(const std::string& parent, const std::string& base, const std::string& path,
                        struct archive_entry* e);
  // Runs `create` (a syscall returning -1/errno); when the name exists, removes
  // it (tar semantics: later entries win) and runs `create` once more.
  template <typename F>
  Status CreateReplacing(int dir_fd, const std::string& base, const std::string& path,
                         std::string_view what, F create);
  // xattrs go through `fd` when >= 0, else through the /proc path of base.
  Status ApplyXattrs(struct archive_entry* e, int fd, int dir_fd, const std::string& base,
                     const std::string& path);
  Status ReadError(std::string_view what, const std::string& path);

  int root_fd_;
  struct archive* ar_;
  std::string cache_path_;
  UniqueFd cache_fd_;
  bool cache_stale_ = true;
  std::vector<DirTimes> dir_times_;
};

void EntryTimes(struct archive_entry* e, struct timespec times[2]) {
  if (archive_entry_mtime_is_set(e)) {
    times[1].tv_sec = archive_entry_mtime(e);
    times[1].tv_nsec = archive_entry_mtime_nsec(e);
  } else {
    times[1].tv_sec = 0;
    times[1].tv_nsec = UTIME_OMIT;
  }
  if (archive_entry_atime_is_set(e)) {
    times[0].tv_sec = archive_entry_atime(e);
    times[0].tv_nsec = archive_entry_atime_nsec(e);
  } else {
    times[0] = times[1];
  }
}

Status Materializer::ReadError(std::string_view what, const std::string& path) {
  // A failing source or decompressor surfaces in libarchive as a generic
  // error; the real cause was kept by the read callback.
  return DataLossError(StrCat(what, " of entry ", Quote(path), ": ", ArchiveError(ar_)));
}

StatusOr<UniqueFd> Materializer::ResolveDir(std::string path, bool create,
                                            const std::string& entry) {
  int hops = 0;
  for (;;) {
    int fd = OpenInRoot(root_fd_, path, O_PATH | O_DIRECTORY);
    if (fd >= 0) return UniqueFd(fd);
    int err = errno;
    if (err == ENOTDIR) {
      return InvalidArgumentError(
          StrCat("entry ", Quote(entry), ": parent ", Quote(path), " is not a directory"));
    }
    if (err == ELOOP) {
      return InvalidArgumentError(StrCat("entry ", Quote(entry), ": parent ", Quote(path),
                                         " has too many levels of symbolic links"));
    }
    if (err != ENOENT || !create) {
      return ErrnoStatus(err, StrCat("entry ", Quote(entry), ": resolve directory ", Quote(path),
                                     " in the layer"));
    }
    // Walk down from the root to the first missing component and create it,
    // then retry the whole path; a dangling symlink on the way is followed
    // (within the root) by rewriting the path.
    bool restarted = false;
    UniqueFd cur;
    std::string prefix;
    size_t pos = 0;
    while (pos < path.size()) {
      size_t slash = path.find('/', pos);
      if (slash == std::string::npos) slash = path.size();
      std::string comp = path.substr(pos, slash - pos);
      std::string next = JoinPath(prefix, comp);
      int nfd = OpenInRoot(root_fd_, next, O_PATH | O_DIRECTORY);
      if (nfd < 0) {
        if (errno != ENOENT) {
          return ErrnoStatus(errno, StrCat("entry ", Quote(entry), ": resolve directory ",
                                           Quote(next), " in the layer"));
        }
        int at = cur.valid() ? cur.get() : root_fd_;
        if (::mkdirat(at, comp.c_str(), 0755) != 0) {
          if (errno != EEXIST) {
            return ErrnoStatus(errno,
                               StrCat("entry ", Quote(entry), ": create directory ", Quote(next)));
          }
          // It exists but does not resolve: a dangling symlink.
          char target[4096];
          ssize_t n = ::readlinkat(at, comp.c_str(), target, sizeof(target));
          if (n < 0 || static_cast<size_t>(n) >= sizeof(target)) {
            return InvalidArgumentError(StrCat("entry ", Quote(entry), ": parent ", Quote(next),
                                               " exists but is not a usable directory"));
          }
          if (++hops > kMaxSymlinkHops) {
            return InvalidArgumentError(StrCat(
                "entry ", Quote(entry), ": too many levels of symbolic links in ", Quote(path)));
          }
          std::string_view link(target, static_cast<size_t>(n));
          std::string rest = slash < path.size() ? path.substr(slash + 1) : std::string();
          std::string base = !link.empty() && link.front() == '/' ? std::string() : prefix;
          path = CleanClamped(JoinPath(JoinPath(base, link), rest));
          restarted = true;
          break;
        }
        nfd = OpenInRoot(root_fd_, next, O_PATH | O_DIRECTORY);
        if (nfd < 0) {
          return ErrnoStatus(
              errno, StrCat("entry ", Quote(entry), ": open created directory ", Quote(next)));
        }
      }
      cur.Reset(nfd);
      prefix = std::move(next);
      pos = slash + 1;
    }
    if (!restarted) {
      if (cur.valid()) return cur;
      return ErrnoStatus(ENOENT, StrCat("entry ", Quote(entry), ": resolve directory ", Quote(path),
                                        " in the layer"));
    }
  }
}

StatusOr<int> Materializer::ParentDir(const std::string& parent, const std::string& entry) {
  if (parent.empty()) return root_fd_;
  if (!cache_stale_ && cache_path_ == parent) return cache_fd_.get();
  ASSIGN_OR_RETURN(UniqueFd fd, ResolveDir(parent, /*create=*/true, entry));
  cache_fd_ = std::move(fd);
  cache_path_ = parent;
  cache_stale_ = false;
  return cache_fd_.get();
}

template <typename F>
Status Materializer::CreateReplacing(int dir_fd, const std::string& base, const std::string& path,
                                     std::string_view what, F create) {
  if (create() == 0) return OkStatus();
  if (errno != EEXIST) return ErrnoStatus(errno, StrCat("create ", what, " ", Quote(path)));
  InvalidateCache();
  RETURN_IF_ERROR(RemoveAt(dir_fd, base, path));
  if (create() == 0) return OkStatus();
  return ErrnoStatus(errno, StrCat("create ", what, " ", Quote(path)));
}

Status Materializer::ApplyXattrs(struct archive_entry* e, int fd, int dir_fd,
                                 const std::string& base, const std::string& path) {
  if (archive_entry_xattr_reset(e) == 0) return OkStatus();
  std::string proc;
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n = name;
    if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) continue;
    int rc;
    if (fd >= 0) {
      rc = ::fsetxattr(fd, name, value, size, 0);
    } else {
      if (proc.empty()) proc = ProcPath(dir_fd, base);
      rc = ::lsetxattr(proc.c_str(), name, value, size, 0);
    }
    if (rc != 0) {
      // The file system cannot hold this namespace (e.g. security.* labels
      // of another LSM): the content is still usable, as containerd decides.
      if (errno == ENOTSUP) continue;
      return ErrnoStatus(errno, StrCat("set xattr ", n, " on ", Quote(path)));
    }
  }
  return OkStatus();
}

Status Materializer::Apply(struct archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  if (raw == nullptr || *raw == '\0') {
    return InvalidArgumentError("tar entry without a path name");
  }
  std::string path;
  if (!CleanRelative(raw, &path)) {
    return InvalidArgumentError(
        StrCat("entry ", Quote(raw), " points outside the layer root (too many \"..\")"));
  }
  if (path.empty()) return OkStatus();  // the root itself: keep dest as the caller made it
  std::string parent, base;
  SplitParent(path, &parent, &base);

  if (std::string_view(base).starts_with(kWhiteoutPrefix)) {
    return ApplyWhiteout(parent, base, e, path);
  }
  if (archive_entry_hardlink(e) != nullptr) return CreateHardLink(parent, base, path, e);

  ASSIGN_OR_RETURN(int dir_fd, ParentDir(parent, path));
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      return CreateFile(dir_fd, base, path, e);
    case AE_IFDIR:
      return CreateDir(dir_fd, base, path, e);
    case AE_IFLNK:
      return CreateSymlink(dir_fd, base, path, e);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      return CreateNode(dir_fd, base, path, e);
    default:
      return InvalidArgumentError(StrCat("entry ", Quote(path), " has an unsupported type (mode ",
                                         fmt::format("{:o}", archive_entry_mode(e)), ")"));
  }
}

Status Materializer::ApplyWhiteout(const std::string& parent, const std::string& base,
                                   struct archive_entry* e, const std::string& path) {
  ASSIGN_OR_RETURN(int dir_fd, ParentDir(parent, path));
  std::string_view b = base;
  if (b == kWhiteoutOpaque) {
    std::string proc = ProcPath(dir_fd, "");
    if (::setxattr(proc.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return ErrnoStatus(errno, StrCat("mark directory ", Quote(parent.empty() ? "/" : parent),
                                       " opaque (trusted.overlay.opaque) for entry ", Quote(path)));
    }
    return OkStatus();
  }
  if (b.starts_with(kWhiteoutMetaPrefix)) return OkStatus();  // aufs metadata, meaningless here
  std::string name(b.substr(kWhiteoutPrefix.size()));
  if (name.empty() || name == "." || name == "..") {
    return InvalidArgumentError(StrCat("whiteout entry ", Quote(path), " names no file"));
  }
  std::string target = JoinPath(parent, name);
  RETURN_IF_ERROR(CreateReplacing(dir_fd, name, target, "whiteout", [&] {
    return ::mknodat(dir_fd, name.c_str(), S_IFCHR, makedev(0, 0));
  }));
  if (::fchownat(dir_fd, name.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, StrCat("chown whiteout ", Quote(target)));
  }
  return OkStatus();
}

Status Materializer::CreateFile(int dir_fd, const std::string& base, const std::string& path,
                                struct archive_entry* e) {
  UniqueFd fd;
  RETURN_IF_ERROR(CreateReplacing(dir_fd, base, path, "file", [&] {
    int f =
        ::openat(dir_fd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f >= 0) fd.Reset(f);
    return f >= 0 ? 0 : -1;
  }));
  int64_t end = 0;
  for (;;) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    int r = archive_read_data_block(ar_, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return ReadError("reading the data", path);
    const char* p = static_cast<const char*>(buf);
    while (size > 0) {
      ssize_t w = ::pwrite(fd.get(), p, size, offset);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, StrCat("write ", Quote(path)));
      }
      p += w;
      size -= static_cast<size_t>(w);
      offset += w;
    }
    if (offset > end) end = offset;
  }
  // A sparse file may end in a hole that no data block covers.
  int64_t size = archive_entry_size(e);
  if (archive_entry_size_is_set(e) && size > end && ::ftruncate(fd.get(), size) != 0) {
    return ErrnoStatus(errno, StrCat("extend ", Quote(path), " to ", size, " bytes"));
  }
  // chown first: it clears setuid/setgid, which chmod then sets again.
  if (::fchown(fd.get(), static_cast<uid_t>(archive_entry_uid(e)),
               static_cast<gid_t>(archive_entry_gid(e))) != 0) {
    return ErrnoStatus(errno, StrCat("chown ", Quote(path)));
  }
  if (::fchmod(fd.get(), archive_entry_perm(e) & 07777) != 0) {
    return ErrnoStatus(errno, StrCat("chmod ", Quote(path)));
  }
  // After chown, which drops security.capability.
  RETURN_IF_ERROR(ApplyXattrs(e, fd.get(), dir_fd, base, path));
  struct timespec times[2];
  EntryTimes(e, times);
  if (::futimens(fd.get(), times) != 0) {
    return ErrnoStatus(errno, StrCat("set times of ", Quote(path)));
  }
  return OkStatus();
}

Status Materializer::CreateDir(int dir_fd, const std::string& base, const std::string& path,
                               struct archive_entry* e) {
  if (::mkdirat(dir_fd, base.c_str(), 0700) != 0) {
    if (errno != EEXIST) return ErrnoStatus(errno, StrCat("create directory ", Quote(path)));
    struct stat st;
    if (::fstatat(dir_fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, StrCat("stat ", Quote(path)));
    }
    if (!S_ISDIR(st.st_mode)) {  // a directory over a directory merges
      InvalidateCache();
      RETURN_IF_ERROR(RemoveAt(dir_fd, base, path));
      if (::mkdirat(dir_fd, base.c_str(), 0700) != 0) {
        return ErrnoStatus(errno, StrCat("create directory ", Quote(path)));
      }
    }
  }
  int f = ::openat(dir_fd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (f < 0) return ErrnoStatus(errno, StrCat("open directory ", Quote(path)));
  UniqueFd fd(f);
  if (::fchown(fd.get(), static_cast<uid_t>(archive_entry_uid(e)),
               static_cast<gid_t>(archive_entry_gid(e))) != 0) {
    return ErrnoStatus(errno, StrCat("chown ", Quote(path)));
  }
  if (::fchmod(fd.get(), archive_entry_perm(e) & 07777) != 0) {
    return ErrnoStatus(errno, StrCat("chmod ", Quote(path)));
  }
  RETURN_IF_ERROR(ApplyXattrs(e, fd.get(), dir_fd, base, path));
  DirTimes t;
  t.path = path;
  EntryTimes(e, t.times);
  dir_times_.push_back(std::move(t));
  // Tar streams list a directory's children right after it: keep it at hand.
  // (dir_fd may be the old cache entry; it is not used after this point.)
  cache_fd_ = std::move(fd);
  cache_path_ = path;
  cache_stale_ = false;
  return OkStatus();
}

Status Materializer::CreateSymlink(int dir_fd, const std::string& base, const std::string& path,
                                   struct archive_entry* e) {
  const char* target = archive_entry_symlink(e);
  if (target == nullptr || *target == '\0') {
    return InvalidArgumentError(StrCat("symlink entry ", Quote(path), " has an empty target"));
  }
  // The target is stored as is: it is only ever followed inside a container
  // root, or here through RESOLVE_IN_ROOT.
  RETURN_IF_ERROR(CreateReplacing(dir_fd, base, path, "symlink",
                                  [&] { return ::symlinkat(target, dir_fd, base.c_str()); }));
  if (::fchownat(dir_fd, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, StrCat("chown ", Quote(path)));
  }
  RETURN_IF_ERROR(ApplyXattrs(e, -1, dir_fd, base, path));
  struct timespec times[2];
  EntryTimes(e, times);
  if (::utimensat(dir_fd, base.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, StrCat("set times of ", Quote(path)));
  }
  return OkStatus();
}

Status Materializer::CreateNode(int dir_fd, const std::string& base, const std::string& path,
                                struct archive_entry* e) {
  mode_t type = archive_entry_filetype(e);
  dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(e);
  RETURN_IF_ERROR(CreateReplacing(dir_fd, base, path, "device node", [&] {
    return ::mknodat(dir_fd, base.c_str(), type | (archive_entry_perm(e) & 0777), dev);
  }));
  if (::fchownat(dir_fd, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, StrCat("chown ", Quote(path)));
  }
  // Not a symlink (just created by mknodat), so following is harmless; devices
  // and fifos are never opened, so no fd-based calls.
  if (::fchmodat(dir_fd, base.c_str(), archive_entry_perm(e) & 07777, 0) != 0) {
    return ErrnoStatus(errno, StrCat("chmod ", Quote(path)));
  }
  RETURN_IF_ERROR(ApplyXattrs(e, -1, dir_fd, base, path));
  struct timespec times[2];
  EntryTimes(e, times);
  if (::utimensat(dir_fd, base.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, StrCat("set times of ", Quote(path)));
  }
  return OkStatus();
}

Status Materializer::CreateHardLink(const std::string& parent, const std::string& base,
                                    const std::string& path, struct archive_entry* e) {
  const char* raw = archive_entry_hardlink(e);
  std::string target;
  if (!CleanRelative(raw, &target) || target.empty()) {
    return InvalidArgumentError(StrCat("hard link entry ", Quote(path), " points to ", Quote(raw),
                                       ", outside the layer root"));
  }
  std::string tparent, tbase;
  SplitParent(target, &tparent, &tbase);
  UniqueFd tdir;
  if (!tparent.empty()) {
    StatusOr<UniqueFd> d = ResolveDir(tparent, /*create=*/false, path);
    if (d.status().code() == StatusCode::kNotFound) {
      return InvalidArgumentError(StrCat("hard link entry ", Quote(path), ": target ", Quote(raw),
                                         " does not exist in the layer"));
    }
    if (!d.ok()) return std::move(d).status();
    tdir = std::move(*d);
  }
  int tdir_fd = tdir.valid() ? tdir.get() : root_fd_;
  ASSIGN_OR_RETURN(int dir_fd, ParentDir(parent, path));
  // flags 0: a link to a symlink links the symlink itself, never its target.
  auto link = [&] { return ::linkat(tdir_fd, tbase.c_str(), dir_fd, base.c_str(), 0); };
  if (link() == 0) return OkStatus();
  int err = errno;
  if (err == EEXIST) {
    InvalidateCache();
    RETURN_IF_ERROR(RemoveAt(dir_fd, base, path));
    if (link() == 0) return OkStatus();
    err = errno;
  }
  if (err == ENOENT) {
    return InvalidArgumentError(StrCat("hard link entry ", Quote(path), ": target ", Quote(raw),
                                       " does not exist in the layer"));
  }
  if (err == EPERM) {
    return InvalidArgumentError(StrCat("hard link entry ", Quote(path), ": target ", Quote(raw),
                                       " is a directory or cannot be linked"));
  }
  return ErrnoStatus(err, StrCat("hard link ", Quote(path), " to ", Quote(raw)));
}

Status Materializer::SetDirTimes() {
  cache_fd_.Reset();
  for (const DirTimes& t : dir_times_) {
    int fd = OpenInRoot(root_fd_, t.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) {
      // Replaced later by a non-directory, or whited out: nothing to date.
      if (errno == ENOTDIR || errno == ELOOP || errno == ENOENT) continue;
      return ErrnoStatus(errno, StrCat("open directory ", Quote(t.path), " to set its times"));
    }
    UniqueFd dir(fd);
    if (::futimens(dir.get(), t.times) != 0) {
      return ErrnoStatus(errno, StrCat("set times of ", Quote(t.path)));
    }
  }
  return OkStatus();
}

struct ReadContext {
  TarSource* source;
  Status error;
};

la_ssize_t ReadCallback(struct archive* a, void* client, const void** buffer) {
  auto* ctx = static_cast<ReadContext*>(client);
  const char* data = nullptr;
  StatusOr<size_t> n = ctx->source->Next(&data);
  if (!n.ok()) {
    ctx->error = n.status();
    archive_set_error(a, EIO, "%s", ctx->error.message().c_str());
    return -1;
  }
  *buffer = data;
  return static_cast<la_ssize_t>(*n);
}

Status CheckEmptyDir(const std::filesystem::path& dest) {
  int fd = ::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, StrCat("open layer destination ", dest.string()));
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, StrCat("read layer destination ", dest.string()));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  errno = 0;
  while (struct dirent* d = ::readdir(dir)) {
    std::string_view n = d->d_name;
    if (n != "." && n != "..") {
      return FailedPreconditionError(
          StrCat("layer destination ", dest.string(), " is not empty (contains ", Quote(n), ")"));
    }
  }
  if (errno != 0) return ErrnoStatus(errno, StrCat("read layer destination ", dest.string()));
  return OkStatus();
}

}  // namespace

StatusOr<Compression> CompressionForMediaType(std::string_view media_type) {
  std::string_view mt = media_type;
  if (size_t semi = mt.find(';'); semi != std::string_view::npos) mt = mt.substr(0, semi);
  std::string t = AsciiLower(TrimSpaces(mt));
  static constexpr std::string_view kOciBases[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
  };
  for (std::string_view b : kOciBases) {
    if (t == b) return Compression::kNone;
    if (t == StrCat(b, "+gzip")) return Compression::kGzip;
    if (t == StrCat(b, "+zstd")) return Compression::kZstd;
  }
  if (t == "application/vnd.docker.image.rootfs.diff.tar" ||
      t == "application/vnd.docker.image.rootfs.foreign.diff.tar") {
    return Compression::kNone;
  }
  if (t == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
      t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") {
    return Compression::kGzip;
  }
  if (t == "application/vnd.docker.image.rootfs.diff.tar.zstd") return Compression::kZstd;
  return InvalidArgumentError(
      StrCat("unsupported layer media type ", Quote(media_type),
             " (expected an OCI or Docker tar layer, uncompressed, gzip or zstd)"));
}

StatusOr<ApplyResult> ApplyLayer(const ReadFn& read, Compression compression,
                                 const std::filesystem::path& dest) {
  RETURN_IF_ERROR(CheckEmptyDir(dest));
  int rfd = ::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) return ErrnoStatus(errno, StrCat("open layer destination ", dest.string()));
  UniqueFd root(rfd);
  // Every path below is resolved with openat2: refuse up front where it is
  // missing (Linux < 5.6, or a seccomp filter) rather than unpack unsafely.
  if (int probe = OpenInRoot(root.get(), "", O_PATH | O_DIRECTORY); probe >= 0) {
    ::close(probe);
  } else if (errno == ENOSYS || errno == EPERM) {
    return FailedPreconditionError(StrCat(
        "cannot unpack layers safely here: openat2(2) is unavailable (", std::strerror(errno),
        "); Linux 5.6 or newer without a seccomp filter on it "
        "is required"));
  } else {
    return ErrnoStatus(errno, StrCat("open layer destination ", dest.string()));
  }

  TarSource source(read, compression);
  RETURN_IF_ERROR(source.Init());
  ReadContext ctx{&source, OkStatus()};

  std::unique_ptr<struct archive, int (*)(struct archive*)> ar(archive_read_new(),
                                                               archive_read_free);
  if (ar == nullptr) return ResourceExhaustedError("cannot allocate a tar reader");
  // Tar only (ustar, pax, GNU; "empty" accepts a zero-byte layer): no
  // decompression filters, we decompress ourselves to hash the tar stream.
  if (archive_read_support_format_tar(ar.get()) != ARCHIVE_OK ||
      archive_read_support_format_gnutar(ar.get()) != ARCHIVE_OK ||
      archive_read_support_format_empty(ar.get()) != ARCHIVE_OK) {
    return InternalError(StrCat("cannot configure the tar reader: ", ArchiveError(ar.get())));
  }
  // Where in the stream we are, for errors of the stream itself.
  std::string where = "at the start of the layer";
  auto stream_error = [&] {
    if (source.source_failed()) return ctx.error;
    return Annotate(ctx.error, where);
  };
  if (archive_read_open(ar.get(), &ctx, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    if (!ctx.error.ok()) return stream_error();
    return DataLossError(StrCat("layer is not a readable tar stream: ", ArchiveError(ar.get())));
  }

  Materializer out(root.get(), ar.get());
  ApplyResult result;
  for (;;) {
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(ar.get(), &e);
    if (!ctx.error.ok()) return stream_error();
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_WARN: a name that is not valid in the current locale's charset;
    // libarchive then keeps the bytes as they are, which is what we want.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return DataLossError(StrCat("corrupt tar stream ", where, ": ", ArchiveError(ar.get())));
    }
    const char* name = archive_entry_pathname(e);
    std::string quoted = Quote(name != nullptr ? name : "");
    where = StrCat("in entry ", quoted);
    Status s = out.Apply(e);
    if (!ctx.error.ok()) return stream_error();
    RETURN_IF_ERROR(s);
    ++result.entries;
    where = StrCat("after entry ", quoted);
  }
  where = "after the end of the tar archive";
  if (Status s = source.Drain(); !s.ok()) {
    if (source.source_failed()) return s;
    return Annotate(s, where);
  }
  RETURN_IF_ERROR(out.SetDirTimes());
  result.diff_id = source.Finish();
  result.uncompressed_bytes = source.total();
  return result;
}

}  // namespace berth::archive
