#include "oci/native_exec.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <sstream>

#include "common/fs.h"
#include "common/numbers.h"
#include "common/proc.h"
#include "oci/capabilities.h"

namespace berth::oci {

namespace {

using json = nlohmann::json;

// Capability names to a mask; like runc, names unknown here or to the
// kernel are ignored.
uint64_t CapMask(const json& process, const char* set, int last_cap) {
  uint64_t mask = 0;
  const json* caps = process.contains("capabilities") ? &process["capabilities"] : nullptr;
  if (caps == nullptr || !caps->is_object() || !caps->contains(set)) return 0;
  for (const auto& name : (*caps)[set]) {
    if (!name.is_string()) continue;
    const std::string n = name.get<std::string>();
    for (int c = 0; c <= last_cap && c < static_cast<int>(kCapabilityNames.size()); ++c) {
      if (n == kCapabilityNames[c]) mask |= uint64_t{1} << c;
    }
  }
  return mask;
}

std::optional<int> RlimitNumber(const std::string& name) {
  static constexpr std::pair<const char*, int> kNames[] = {
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME}};
  for (const auto& [n, v] : kNames) {
    if (name == n) return v;
  }
  return std::nullopt;
}

// What the helper and the process report when a step fails, on the error
// pipe. Nothing arrives when execve() succeeded (the pipe is close-on-exec).
enum Stage : int32_t {
  kStageCgroup = 1,
  kStageSetns,
  kStageClone,
  kStageTerminal,
  kStageStdio,
  kStageRlimit,
  kStageNoNewPrivs,
  kStageSeccomp,
  kStageBounding,
  kStageGroups,
  kStageUser,
  kStageCwd,
  kStageCaps,
  kStageExecNotFound,
  kStageExec,
};
struct ChildError {
  int32_t stage = 0;
  int32_t err = 0;
};

const char* StageName(int32_t stage) {
  switch (stage) {
    case kStageCgroup:
      return "join the container's cgroups";
    case kStageSetns:
      return "join the container's namespaces";
    case kStageClone:
      return "clone into the container's PID namespace";
    case kStageTerminal:
      return "open a terminal in the container";
    case kStageStdio:
      return "set up stdio";
    case kStageRlimit:
      return "set rlimits";
    case kStageNoNewPrivs:
      return "set no_new_privs";
    case kStageSeccomp:
      return "load the seccomp filter";
    case kStageBounding:
      return "drop from the capability bounding set";
    case kStageGroups:
      return "set additional groups";
    case kStageUser:
      return "set uid and gid";
    case kStageCwd:
      return "chdir to cwd set in config.json";
    case kStageCaps:
      return "set capabilities";
    default:
      return "exec";
  }
}

// Everything the forked helper and the process need, prepared before the
// fork: after it, they only make system calls (no allocation, no locks:
// berthd is multithreaded).
struct Plan {
  // helper
  int pidfd = -1;
  int ns_flags = 0;
  std::vector<int> cgroup_fds;  // cgroup.procs of each hierarchy, to write "0" to
  std::string oom_score_adj;    // empty: leave as is
  std::vector<int> keep_fds;    // sorted: every descriptor the helper keeps
  int err_w = -1;               // ChildError; close-on-exec, so EOF means exec'd
  int pid_w = -1;               // the helper writes the process's pid here
  // process
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  int console_w = -1;  // terminal: the pty master goes to berthd through it
  bool terminal = false;
  uint16_t rows = 0, cols = 0;
  std::vector<std::pair<int, rlimit>> rlimits;
  bool no_new_privs = false;
  const sock_fprog* seccomp = nullptr;
  unsigned seccomp_flags = 0;
  int last_cap = 40;
  uint64_t bounding = 0, effective = 0, permitted = 0, inheritable = 0, ambient = 0;
  bool set_groups = true;
  std::vector<gid_t> groups;
  uid_t uid = 0;
  gid_t gid = 0;
  std::optional<mode_t> umask;
  std::string cwd;
  std::vector<std::string> strings;  // owns what the pointers below point to
  std::vector<char*> argv, envp;
  std::vector<std::string> exec_paths;  // candidates, in PATH order
  bool stop_for_test = false;           // see NativeExecutor::test_stop_marker_
};

[[noreturn]] void Fail(const Plan& p, int32_t stage, int err) {
  ChildError e{stage, err};
  ssize_t unused = ::write(p.err_w, &e, sizeof e);
  (void)unused;
  ::_exit(127);
}

// Closes every descriptor but `keep` (sorted).
void CloseAllExcept(const std::vector<int>& keep) {
  unsigned from = 0;
  for (int fd : keep) {
    if (static_cast<unsigned>(fd) > from) ::syscall(SYS_close_range, from, fd - 1, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  ::syscall(SYS_close_range, from, ~0U, 0);
}

bool SendFd(int sock, int fd) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == 1;
}

// The process, in the container's namespaces and cgroups (a child of
// berthd). Applies the settings in the order runc's setns init does.
[[noreturn]] void RunProcess(const Plan& p) {
  ::setsid();
  if (p.terminal) {
    // The pty of the container's own devpts, as runc makes it; the peer is
    // opened through the master, never by a path the container controls.
    int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) Fail(p, kStageTerminal, errno);
    int unlock = 0;
    if (::ioctl(master, TIOCSPTLCK, &unlock) != 0) Fail(p, kStageTerminal, errno);
    int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) Fail(p, kStageTerminal, errno);
    if (p.rows != 0 || p.cols != 0) {
      struct winsize ws {};
      ws.ws_row = p.rows;
      ws.ws_col = p.cols;
      ::ioctl(slave, TIOCSWINSZ, &ws);
    }
    if (!SendFd(p.console_w, master)) Fail(p, kStageTerminal, errno);
    ::close(master);
    if (::ioctl(slave, TIOCSCTTY, 0) != 0) Fail(p, kStageTerminal, errno);
    for (int i = 0; i < 3; ++i) {
      if (::dup2(slave, i) < 0) Fail(p, kStageStdio, errno);
    }
  } else {
    if (::dup2(p.stdin_fd, 0) < 0 || ::dup2(p.stdout_fd, 1) < 0 || ::dup2(p.stderr_fd, 2) < 0) {
      Fail(p, kStageStdio, errno);
    }
  }
  // Only stdio and the error pipe (close-on-exec) are left.
  if (p.err_w > 3) ::syscall(SYS_close_range, 3U, static_cast<unsigned>(p.err_w - 1), 0);
  ::syscall(SYS_close_range, static_cast<unsigned>(p.err_w + 1), ~0U, 0);

