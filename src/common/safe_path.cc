#include "common/safe_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"

namespace berth {

StatusOr<std::string> ReadFileInRoot(const std::filesystem::path& root, std::string_view rel,
                                     size_t max_bytes) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus(errno, StrCat("open ", root.string()));
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  std::string path(rel);
  int fd = static_cast<int>(::syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how));
  if (fd < 0) return ErrnoStatus(errno, StrCat("open ", path, " in ", root.string()));
  UniqueFd file(fd);
  std::string out;
  char buf[65536];
  while (out.size() < max_bytes) {
    ssize_t n = ::read(file.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", path, " in ", root.string()));
    }
    if (n == 0) break;
    out.append(buf, std::min(static_cast<size_t>(n), max_bytes - out.size()));
  }
  return out;
}

}  // namespace berth
