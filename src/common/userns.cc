#include "common/userns.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace berth {

namespace fs = std::filesystem;

namespace {

// A child process parked on a pipe: forked, it runs `setup` (syscalls
// only: it is the child of a multithreaded process), reports its result,
// and waits until the parent has done what it needs with its namespaces.
class ParkedChild {
 public:
  // `setup` returns 0 or an errno value.
  template <typename Setup>
  static StatusOr<ParkedChild> Start(Setup setup, const char* what) {
    int ready[2], release[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus(errno, StrCat("pipe for ", what));
    if (::pipe2(release, O_CLOEXEC) != 0) {
      int err = errno;
      ::close(ready[0]);
      ::close(ready[1]);
      return ErrnoStatus(err, StrCat("pipe for ", what));
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      int err = errno;
      for (int fd : {ready[0], ready[1], release[0], release[1]}) ::close(fd);
      return ErrnoStatus(err, StrCat("fork for ", what));
    }
    if (pid == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      int err = setup();
      (void)!::write(ready[1], &err, sizeof err);
      char c;
      (void)!::read(release[0], &c, 1);  // EOF when the parent is done
      ::_exit(err == 0 ? 0 : 1);
    }
    ::close(ready[1]);
    ::close(release[0]);
    ParkedChild child(pid, release[1]);
    int err = 0;
    ssize_t n;
    do {
      n = ::read(ready[0], &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    ::close(ready[0]);
    if (n != sizeof err) return InternalError(StrCat(what, ": helper process died"));
    if (err != 0) return ErrnoStatus(err, what);
    return child;
  }

  ParkedChild(ParkedChild&& o) noexcept : pid_(o.pid_), release_(o.release_) {
    o.pid_ = 0;
    o.release_ = -1;
  }
  ParkedChild& operator=(ParkedChild&&) = delete;
  ~ParkedChild() { Finish(); }

  pid_t pid() const { return pid_; }
  void Finish() {
    if (release_ >= 0) ::close(release_);
    release_ = -1;
    if (pid_ > 0) {
      int status;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    pid_ = 0;
  }

 private:
  ParkedChild(pid_t pid, int release) : pid_(pid), release_(release) {}
  pid_t pid_;
  int release_;
};

std::string MapText(const std::vector<IdMapping>& m) {
  std::string out;
  for (const auto& l : m) out += StrCat(l.container_id, " ", l.host_id, " ", l.length, "\n");
  return out;
}

Status WriteProcFile(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", path));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, StrCat("write ", path, " (\"", text, "\")"));
  }
  return OkStatus();
}

// A child parked in a new user namespace with the mappings written.
StatusOr<ParkedChild> ChildInNewUserNamespace(const std::vector<IdMapping>& uids,
                                              const std::vector<IdMapping>& gids) {
  RETURN_IF_ERROR(ValidateIdMappings(uids, "uid"));
  RETURN_IF_ERROR(ValidateIdMappings(gids, "gid"));
  ASSIGN_OR_RETURN(ParkedChild child,
                   ParkedChild::Start([] { return ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno; },
                                      "create a user namespace"));
  RETURN_IF_ERROR(WriteProcFile(StrCat("/proc/", child.pid(), "/uid_map"), MapText(uids)));
  RETURN_IF_ERROR(WriteProcFile(StrCat("/proc/", child.pid(), "/gid_map"), MapText(gids)));
  return child;
}

std::string FsTypeOf(const fs::path& p) {
  struct statfs st;
  if (::statfs(p.c_str(), &st) != 0) return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794c7630:
      return "overlay";
    case 0x6969:
      return "nfs";
    default:
      return StrCat("0x", fmt::format("{:x}", static_cast<unsigned long>(st.f_type)));
  }
}

}  // namespace

Status ValidateIdMappings(const std::vector<IdMapping>& m, std::string_view what) {
  if (m.empty()) return InvalidArgumentError(StrCat("user namespace has no ", what, " mappings"));
  if (m.size() > 340) {
    return InvalidArgumentError(StrCat("user namespace has ", m.size(), " ", what,
                                       " mappings; the kernel takes at most 340"));
  }
  for (size_t i = 0; i < m.size(); ++i) {
    const IdMapping& a = m[i];
    if (a.length == 0) {
      return InvalidArgumentError(StrCat(what, " mapping ", i, " has length 0"));
    }
    if (uint64_t{a.container_id} + a.length > (uint64_t{1} << 32) ||
        uint64_t{a.host_id} + a.length > (uint64_t{1} << 32)) {
      return InvalidArgumentError(StrCat(what, " mapping ", i, " goes past 2^32"));
    }
    for (size_t j = 0; j < i; ++j) {
      const IdMapping& b = m[j];
      auto overlap = [](uint64_t s1, uint64_t l1, uint64_t s2, uint64_t l2) {
        return s1 < s2 + l2 && s2 < s1 + l1;
      };
      if (overlap(a.container_id, a.length, b.container_id, b.length) ||
          overlap(a.host_id, a.length, b.host_id, b.length)) {
        return InvalidArgumentError(StrCat(what, " mappings ", j, " and ", i, " overlap"));
      }
    }
  }
  return OkStatus();
}

int64_t MapToHost(const std::vector<IdMapping>& m, uint32_t id) {
  for (const auto& l : m) {
    if (id >= l.container_id && uint64_t{id} < uint64_t{l.container_id} + l.length) {
      return int64_t{l.host_id} + (id - l.container_id);
    }
  }
  return -1;
}

StatusOr<UniqueFd> NewUserNamespace(const std::vector<IdMapping>& uids,
                                    const std::vector<IdMapping>& gids) {
  ASSIGN_OR_RETURN(ParkedChild child, ChildInNewUserNamespace(uids, gids));
  const std::string ns = StrCat("/proc/", child.pid(), "/ns/user");
  UniqueFd fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", ns));
  return fd;
}

Status PinNewUserNamespace(const fs::path& path, const std::vector<IdMapping>& uids,
                           const std::vector<IdMapping>& gids) {
  ASSIGN_OR_RETURN(ParkedChild child, ChildInNewUserNamespace(uids, gids));
  UniqueFd f(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!f.valid()) return ErrnoStatus(errno, StrCat("create ", path.string()));
  const std::string ns = StrCat("/proc/", child.pid(), "/ns/user");
  if (::mount(ns.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return ErrnoStatus(err, StrCat("pin user namespace at ", path.string()));
  }
  return OkStatus();
}

Status PinNamespacesInUserNamespace(const fs::path& userns_path,
                                    const std::vector<std::pair<int, fs::path>>& pins,
                                    const std::string& hostname) {
  UniqueFd userns(::open(userns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!userns.valid()) return ErrnoStatus(errno, StrCat("open ", userns_path.string()));
  int flags = 0;
  for (const auto& [flag, path] : pins) flags |= flag;
  const int userns_fd = userns.get();
  const char* name = hostname.c_str();
  const size_t name_len = hostname.size();
  ASSIGN_OR_RETURN(ParkedChild child, ParkedChild::Start(
                                          [=] {
                                            if (::setns(userns_fd, CLONE_NEWUSER) != 0)
                                              return errno;
                                            if (::unshare(flags) != 0) return errno;
                                            if ((flags & CLONE_NEWUTS) && name_len > 0 &&
                                                ::sethostname(name, name_len) != 0) {
                                              return errno;
                                            }
                                            return 0;
                                          },
                                          "create namespaces in the pod's user namespace"));
  for (const auto& [flag, path] : pins) {
    const char* kind = flag == CLONE_NEWNET ? "net" : flag == CLONE_NEWIPC ? "ipc" : "uts";
    const std::string ns = StrCat("/proc/", child.pid(), "/ns/", kind);
    if (::mount(ns.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return ErrnoStatus(errno, StrCat("pin ", kind, " namespace at ", path.string()));
    }
  }
  return OkStatus();
}

void UnpinNamespaceFile(const fs::path& path) {
  if (path.empty()) return;
  ::umount2(path.c_str(), MNT_DETACH);
  ::unlink(path.c_str());
}

Status IdmappedBind(const fs::path& source, const fs::path& target, int userns_fd, bool recursive,
                    bool receive_from_source) {
  unsigned int tree_flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  int tree = ::open_tree(AT_FDCWD, source.c_str(), tree_flags);
  if (tree < 0) return ErrnoStatus(errno, StrCat("open_tree ", source.string()));
  UniqueFd hold(tree);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::mount_setattr(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                      sizeof attr) != 0) {
    const int err = errno;
    if (err == EINVAL || err == EPERM || err == ENOSYS || err == EOPNOTSUPP) {
      return FailedPreconditionError(
          StrCat("cannot ID-map ", source.string(), " (filesystem ", FsTypeOf(source),
                 "): ", std::strerror(err),
                 "; user namespaces need a kernel and filesystem with "
                 "ID-mapped mounts (Linux 5.12+; ext4, xfs, btrfs, tmpfs 6.3+)"));
    }
    return ErrnoStatus(err, StrCat("ID-map ", source.string()));
  }
  if (::move_mount(tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoStatus(errno,
                       StrCat("attach ID-mapped ", source.string(), " at ", target.string()));
  }
  // Out of the source's peer group (see the header): a slave keeps receiving
  // its mounts, and sends nothing back, unmounts included.
  const unsigned long propagation = (receive_from_source ? MS_SLAVE : MS_PRIVATE) | MS_REC;
  if (::mount(nullptr, target.c_str(), nullptr, propagation, nullptr) != 0) {
    const int err = errno;
    ::umount2(target.c_str(), MNT_DETACH);
    return ErrnoStatus(err, StrCat("set propagation of ID-mapped ", target.string()));
  }
  return OkStatus();
}

Status ProbeIdmappedOverlay(const fs::path& scratch) {
  const fs::path dir = scratch / StrCat(".idmap-probe-", ::getpid());
  (void)RemoveAll(dir);
  RETURN_IF_ERROR(MakeDirs(dir / "lower", 0755));
  ScopeGuard remove([&] { (void)RemoveAll(dir); });
  for (const char* d : {"upper", "work", "mapped-lower", "merged"}) {
    RETURN_IF_ERROR(MakeDirs(dir / d, 0755));
  }
  RETURN_IF_ERROR(WriteFileAtomic(dir / "lower" / "file", "x", 0644));
  constexpr uint32_t kBase = 3000000000u;
  if (::chown((dir / "upper").c_str(), kBase, kBase) != 0) {
    return ErrnoStatus(errno, StrCat("chown ", (dir / "upper").string()));
  }
  ASSIGN_OR_RETURN(UniqueFd userns, NewUserNamespace({{0, kBase, 65536}}, {{0, kBase, 65536}}));
  RETURN_IF_ERROR(IdmappedBind(dir / "lower", dir / "mapped-lower", userns.get(), false));
  ScopeGuard u1([&] { ::umount2((dir / "mapped-lower").c_str(), MNT_DETACH); });
  const std::string opts =
      StrCat("lowerdir=", (dir / "mapped-lower").string(), ",upperdir=", (dir / "upper").string(),
             ",workdir=", (dir / "work").string());
  if (::mount("overlay", (dir / "merged").c_str(), "overlay", 0, opts.c_str()) != 0) {
    return FailedPreconditionError(
        StrCat("overlayfs refuses ID-mapped lower layers here: ", std::strerror(errno)));
  }
  ScopeGuard u2([&] { ::umount2((dir / "merged").c_str(), MNT_DETACH); });
  struct stat st;
  if (::stat((dir / "merged" / "file").c_str(), &st) != 0 || st.st_uid != kBase) {
    return FailedPreconditionError("an overlay of ID-mapped layers does not show mapped owners");
  }
  if (::mkdir((dir / "merged" / "written").c_str(), 0755) != 0) {
    return FailedPreconditionError(
        StrCat("an overlay of ID-mapped layers is not writable here: ", std::strerror(errno)));
  }
  return OkStatus();
}

}  // namespace berth