  for (const auto& [resource, limit] : p.rlimits) {
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &limit) != 0) {
      Fail(p, kStageRlimit, errno);
    }
  }
  if (p.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    Fail(p, kStageNoNewPrivs, errno);
  }
  // Without no_new_privs loading a filter needs CAP_SYS_ADMIN: load it while
  // the process still has it; with it, as late as possible (as runc does).
  auto load_seccomp = [&] {
    if (p.seccomp == nullptr) return;
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p.seccomp_flags, p.seccomp) != 0) {
      Fail(p, kStageSeccomp, errno);
    }
  };
  if (!p.no_new_privs) load_seccomp();
  for (int c = 0; c <= p.last_cap; ++c) {
    if ((p.bounding >> c) & 1) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
      Fail(p, kStageBounding, errno);
    }
  }
  ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
  // As root first; a directory only the user may enter is tried again below.
  bool in_cwd = ::chdir(p.cwd.c_str()) == 0;
  if (!in_cwd && errno != EACCES && errno != EPERM) Fail(p, kStageCwd, errno);
  // Raw system calls for the set*id family: glibc's wrappers signal every
  // thread berthd had, which do not exist in this copy, and wait forever.
  if (p.set_groups && ::syscall(SYS_setgroups, p.groups.size(), p.groups.data()) != 0) {
    Fail(p, kStageGroups, errno);
  }
  if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) Fail(p, kStageUser, errno);
  if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) Fail(p, kStageUser, errno);
  if (!in_cwd && ::chdir(p.cwd.c_str()) != 0) Fail(p, kStageCwd, errno);
  ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(p.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(p.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(p.inheritable >> (32 * i));
  }
  if (::syscall(SYS_capset, &header, data) != 0) Fail(p, kStageCaps, errno);
  // Best effort, as runc 1.1 does: a capability not also inheritable and
  // permitted cannot be ambient, and runc execs without it.
  for (int c = 0; c <= p.last_cap; ++c) {
    if ((p.ambient >> c) & 1) ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
  }
  if (p.umask) ::umask(*p.umask);
  if (p.no_new_privs) load_seccomp();
  // berthd's blocked and ignored signals are not the process's.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
  }
  if (p.stop_for_test) ::kill(::getpid(), SIGSTOP);
  int err = ENOENT;
  bool only_missing = true;
  for (const auto& path : p.exec_paths) {
    ::execve(path.c_str(), p.argv.data(), p.envp.data());
    err = errno;
    if (err != ENOENT && err != ENOTDIR && err != EACCES) {
      only_missing = false;
      break;
    }
  }
  Fail(p, only_missing ? kStageExecNotFound : kStageExec, err);
}

