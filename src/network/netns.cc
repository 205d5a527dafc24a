#include "network/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "common/fs.h"
#include "common/userns.h"

namespace berth::network {

namespace fs = std::filesystem;

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace {

bool IsSingleComponent(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

}  // namespace

NetworkNamespaces::NetworkNamespaces(fs::path dir) : dir_(std::move(dir)) {}

Status NetworkNamespaces::PrepareDirLocked() {
  if (dir_ready_) return OkStatus();
  RETURN_IF_ERROR(MakeDirs(dir_, 0755));
  // iproute2's sequence: try to make the directory shared; EINVAL means it is
  // not a mount point yet, so bind it onto itself once and try again.
  bool bound = false;
  while (::mount("", dir_.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    int err = errno;
    if (err != EINVAL || bound) {
      return ErrnoStatus(err, StrCat("mount --make-rshared ", dir_.string()));
    }
    if (::mount(dir_.c_str(), dir_.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
      return ErrnoStatus(errno, StrCat("mount --rbind ", dir_.string(), " onto itself"));
    }
    bound = true;
  }
  dir_ready_ = true;
  return OkStatus();
}

StatusOr<fs::path> NetworkNamespaces::Create(std::string_view name, const fs::path& userns_path) {
  if (!IsSingleComponent(name)) {
    return InvalidArgumentError(
        StrCat("network namespace name \"", name, "\" must be one non-empty path component"));
  }
  fs::path path = PathOf(name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(PrepareDirLocked());
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return AlreadyExistsError(StrCat("network namespace ", path.string(), " already exists"));
    }
    return ErrnoStatus(err, StrCat("create network namespace file ", path.string()));
  }
  ::close(fd);
  ScopeGuard unlink_file([&] { ::unlink(path.c_str()); });
  if (!userns_path.empty()) {
    RETURN_IF_ERROR(PinNamespacesInUserNamespace(userns_path, {{CLONE_NEWNET, path}}, ""));
    unlink_file.Cancel();
    return path;
  }

  // unshare(CLONE_NEWNET) moves only the calling thread, so a short-lived
  // thread does it and pins its namespace before exiting; the daemon's other
  // threads never change namespace.
  Status status;
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      status = ErrnoStatus(errno, StrCat("unshare(CLONE_NEWNET) for ", path.string()));
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      status = ErrnoStatus(errno, StrCat("bind mount new network namespace onto ", path.string()));
    }
  });
  worker.join();
  RETURN_IF_ERROR(status);
  unlink_file.Cancel();
  return path;
}

Status NetworkNamespaces::Remove(std::string_view name) const {
  if (!IsSingleComponent(name)) {
    return InvalidArgumentError(
        StrCat("network namespace name \"", name, "\" must be one non-empty path component"));
  }
  return RemoveNetworkNamespace(PathOf(name));
}

Status RemoveNetworkNamespace(const fs::path& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return ErrnoStatus(errno, StrCat("unmount network namespace ", path.string()));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, StrCat("remove network namespace file ", path.string()));
  }
  return OkStatus();
}

StatusOr<bool> IsNetworkNamespace(const fs::path& path) {
  struct statfs st;
  if (::statfs(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT)
      return NotFoundError(StrCat("network namespace ", path.string(), " does not exist"));
    return ErrnoStatus(err, StrCat("statfs ", path.string()));
  }
  if (static_cast<unsigned long>(st.f_type) != static_cast<unsigned long>(NSFS_MAGIC)) return false;
  // nsfs also holds other namespace kinds; only a net namespace accepts this.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", path.string()));
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  return type == CLONE_NEWNET;
}

Status RunInNetworkNamespace(const fs::path& path, const std::function<Status()>& fn) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open network namespace ", path.string()));
  Status status;
  std::thread worker([&] {
    if (::setns(fd.get(), CLONE_NEWNET) != 0) {
      status = ErrnoStatus(errno, StrCat("join network namespace ", path.string()));
      return;
    }
    status = fn();
  });
  worker.join();
  return status;
}

namespace {

// Connects a non-blocking socket, waiting at most `timeout`; returns 0 or an
// errno value.
int ConnectWithTimeout(int fd, const sockaddr* addr, socklen_t len,
                       std::chrono::milliseconds timeout) {
  if (::connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd pfd{fd, POLLOUT, 0};
  int rc;
  do {
    rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return errno;
  if (rc == 0) return ETIMEDOUT;
  int err = 0;
  socklen_t err_len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) return errno;
  return err;
}

}  // namespace

StatusOr<UniqueFd> ConnectLoopback(const fs::path& netns_path, uint16_t port,
                                   std::chrono::milliseconds timeout) {
  if (port == 0) return InvalidArgumentError("port 0 cannot be connected to");
  UniqueFd v4, v6;
  auto make_sockets = [&]() -> Status {
    v4.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!v4.valid()) return ErrnoStatus(errno, "create a TCP socket");
    // IPv6 may be disabled in the namespace: then only IPv4 is tried.
    v6.Reset(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    return OkStatus();
  };
  if (netns_path.empty()) {
    RETURN_IF_ERROR(make_sockets());
  } else {
    RETURN_IF_ERROR(RunInNetworkNamespace(netns_path, make_sockets));
  }
  sockaddr_in a4{};
  a4.sin_family = AF_INET;
  a4.sin_port = htons(port);
  a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Connected sockets are handed out blocking, as sockets usually are.
  auto blocking = [](UniqueFd fd) {
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
  };
  int err = ConnectWithTimeout(v4.get(), reinterpret_cast<sockaddr*>(&a4), sizeof a4, timeout);
  if (err == 0) return blocking(std::move(v4));
  if (err == ECONNREFUSED && v6.valid()) {
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(port);
    a6.sin6_addr = in6addr_loopback;
    int err6 = ConnectWithTimeout(v6.get(), reinterpret_cast<sockaddr*>(&a6), sizeof a6, timeout);
    if (err6 == 0) return blocking(std::move(v6));
    if (err6 != ECONNREFUSED && err6 != EADDRNOTAVAIL && err6 != ENETUNREACH) err = err6;
  }
  if (err == ECONNREFUSED) {
    return UnavailableError(
        StrCat("nothing listens on port ", port, " of 127.0.0.1 or [::1] (connection refused)"));
  }
  if (err == ETIMEDOUT) {
    return DeadlineExceededError(
        StrCat("connecting to 127.0.0.1:", port, " took more than ", timeout.count(), " ms"));
  }
  return ErrnoStatus(err, StrCat("connect to 127.0.0.1:", port));
}

}  // namespace berth::network
