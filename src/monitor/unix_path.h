// AF_UNIX bind/connect for paths of any length, libc only (shared by the
// monitor binary and the berthd-side client).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace berth::monitor {

// Binds (do_bind) or connects `sock` to `path`. A path too long for sun_path
// (bundle directories under deep state roots easily pass 108 bytes) is reached
// through /proc/self/fd/<fd of its directory>/<name>. Returns 0 or -1 with
// errno set, like bind(2)/connect(2).
inline int UnixSocketBindOrConnect(int sock, const std::string& path, bool do_bind) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  int dir_fd = -1;
  if (path.size() < sizeof(addr.sun_path)) {
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  } else {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
      errno = ENAMETOOLONG;
      return -1;
    }
    std::string dir = slash == 0 ? std::string("/") : path.substr(0, slash);
    dir_fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return -1;
    std::string short_path =
        "/proc/self/fd/" + std::to_string(dir_fd) + "/" + path.substr(slash + 1);
    if (short_path.size() >= sizeof(addr.sun_path)) {
      close(dir_fd);
      errno = ENAMETOOLONG;
      return -1;
    }
    std::memcpy(addr.sun_path, short_path.c_str(), short_path.size() + 1);
  }
  auto* sa = reinterpret_cast<const sockaddr*>(&addr);
  int rc = do_bind ? bind(sock, sa, sizeof(addr)) : connect(sock, sa, sizeof(addr));
  int saved = errno;
  if (dir_fd >= 0) close(dir_fd);
  errno = saved;
  return rc;
}

}  // namespace berth::monitor