// The helper: berthd's child, never exec'd.
[[noreturn]] void RunHelper(const Plan& p) {
  // Before anything of the container can see it: no ptrace, no /proc/<pid>/
  // exe, fd or mem for processes that are not host-root with CAP_SYS_PTRACE.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  CloseAllExcept(p.keep_fds);
  for (int fd : p.cgroup_fds) {
    if (::write(fd, "0", 1) != 1) Fail(p, kStageCgroup, errno);
    ::close(fd);
  }
  if (!p.oom_score_adj.empty()) {
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t unused = ::write(fd, p.oom_score_adj.data(), p.oom_score_adj.size());
      (void)unused;
      ::close(fd);
    }
  }
  if (p.ns_flags != 0 && ::setns(p.pidfd, p.ns_flags) != 0) Fail(p, kStageSetns, errno);
  ::close(p.pidfd);
  if (p.stop_for_test) ::kill(::getpid(), SIGSTOP);
  // A child in the container's PID namespace whose parent is berthd (as
  // runc's nsexec does): the helper exits right away.
  long pid = ::syscall(SYS_clone, CLONE_PARENT, nullptr, nullptr, nullptr, 0);
  if (pid == 0) RunProcess(p);
  if (pid < 0) Fail(p, kStageClone, errno);
  pid_t child = static_cast<pid_t>(pid);
  ssize_t unused = ::write(p.pid_w, &child, sizeof child);
  (void)unused;
  ::_exit(0);
}

// Starts the helper process (RunHelper). A raw clone: no atfork handlers of
// the libraries berthd links (gRPC's take locks), and the child only makes
// system calls. Under ThreadSanitizer those calls go through its
// interceptors, which take the runtime's internal locks: a raw clone can copy
// one that another thread holds, and the helper then waits for it forever
// (ExecSync hung in the TSan build, docs/testing.md "TSan record"). TSan's
// fork() takes all of them around the fork, so TSan builds use it.
#if defined(__SANITIZE_THREAD__)
#define BERTH_EXEC_HELPER_FORKS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BERTH_EXEC_HELPER_FORKS 1
#endif
#endif
long CloneHelper() {
#ifdef BERTH_EXEC_HELPER_FORKS
  return ::fork();
#else
  return ::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0);
#endif
}

Status MakePipe(UniqueFd& r, UniqueFd& w) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  r.Reset(fds[0]);
  w.Reset(fds[1]);
  return OkStatus();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// A file of the container's root filesystem, resolved inside it (symlinks
// cannot leave it), without blocking on a FIFO; nullopt when absent.
std::optional<std::string> ReadContainerFile(pid_t init, const char* path) {
  UniqueFd root(::open(StrCat("/proc/", init, "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return std::nullopt;
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root.get(), path, &how, sizeof how)));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::string out;
  char buf[8192];
  ssize_t n;
  while (out.size() < (1 << 20) && (n = ::read(fd.get(), buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The home directory of `uid` from the container's /etc/passwd, "/" when
// it has none (runc's rule for the HOME it adds).
std::string HomeOf(pid_t init, uid_t uid) {
  auto passwd = ReadContainerFile(init, "/etc/passwd");
  if (!passwd) return "/";
  std::istringstream in(*passwd);
  std::string line;
  while (std::getline(in, line)) {
    auto f = Split(line, ':');
    if (f.size() >= 6 && f[2] == std::to_string(uid)) return f[5];
  }
  return "/";
}

// /proc/<pid>/stat's ppid, 0 when unreadable.
pid_t ParentOf(pid_t pid) {
  auto stat = ReadProcessStat(pid);
  return stat ? stat->ppid : 0;
}

}  // namespace

namespace {

StatusOr<CompiledSeccomp> CompileSeccompOrThrow(const json& seccomp) {
  auto action_of = [](const std::string& name, const json& errno_ret) -> StatusOr<uint32_t> {
    uint16_t err = errno_ret.is_number_unsigned() ? errno_ret.get<uint16_t>() : EPERM;
    if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
    if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
    if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
    if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(err);
    if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(err);
    if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
    if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
    if (name == "SCMP_ACT_NOTIFY") {
      return UnimplementedError("seccomp action SCMP_ACT_NOTIFY needs runc exec");
    }
    return InvalidArgumentError(StrCat("unknown seccomp action ", name));
  };
  ASSIGN_OR_RETURN(uint32_t default_action, action_of(seccomp.value("defaultAction", ""),
                                                      seccomp.value("defaultErrnoRet", json())));
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (ctx == nullptr) return InternalError("seccomp_init failed");
  ScopeGuard release([&] { seccomp_release(ctx); });
  // no_new_privs is the process JSON's to set, not libseccomp's.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  for (const auto& arch : seccomp.value("architectures", json::array())) {
    if (!arch.is_string()) continue;
    std::string name = arch.get<std::string>();
    if (name.starts_with("SCMP_ARCH_")) name = name.substr(10);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    uint32_t token = seccomp_arch_resolve_name(name.c_str());
    if (token == 0) continue;  // an architecture this libseccomp does not know
    int rc = seccomp_arch_add(ctx, token);
    if (rc != 0 && rc != -EEXIST) return ErrnoStatus(-rc, StrCat("seccomp architecture ", name));
  }
  for (const auto& rule : seccomp.value("syscalls", json::array())) {
    ASSIGN_OR_RETURN(uint32_t action,
                     action_of(rule.value("action", ""), rule.value("errnoRet", json())));
    if (action == default_action) continue;  // runc skips these too
    std::vector<scmp_arg_cmp> conds;
    int per_index[6] = {};
    bool repeated_index = false;
    for (const auto& a : rule.value("args", json::array())) {
      unsigned index = a.value("index", 0u);
      if (index >= 6) return InvalidArgumentError(StrCat("seccomp argument index ", index));
      repeated_index |= ++per_index[index] > 1;
      const std::string op = a.value("op", "");
      scmp_compare cmp;
      if (op == "SCMP_CMP_NE")
        cmp = SCMP_CMP_NE;
      else if (op == "SCMP_CMP_LT")
        cmp = SCMP_CMP_LT;
      else if (op == "SCMP_CMP_LE")
        cmp = SCMP_CMP_LE;
      else if (op == "SCMP_CMP_EQ")
        cmp = SCMP_CMP_EQ;
      else if (op == "SCMP_CMP_GE")
        cmp = SCMP_CMP_GE;
      else if (op == "SCMP_CMP_GT")
        cmp = SCMP_CMP_GT;
      else if (op == "SCMP_CMP_MASKED_EQ")
        cmp = SCMP_CMP_MASKED_EQ;
      else
        return InvalidArgumentError(StrCat("unknown seccomp operator ", op));
      conds.push_back(
          {index, cmp, a.value("value", uint64_t{0}), a.value("valueTwo", uint64_t{0})});
    }
    for (const auto& n : rule.value("names", json::array())) {
      if (!n.is_string()) continue;
      int nr = seccomp_syscall_resolve_name(n.get<std::string>().c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // unknown to libseccomp: skipped, as runc does
      int rc;
      if (repeated_index) {
        // Several conditions on one argument: runc adds a rule per condition.
        for (const auto& c : conds) {
          rc = seccomp_rule_add_array(ctx, action, nr, 1, &c);
          if (rc != 0) break;
        }
      } else {
        rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(conds.size()),
                                    conds.data());
      }
      if (rc != 0) {
        return ErrnoStatus(-rc, StrCat("seccomp rule for ", n.get<std::string>()));
      }
    }
  }
  CompiledSeccomp out;
  for (const auto& f : seccomp.value("flags", json::array())) {
    if (f == "SECCOMP_FILTER_FLAG_LOG") out.flags |= SECCOMP_FILTER_FLAG_LOG;
    if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") out.flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  }
  UniqueFd mem(::memfd_create("berth-seccomp", MFD_CLOEXEC));
  if (!mem.valid()) return ErrnoStatus(errno, "memfd for the seccomp filter");
  int rc = seccomp_export_bpf(ctx, mem.get());
  if (rc != 0) return ErrnoStatus(-rc, "export the seccomp filter");
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % 8 != 0) return InternalError("seccomp filter of odd size");
  out.program.resize(static_cast<size_t>(size) / 8);
  if (::pread(mem.get(), out.program.data(), static_cast<size_t>(size), 0) != size) {
    return ErrnoStatus(errno, "read the seccomp filter");
  }
  return out;
}

}  // namespace

StatusOr<CompiledSeccomp> CompileSeccomp(const json& seccomp) {
  // A Localhost profile is the node's file: a field of the wrong type is an
  // error, never an exception out of berthd.
  try {
    if (!seccomp.is_object()) return InvalidArgumentError("seccomp profile is not an object");
    return CompileSeccompOrThrow(seccomp);
  } catch (const json::exception& e) {
    return InvalidArgumentError(StrCat("seccomp profile: ", e.what()));
  }
}

struct NativeExecutor::Container {
  size_t spec_hash = 0;
  pid_t init_pid = 0;
  int ns_flags = 0;
  bool user_ns = false;
  std::optional<CompiledSeccomp> seccomp;
  sock_fprog fprog{};
  std::vector<std::string> cgroup_procs;  // of the init's cgroups
};

NativeExecutor::NativeExecutor() {
  if (const char* marker = ::getenv("BERTH_TEST_EXEC_STOP"); marker != nullptr) {
    test_stop_marker_ = marker;
  }
  if (auto last = ReadFile("/proc/sys/kernel/cap_last_cap"); last.ok()) {
    if (auto n = ParseDecimal<int>(*last)) cap_last_cap_ = std::min(63, *n);
  }
  if (auto lsm = ReadFile("/sys/kernel/security/lsm"); lsm.ok()) {
    for (const auto& m : Split(*lsm, ',')) {
      if (m == "apparmor") {
        auto enabled = ReadFile("/sys/module/apparmor/parameters/enabled");
        lsm_apparmor_ = enabled.ok() && enabled->starts_with("Y");
      }
      if (m == "selinux") lsm_selinux_ = true;
    }
  }
  // mountinfo: id parent major:minor root mount-point options ... - fstype source super-options
  if (auto info = ReadFile("/proc/self/mountinfo"); info.ok()) {
    std::istringstream in(*info);
    std::string line;
    while (std::getline(in, line)) {
      size_t dash = line.find(" - ");
      if (dash == std::string::npos) continue;
      std::istringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
      std::string id, parent, dev, root, point, fstype, source, super;
      head >> id >> parent >> dev >> root >> point;
      tail >> fstype >> source >> super;
      if (fstype != "cgroup" && fstype != "cgroup2") continue;
      CgroupMount m;
      m.v2 = fstype == "cgroup2";
      m.options = Split(super, ',');
      m.mount_point = point;
      m.root = root;
      cgroup_mounts_.push_back(std::move(m));
    }
  }
}

NativeExecutor::~NativeExecutor() = default;

void NativeExecutor::Forget(const std::string& id) {
  std::lock_guard lock(mu_);
  containers_.erase(id);
}

StatusOr<std::shared_ptr<const NativeExecutor::Container>> NativeExecutor::Prepare(
    const NativeExecTarget& target, const std::string& spec_text) {
  const size_t hash = std::hash<std::string>()(spec_text);
  {
    std::lock_guard lock(mu_);
    auto it = containers_.find(target.id);
    if (it != containers_.end() && it->second->spec_hash == hash &&
        it->second->init_pid == target.init_pid) {
      return it->second;
    }
  }
  json spec = json::parse(spec_text, nullptr, false);
  if (spec.is_discarded())
    return DataLossError(StrCat("config.json of ", target.id, " is corrupt"));
  auto c = std::make_shared<Container>();
  c->spec_hash = hash;
  c->init_pid = target.init_pid;
  const json linux = spec.value("linux", json::object());
  for (const auto& ns : linux.value("namespaces", json::array())) {
    const std::string type = ns.value("type", "");
    if (type == "pid")
      c->ns_flags |= CLONE_NEWPID;
    else if (type == "network")
      c->ns_flags |= CLONE_NEWNET;
    else if (type == "mount")
      c->ns_flags |= CLONE_NEWNS;
    else if (type == "ipc")
      c->ns_flags |= CLONE_NEWIPC;
    else if (type == "uts")
      c->ns_flags |= CLONE_NEWUTS;
    else if (type == "cgroup")
      c->ns_flags |= CLONE_NEWCGROUP;
    else if (type == "user")
      c->ns_flags |= CLONE_NEWUSER, c->user_ns = true;
    else
      return UnimplementedError(StrCat("namespace type \"", type, "\""));
  }
  if (linux.contains("seccomp") && linux["seccomp"].is_object()) {
    ASSIGN_OR_RETURN(CompiledSeccomp compiled, CompileSeccomp(linux["seccomp"]));
    c->seccomp = std::move(compiled);
    c->fprog.len = static_cast<unsigned short>(c->seccomp->program.size());
    c->fprog.filter = reinterpret_cast<sock_filter*>(c->seccomp->program.data());
  }
  // The init's cgroups, one line per hierarchy: "id:controllers:/path".
  ASSIGN_OR_RETURN(std::string cgroups, ReadFile(StrCat("/proc/", target.init_pid, "/cgroup")));
  std::istringstream in(cgroups);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const bool v2 = line.substr(0, a) == "0";
    const auto controllers = Split(line.substr(a + 1, b - a - 1), ',');
    std::string path = line.substr(b + 1);
    const CgroupMount* mount = nullptr;
    for (const auto& m : cgroup_mounts_) {
      if (m.v2 != v2) continue;
      bool all = std::all_of(controllers.begin(), controllers.end(), [&](const std::string& ctl) {
        return std::find(m.options.begin(), m.options.end(), ctl) != m.options.end();
      });
      if (v2 || (all && !controllers.empty())) {
        mount = &m;
        break;
      }
    }
    if (mount == nullptr) continue;  // a hierarchy not mounted here: nothing to join
    if (mount->root != "/" && path.starts_with(mount->root)) path = path.substr(mount->root.size());
    c->cgroup_procs.push_back(StrCat(mount->mount_point, path == "/" ? "" : path, "/cgroup.procs"));
  }
  std::lock_guard lock(mu_);
  containers_[target.id] = c;
  return std::shared_ptr<const Container>(c);
}

StatusOr<std::unique_ptr<ExecProcess>> NativeExecutor::Exec(const NativeExecTarget& target,
                                                            const std::string& spec_text,
                                                            const json& process, const ExecIo& io) {
  const std::string what = StrCat("exec in container ", target.id);
  if (!process.value("apparmorProfile", "").empty() && lsm_apparmor_) {
    return UnimplementedError("an AppArmor profile");
  }
  if (!process.value("selinuxLabel", "").empty() && lsm_selinux_) {
    return UnimplementedError("an SELinux label");
  }
  if (target.init_pid <= 0) return FailedPreconditionError(StrCat(what, ": no init process"));
  // The pidfd first, then the check that it is the init (its parent is the
  // monitor): a pid recycled before pidfd_open fails the check, and one
  // recycled after cannot be, the pidfd pins the process.
  // Either failing, the runtime (which knows the container's state) decides.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, target.init_pid, 0)));
  if (!pidfd.valid()) return UnimplementedError(StrCat("init pid ", target.init_pid, " is gone"));
  if (target.init_parent != 0 && ParentOf(target.init_pid) != target.init_parent) {
    return UnimplementedError(StrCat("init pid ", target.init_pid, " is not its monitor's child"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const Container> c, Prepare(target, spec_text));

  Plan p;
  p.pidfd = pidfd.get();
  p.ns_flags = c->ns_flags;
  p.last_cap = cap_last_cap_;
  p.terminal = io.terminal;
  p.rows = io.rows;
  p.cols = io.cols;
  if (c->seccomp) {
    p.seccomp = &c->fprog;
    p.seccomp_flags = c->seccomp->flags;
  }
  p.bounding = CapMask(process, "bounding", cap_last_cap_);
  p.effective = CapMask(process, "effective", cap_last_cap_);
  p.permitted = CapMask(process, "permitted", cap_last_cap_);
  p.inheritable = CapMask(process, "inheritable", cap_last_cap_);
  p.ambient = CapMask(process, "ambient", cap_last_cap_);
  p.no_new_privs = process.value("noNewPrivileges", false);
  const json user = process.value("user", json::object());
  p.uid = user.value("uid", 0u);
  p.gid = user.value("gid", 0u);
  for (const auto& g : user.value("additionalGids", json::array())) {
    if (g.is_number_unsigned()) p.groups.push_back(g.get<gid_t>());
  }
  if (user.contains("umask") && user["umask"].is_number_unsigned()) {
    p.umask = user["umask"].get<mode_t>();
  }
  if (c->user_ns) {
    auto setgroups = ReadFile(StrCat("/proc/", target.init_pid, "/setgroups"));
    p.set_groups = !(setgroups.ok() && setgroups->starts_with("deny"));
  }
  for (const auto& r : process.value("rlimits", json::array())) {
    auto resource = RlimitNumber(r.value("type", ""));
    if (!resource) return InvalidArgumentError(StrCat("unknown rlimit ", r.value("type", "")));
    p.rlimits.push_back(
        {*resource, rlimit{r.value("soft", rlim_t{0}), r.value("hard", rlim_t{0})}});
  }
  if (process.contains("oomScoreAdj") && process["oomScoreAdj"].is_number_integer()) {
    p.oom_score_adj = std::to_string(process["oomScoreAdj"].get<int>());
  }
  p.cwd = process.value("cwd", "/");

  // Environment as runc builds it: a later duplicate replaces the value in
  // place, and HOME comes from the container's passwd when not set.
  std::vector<std::string> env;
  for (const auto& e : process.value("env", json::array())) {
    if (!e.is_string()) continue;
    std::string pair = e.get<std::string>();
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UnknownError(StrCat(what, ": invalid environment variable \"", pair, "\""));
    }
    auto same = std::find_if(env.begin(), env.end(), [&](const std::string& have) {
      return have.compare(0, eq + 1, pair, 0, eq + 1) == 0;
    });
    if (same != env.end())
      *same = pair;
    else
      env.push_back(pair);
  }
  auto env_value = [&](const std::string& key) -> std::optional<std::string> {
    for (const auto& e : env) {
      if (e.starts_with(key + "=")) return e.substr(key.size() + 1);
    }
    return std::nullopt;
  };
  if (!env_value("HOME") || env_value("HOME")->empty()) {
    std::erase_if(env, [](const std::string& e) { return e.starts_with("HOME="); });
    env.push_back("HOME=" + HomeOf(target.init_pid, p.uid));
  }
  std::vector<std::string> args;
  for (const auto& a : process.value("args", json::array())) {
    if (a.is_string()) args.push_back(a.get<std::string>());
  }
  if (args.empty()) return InvalidArgumentError("exec needs a command");
  // The executable is looked up inside the container (after its root and
  // cwd are ours), along the process's PATH.
  if (args[0].find('/') != std::string::npos) {
    p.exec_paths.push_back(args[0]);
  } else {
    for (const auto& dir : Split(env_value("PATH").value_or(""), ':')) {
      if (!dir.empty()) p.exec_paths.push_back(StrCat(dir, "/", args[0]));
    }
  }
  p.stop_for_test = !test_stop_marker_.empty() &&
                    std::find(args.begin(), args.end(), test_stop_marker_) != args.end();
  p.strings.reserve(args.size() + env.size());
  for (auto& a : args) p.strings.push_back(std::move(a));
  size_t argc = p.strings.size();
  for (auto& e : env) p.strings.push_back(std::move(e));
  for (size_t i = 0; i < p.strings.size(); ++i) {
    (i < argc ? p.argv : p.envp).push_back(p.strings[i].data());
  }
  p.argv.push_back(nullptr);
  p.envp.push_back(nullptr);

  // Descriptors.
  std::vector<UniqueFd> cgroup_fds;
  for (const auto& path : c->cgroup_procs) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, StrCat(what, ": open ", path));
    p.cgroup_fds.push_back(fd.get());
    cgroup_fds.push_back(std::move(fd));
  }
  UniqueFd err_r, err_w, pid_r, pid_w, console_r, console_w, null_fd;
  UniqueFd stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w;
  RETURN_IF_ERROR(MakePipe(err_r, err_w));
  RETURN_IF_ERROR(MakePipe(pid_r, pid_w));
  if (io.terminal) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return ErrnoStatus(errno, "socketpair");
    }
    console_r.Reset(sv[0]);
    console_w.Reset(sv[1]);
    p.console_w = console_w.get();
  } else {
    null_fd.Reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null_fd.valid()) return ErrnoStatus(errno, "open /dev/null");
    if (io.stdin) RETURN_IF_ERROR(MakePipe(stdin_r, stdin_w));
    if (io.stdout) RETURN_IF_ERROR(MakePipe(stdout_r, stdout_w));
    RETURN_IF_ERROR(MakePipe(stderr_r, stderr_w));
    p.stdin_fd = io.stdin ? stdin_r.get() : null_fd.get();
    p.stdout_fd = io.stdout ? stdout_w.get() : null_fd.get();
    p.stderr_fd = stderr_w.get();
  }
  p.err_w = err_w.get();
  p.pid_w = pid_w.get();
  for (int fd : {p.pidfd, p.err_w, p.pid_w, p.console_w, p.stdin_fd, p.stdout_fd, p.stderr_fd}) {
    if (fd >= 0) p.keep_fds.push_back(fd);
  }
  p.keep_fds.insert(p.keep_fds.end(), p.cgroup_fds.begin(), p.cgroup_fds.end());
  std::sort(p.keep_fds.begin(), p.keep_fds.end());
  p.keep_fds.erase(std::unique(p.keep_fds.begin(), p.keep_fds.end()), p.keep_fds.end());

  long helper = CloneHelper();
  if (helper == 0) RunHelper(p);
  if (helper < 0) return ErrnoStatus(errno, StrCat(what, ": fork"));
  // Ours: only the children hold these now.
  err_w.Reset();
  pid_w.Reset();
  console_w.Reset();
  stdin_r.Reset();
  stdout_w.Reset();
  stderr_w.Reset();
  cgroup_fds.clear();
  pidfd.Reset();
  int status = 0;
  while (::waitpid(static_cast<pid_t>(helper), &status, 0) < 0 && errno == EINTR) {
  }
  pid_t pid = 0;
  ssize_t got;
  do {
    got = ::read(pid_r.get(), &pid, sizeof pid);
  } while (got < 0 && errno == EINTR);
  UniqueFd child_pidfd;
  if (got == sizeof pid && pid > 0) {
    // Our unreaped child: the pid cannot have been recycled.
    child_pidfd.Reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  }
  auto kill_child = [&] {
    if (!child_pidfd.valid()) return;
    ::syscall(SYS_pidfd_send_signal, child_pidfd.get(), SIGKILL, nullptr, 0);
    siginfo_t info{};
    ::waitid(static_cast<idtype_t>(3), static_cast<id_t>(child_pidfd.get()), &info, WEXITED);
  };
  // EOF: the process exec'd (or the helper died before cloning it).
  ChildError error;
  ssize_t n = 0;
  pollfd pfd{err_r.get(), POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&pfd, 1, 60000);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) {
    kill_child();
    return DeadlineExceededError(StrCat(what, ": the process did not start within 60 s"));
  }
  do {
    n = ::read(err_r.get(), &error, sizeof error);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof error) {
    kill_child();
    if (error.stage == kStageExecNotFound) {
      return UnknownError(
          StrCat(what, ": exec: \"", p.strings[0], "\": executable file not found in $PATH"));
    }
    if (error.stage == kStageSetns && (error.err == ESRCH || error.err == EINVAL)) {
      return FailedPreconditionError(StrCat(what, ": its init is gone"));
    }
    return UnknownError(StrCat(what, ": ", StageName(error.stage), ": ", std::strerror(error.err)));
  }
  if (!child_pidfd.valid()) {
    return InternalError(StrCat(what, ": the exec helper exited with status ", status));
  }
  UniqueFd terminal;
  if (io.terminal) {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    // Sent before the execve that ended the wait above: queued already.
    if (::recvmsg(console_r.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) == 1) {
      for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
          terminal.Reset(fd);
        }
      }
    }
    if (!terminal.valid()) {
      kill_child();
      return InternalError(StrCat(what, ": the process sent no terminal"));
    }
  }
  return std::make_unique<ExecProcess>(
      StrCat("exec ", pid, " in container ", target.id), std::move(child_pidfd), pid, io,
      std::move(stdin_w), std::move(stdout_r), std::move(stderr_r), std::move(terminal));
}

}  // namespace berth::oci
