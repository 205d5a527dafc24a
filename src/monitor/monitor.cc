#include "monitor/monitor.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string_view>

#include "monitor/cri_log.h"
#include "monitor/frame.h"
#include "monitor/oom.h"
#include "monitor/unix_path.h"

#ifndef BERTH_MONITOR_VERSION
#define BERTH_MONITOR_VERSION "unknown"
#endif

namespace berth::monitor {
namespace {

// One read from a container stream becomes at most one frame to clients.
constexpr size_t kReadChunk = kMaxFramePayload;
// An attach client that falls this far behind is disconnected: the container
// and the log must never wait for a slow reader.
constexpr size_t kMaxClientQueue = 4u << 20;
// Client stdin is no longer read while this much waits for the container.
constexpr size_t kMaxStdinQueue = 1u << 20;
constexpr size_t kMaxClients = 128;
// After the container exited, output is drained until every stream reached
// EOF or nothing arrived for this long (a process outside the container's pid
// namespace may keep a pipe open forever).
constexpr int kDrainIdleMs = 500;

// Minimal owned fd (common/fs.h's UniqueFd would pull in berth_common, which
// links fmt and OpenSSL).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.Release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Bounds of the executable's code, from the default linker script.
extern "C" char __executable_start[];  // NOLINT(bugprone-reserved-identifier)
extern "C" char etext[];

// A static glibc binary touches nearly every page of its code while starting
// (IFUNC resolvers sit beside each variant of each string function), and the
// kernel maps file pages in 64 KiB windows, so ~600 KiB of code would stay in
// the resident set of every monitor for no use. Unmapping the code once the
// container is created leaves only what the event loop faults back in. The
// pages stay in the page cache, shared by all monitors; nothing writable is
// touched (text is never written), so the effect is purely on residency.
void DropStartupCodePages() {
  long page = sysconf(_SC_PAGESIZE);
  auto begin = reinterpret_cast<uintptr_t>(__executable_start) & ~static_cast<uintptr_t>(page - 1);
  auto end = reinterpret_cast<uintptr_t>(etext) & ~static_cast<uintptr_t>(page - 1);
  // NOLINTNEXTLINE(performance-no-int-to-ptr): page-aligning an address is the point
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::string NowRfc3339() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return FormatRfc3339Nano(ts);
}

int64_t MonotonicMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// strerror() would pull glibc's message catalogs (gettext, locales) into the
// static binary; the untranslated description is all we need.
std::string ErrnoName(int err) {
  const char* d = strerrordesc_np(err);
  return d != nullptr ? std::string(d) : "errno " + std::to_string(err);
}

// Diagnostics of the monitor itself go to fd 2 (--monitor-log or /dev/null).
void Diag(const std::string& msg) {
  std::string line = NowRfc3339() + " berth-monitor[" + std::to_string(getpid()) + "]: " + msg;
  line.push_back('\n');
  WriteAll(2, line.data(), line.size());
}

std::string ErrnoText(std::string_view what, std::string_view object, int err) {
  std::string s(what);
  s.push_back(' ');
  s.append(object);
  s.append(": ");
  s.append(ErrnoName(err));
  return s;
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Temp file beside `path`, fsync, rename, fsync of the directory: readers see
// the whole file or none, even across a crash.
bool WriteFileAtomic(const std::string& path, const std::string& data, std::string* err) {
  std::string tmp = path + ".tmp";
  Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    *err = ErrnoText("create", tmp, errno);
    return false;
  }
  if (!WriteAll(fd.get(), data.data(), data.size()) || fsync(fd.get()) != 0) {
    *err = ErrnoText("write", tmp, errno);
    unlink(tmp.c_str());
    return false;
  }
  fd.Reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    *err = ErrnoText("rename to", path, errno);
    unlink(tmp.c_str());
    return false;
  }
  Fd dir(open(Dirname(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) fsync(dir.get());
  return true;
}

bool ReadSmallFile(const std::string& path, std::string* out) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (1u << 20)) return true;
  }
}

bool ParseLong(std::string_view s, long min, long max, long* out) {
  if (s.empty() || s.size() > 19) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

// Where the container's memory cgroup counts OOM kills (oom.h).
OomCounterLocation OomCounterOf(pid_t pid) {
  std::string text;
  if (!ReadSmallFile("/proc/" + std::to_string(pid) + "/cgroup", &text)) return {};
  return LocateOomCounter(text, "/sys/fs/cgroup",
                          access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0);
}

// The cgroup directories of `pid` in every hierarchy, from /proc/<pid>/cgroup
// ("id:controllers:path"): a v1 hierarchy is mounted at
// /sys/fs/cgroup/<controllers> (or <name> for "name=<name>"), the v2 one at
// /sys/fs/cgroup/unified on hybrid hosts, else /sys/fs/cgroup. Only
// directories that exist are returned, never a hierarchy's root.
std::vector<std::string> CgroupDirsOf(pid_t pid) {
  std::string text;
  std::vector<std::string> out;
  if (!ReadSmallFile("/proc/" + std::to_string(pid) + "/cgroup", &text)) return out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    start = nl + 1;
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (path.empty() || path == "/" || path.find("..") != std::string::npos) continue;
    std::string mount;
    if (controllers.empty()) {
      mount = access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0
                  ? "/sys/fs/cgroup/unified"
                  : "/sys/fs/cgroup";
    } else if (controllers.rfind("name=", 0) == 0) {
      mount = "/sys/fs/cgroup/" + controllers.substr(5);
    } else {
      mount = "/sys/fs/cgroup/" + controllers;
    }
    std::string dir = mount + path;
    if (access(dir.c_str(), F_OK) == 0) out.push_back(dir);
  }
  return out;
}

long ReadOomKills(const std::string& file) {
  std::string text;
  if (file.empty() || !ReadSmallFile(file, &text)) return -1;
  return ParseOomKillCount(text);
}

std::string OneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

struct Stream {
  Fd fd;
  FrameType frame;
  uint8_t flag;  // AttachFlags bit of clients that want this stream
  CriLogSplitter splitter;
  bool eof = false;
};

struct Client {
  Fd fd;
  bool attached = false;
  // Sending failed (the client closed): nothing more is sent, but frames it
  // sent before closing (stdin) are still read until EOF.
  bool output_closed = false;
  uint8_t flags = 0;
  bool stdin_ended = false;
  bool dead = false;
  std::deque<std::string> queue;
  size_t queued = 0;
};

class Monitor {
 public:
  explicit Monitor(const MonitorConfig& cfg) : cfg_(cfg) {}
  int Run();

 private:
  bool Prepare(std::string* err);
  bool CreateContainer(std::string* err);
  bool ReceiveConsole(std::string* err);
  void SyncWrite(const std::string& line);
  void Loop();
  void Finish();
  bool DeleteRuntimeState();
  void CleanupFailed();

  bool ReopenLog(std::string* err);
  void WriteLog(const std::string& records);
  void ReadStream(Stream& s);
  void OnOutput(Stream& s, std::string_view data);
  void HandleSignals();
  void Reap();
  void WatchOom();
  // Reads the OOM kill counter and reports a rise in the OOM file;
  // `notified`: after a notification (drains it).
  void CheckOom(bool notified);

  void QueueStdin(std::string_view data);
  void FlushStdin();
  void EndSessionStdin(Client& c);

  void AcceptClients();
  void ReadClient(Client& c);
  void HandleFrame(Client& c, FrameType type, std::string_view payload);
  void Send(Client& c, FrameType type, std::string_view payload);
  void FlushClient(Client& c);
  void DropClient(Client& c);

  const MonitorConfig& cfg_;
  Fd sync_;
  Fd signal_fd_;
  Fd log_fd_;
  Fd listen_fd_;
  bool attach_socket_bound_ = false;
  Fd console_listen_;
  bool console_socket_bound_ = false;
  std::string console_path_;
  Fd pty_master_;  // terminal mode: read output from it, resize through it
  Fd stdin_fd_;    // write end of the container's stdin (pipe, or a dup of the pty master)
  std::string stdin_buf_;
  size_t stdin_off_ = 0;
  bool stdin_close_pending_ = false;
  std::vector<Stream> streams_;
  std::vector<Client> clients_;
  std::string log_buf_;
  std::vector<char> rbuf_;

  pid_t container_pid_ = -1;
  OomCounterLocation oom_;
  // The container's cgroup directories, read at create: checked after the
  // runtime's delete at the exit (--delete-on-exit).
  std::vector<std::string> cgroup_dirs_;
  long oom_kills_at_start_ = -1;
  long oom_kills_reported_ = 0;    // in the OOM file, since create
  Fd oom_notify_;                  // v1 eventfd or v2 inotify fd; invalid: none
  int64_t oom_recheck_at_ms_ = 0;  // monotonic; 0: no recheck pending
  int64_t oom_recheck_step_ms_ = 0;
  bool exited_ = false;
  int wait_status_ = 0;
  struct timespec exit_time_ {};
  int64_t last_activity_ms_ = 0;
  bool log_error_reported_ = false;
};

void Monitor::SyncWrite(const std::string& line) {
  if (sync_.valid() && !WriteAll(sync_.get(), line.data(), line.size())) {
    Diag(ErrnoText("write to sync fd", std::to_string(sync_.get()), errno));
  }
}

bool Monitor::Prepare(std::string* err) {
  // The spawner's stdio must not be held (it may be a pipe someone waits on).
  Fd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) {
    *err = ErrnoText("open", "/dev/null", errno);
    return false;
  }
  dup2(devnull.get(), 0);
  dup2(devnull.get(), 1);
  if (!cfg_.monitor_log.empty()) {
    Fd mlog(open(cfg_.monitor_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!mlog.valid()) {
      *err = ErrnoText("open monitor log", cfg_.monitor_log, errno);
      return false;
    }
    dup2(mlog.get(), 2);
  } else {
    dup2(devnull.get(), 2);
  }
  if (chdir("/") != 0) {
    *err = ErrnoText("chdir", "/", errno);
    return false;
  }
  umask(022);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    *err = ErrnoText("prctl(PR_SET_CHILD_SUBREAPER)", "for container " + cfg_.id, errno);
    return false;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal_fd_.Reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_.valid()) {
    *err = ErrnoText("signalfd", "for container " + cfg_.id, errno);
    return false;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);

  if (!cfg_.monitor_pid_file.empty() &&
      !WriteFileAtomic(cfg_.monitor_pid_file, std::to_string(getpid()) + "\n", err)) {
    return false;
  }
  if (!ReopenLog(err)) return false;

  listen_fd_.Reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) {
    *err = ErrnoText("socket for", cfg_.attach_socket, errno);
    return false;
  }
  unlink(cfg_.attach_socket.c_str());
  mode_t old = umask(077);
  int rc = UnixSocketBindOrConnect(listen_fd_.get(), cfg_.attach_socket, /*do_bind=*/true);
  int bind_errno = errno;
  umask(old);
  if (rc != 0) {
    *err = ErrnoText("bind attach socket", cfg_.attach_socket, bind_errno);
    return false;
  }
  attach_socket_bound_ = true;
  if (listen(listen_fd_.get(), 16) != 0) {
    *err = ErrnoText("listen on attach socket", cfg_.attach_socket, errno);
    return false;
  }
  rbuf_.resize(1 + kMaxFramePayload + 1);
  return true;
}

bool Monitor::ReopenLog(std::string* err) {
  Fd fd(open(cfg_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd.valid()) {
    *err = ErrnoText("open log file", cfg_.log_path, errno);
    return false;
  }
  log_fd_ = std::move(fd);
  log_error_reported_ = false;
  return true;
}

void Monitor::WriteLog(const std::string& records) {
  if (records.empty() || !log_fd_.valid()) return;
  if (!WriteAll(log_fd_.get(), records.data(), records.size()) && !log_error_reported_) {
    // Reported once per log file: a full disk would otherwise flood the diagnostics.
    Diag(ErrnoText("write log file", cfg_.log_path, errno) +
         " (output is dropped until a write succeeds)");
    log_error_reported_ = true;
  }
}

bool Monitor::CreateContainer(std::string* err) {
  unlink(cfg_.pid_file.c_str());
  int p_out[2] = {-1, -1}, p_err[2] = {-1, -1}, p_in[2] = {-1, -1};
  if (pipe2(p_err, O_CLOEXEC) != 0) {
    *err = ErrnoText("pipe for container", cfg_.id, errno);
    return false;
  }
  Fd err_r(p_err[0]), err_w(p_err[1]);
  Fd out_r, out_w, in_r, in_w;
  Fd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  Fd console_dir;
  std::string console_arg;
  if (cfg_.terminal) {
    // runc sends the pty master over this socket (SCM_RIGHTS).
    console_path_ = cfg_.bundle + "/" + kConsoleSocketName;
    console_listen_.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    unlink(console_path_.c_str());
    mode_t old = umask(077);
    int rc = console_listen_.valid()
                 ? UnixSocketBindOrConnect(console_listen_.get(), console_path_, true)
                 : -1;
    int bind_errno = errno;
    umask(old);
    if (rc != 0 || listen(console_listen_.get(), 1) != 0) {
      *err = ErrnoText("bind console socket", console_path_, rc != 0 ? bind_errno : errno);
      return false;
    }
    console_socket_bound_ = true;
    console_arg = console_path_;
    if (console_arg.size() >= sizeof(sockaddr_un::sun_path)) {
      // The runtime connects by path too; hand it a short one through our fd table.
      console_dir.Reset(open(cfg_.bundle.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      console_arg = "/proc/" + std::to_string(getpid()) + "/fd/" +
                    std::to_string(console_dir.get()) + "/" + kConsoleSocketName;
    }
  } else {
    if (pipe2(p_out, O_CLOEXEC) != 0) {
      *err = ErrnoText("pipe for container", cfg_.id, errno);
      return false;
    }
    out_r.Reset(p_out[0]);
    out_w.Reset(p_out[1]);
  }
  if (cfg_.stdin_open && !cfg_.terminal) {
    if (pipe2(p_in, O_CLOEXEC) != 0) {
      *err = ErrnoText("pipe for container", cfg_.id, errno);
      return false;
    }
    in_r.Reset(p_in[0]);
    in_w.Reset(p_in[1]);
  }

  std::vector<std::string> args = {cfg_.runtime, "--root", cfg_.runtime_root};
  args.insert(args.end(), cfg_.runtime_args.begin(), cfg_.runtime_args.end());
  args.insert(args.end(), {"create", "--bundle", cfg_.bundle, "--pid-file", cfg_.pid_file});
  if (cfg_.terminal) args.insert(args.end(), {"--console-socket", console_arg});
  args.push_back(cfg_.id);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Without a terminal the runtime passes its stdio to the container, so the
  // runtime's own errors arrive on the container's stderr pipe; with one, they
  // go to a pipe of their own.
  int child_in = in_r.valid() ? in_r.get() : devnull.get();
  int child_out = cfg_.terminal ? err_w.get() : out_w.get();
  int child_err = err_w.get();

  pid_t pid = fork();
  if (pid < 0) {
    *err = ErrnoText("fork runtime for container", cfg_.id, errno);
    return false;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    // Sources are >= 3 (0-2 are /dev/null already), so dup2 never aliases.
    dup2(child_in, 0);
    dup2(child_out, 1);
    dup2(child_err, 2);
    execvp(argv[0], argv.data());
    std::string msg = ErrnoText("exec", argv[0], errno) + "\n";
    WriteAll(2, msg.data(), msg.size());
    _exit(127);
  }
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      *err = ErrnoText("wait for runtime create of", cfg_.id, errno);
      return false;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string text;
    fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
    char buf[4096];
    ssize_t n;
    while (text.size() < 16384 && (n = read(err_r.get(), buf, sizeof(buf))) > 0) {
      text.append(buf, static_cast<size_t>(n));
    }
    std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                        : "signal " + std::to_string(WTERMSIG(status));
    *err = "runtime " + cfg_.runtime + " create " + cfg_.id + " (bundle " + cfg_.bundle +
           ") failed with " + how + (text.empty() ? "" : ": " + OneLine(text));
    return false;
  }

  std::string pid_text;
  long cpid = 0;
  if (!ReadSmallFile(cfg_.pid_file, &pid_text)) {
    *err = ErrnoText("read container pid file", cfg_.pid_file, errno);
    return false;
  }
  while (!pid_text.empty() && (pid_text.back() == '\n' || pid_text.back() == ' ')) {
    pid_text.pop_back();
  }
  if (!ParseLong(pid_text, 1, 1L << 30, &cpid)) {
    *err = "container pid file " + cfg_.pid_file + " holds no pid: \"" + OneLine(pid_text) + "\"";
    return false;
  }
  container_pid_ = static_cast<pid_t>(cpid);

  if (cfg_.terminal) {
    if (!ReceiveConsole(err)) return false;
    streams_.push_back(Stream{Fd(dup(pty_master_.get())), FrameType::kStdout, kAttachStdout,
                              CriLogSplitter("stdout", cfg_.log_line_max)});
    if (cfg_.stdin_open) stdin_fd_.Reset(fcntl(pty_master_.get(), F_DUPFD_CLOEXEC, 3));
  } else {
    streams_.push_back(Stream{std::move(out_r), FrameType::kStdout, kAttachStdout,
                              CriLogSplitter("stdout", cfg_.log_line_max)});
    streams_.push_back(Stream{std::move(err_r), FrameType::kStderr, kAttachStderr,
                              CriLogSplitter("stderr", cfg_.log_line_max)});
    stdin_fd_ = std::move(in_w);
  }
  for (auto& s : streams_) {
    fcntl(s.fd.get(), F_SETFD, FD_CLOEXEC);
    fcntl(s.fd.get(), F_SETFL, O_NONBLOCK);
  }
  if (stdin_fd_.valid()) fcntl(stdin_fd_.get(), F_SETFL, O_NONBLOCK);

  oom_ = OomCounterOf(container_pid_);
  if (cfg_.delete_on_exit) cgroup_dirs_ = CgroupDirsOf(container_pid_);
  oom_kills_at_start_ = ReadOomKills(oom_.counter_file);
  WatchOom();
  return true;
}

bool Monitor::ReceiveConsole(std::string* err) {
  // The runtime has exited successfully, so its connection is already queued.
  struct pollfd pfd = {console_listen_.get(), POLLIN, 0};
  if (poll(&pfd, 1, 5000) <= 0) {
    *err = "runtime " + cfg_.runtime + " did not send the terminal of container " + cfg_.id +
           " to " + console_path_;
    return false;
  }
  Fd conn(accept4(console_listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) {
    *err = ErrnoText("accept on console socket", console_path_, errno);
    return false;
  }
  char name[256];
  struct iovec iov = {name, sizeof(name)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  struct cmsghdr* cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (cm == nullptr || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
    *err =
        "no terminal fd received on console socket " + console_path_ + " for container " + cfg_.id;
    return false;
  }
  int master;
  std::memcpy(&master, CMSG_DATA(cm), sizeof(int));
  pty_master_.Reset(master);
  console_listen_.Reset();
  unlink(console_path_.c_str());
  console_socket_bound_ = false;
  return true;
}

// `<runtime> delete --force <id>` once the init is reaped, so that berthd's
// RemoveContainer has no runtime to run (docs/monitor.md). Bounded: a runtime
// that hangs is killed after 10 s and the exit file says the state is left.
bool Monitor::DeleteRuntimeState() {
  // Waits for a `<runtime> start` berthd may still be running (protocol.h).
  const std::string lock_path = cfg_.bundle + "/" + kRuntimeLockFile;
  Fd lock(open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) {
    Diag(ErrnoText("open", lock_path, errno));
  } else {
    while (flock(lock.get(), LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  std::vector<std::string> args = {cfg_.runtime, "--root", cfg_.runtime_root};
  args.insert(args.end(), cfg_.runtime_args.begin(), cfg_.runtime_args.end());
  args.insert(args.end(), {"delete", "--force", cfg_.id});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    Diag(ErrnoText("pipe for runtime delete of", cfg_.id, errno));
    return false;
  }
  Fd out_r(p[0]), out_w(p[1]);
  pid_t pid = fork();
  if (pid < 0) {
    Diag(ErrnoText("fork runtime delete of", cfg_.id, errno));
    return false;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    dup2(out_w.get(), 1);
    dup2(out_w.get(), 2);
    execvp(argv[0], argv.data());
    std::string msg = ErrnoText("exec", argv[0], errno) + "\n";
    WriteAll(2, msg.data(), msg.size());
    _exit(127);
  }
  out_w.Reset();
  std::string text;
  const int64_t deadline = MonotonicMs() + 10000;
  for (;;) {
    const int64_t left = deadline - MonotonicMs();
    if (left <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    struct pollfd pfd = {out_r.get(), POLLIN, 0};
    int n = poll(&pfd, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[4096];
    ssize_t got = read(out_r.get(), buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (text.size() < 16384) text.append(buf, static_cast<size_t>(got));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    // runc's delete logs, and still exits 0, when a cgroup cannot be removed
    // because processes of the container are still dying (a loaded host):
    // remove what is left once they are gone, so nothing leaks.
    int delay_ms = 5;
    for (int waited = 0;; waited += delay_ms, delay_ms = std::min(delay_ms * 2, 200)) {
      bool left = false;
      for (const std::string& dir : cgroup_dirs_) {
        if (rmdir(dir.c_str()) != 0 && errno != ENOENT) left = true;
      }
      if (!left) return true;
      if (waited >= 10000) break;
      usleep(static_cast<useconds_t>(delay_ms) * 1000);
    }
    Diag("runtime " + cfg_.runtime + " delete " + cfg_.id + " left cgroups of the container");
    return false;
  }
  std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status));
  Diag("runtime " + cfg_.runtime + " delete " + cfg_.id + " failed with " + how +
       (text.empty() ? "" : ": " + OneLine(text)));
  return false;
}

void Monitor::CleanupFailed() {
  if (attach_socket_bound_) unlink(cfg_.attach_socket.c_str());
  if (console_socket_bound_) unlink(console_path_.c_str());
}

int Monitor::Run() {
  if (cfg_.sync_fd >= 0) {
    sync_.Reset(cfg_.sync_fd);
    // Neither the runtime nor the container may hold it: berthd waits for EOF.
    fcntl(sync_.get(), F_SETFD, FD_CLOEXEC);
  }
  SyncWrite(std::string(kSyncMonitor) + " " + std::to_string(getpid()) + "\n");
  std::string err;
  if (!Prepare(&err) || !CreateContainer(&err)) {
    Diag(err);
    // Clean up before reporting: once berthd reads the error, nothing of
    // this monitor may be left in the bundle.
    CleanupFailed();
    SyncWrite(std::string(kSyncError) + " " + err + "\n");
    sync_.Reset();
    return 1;
  }
  Diag("container " + cfg_.id + " created, pid " + std::to_string(container_pid_));
  SyncWrite(std::string(kSyncCreated) + " " + std::to_string(container_pid_) + "\n");
  sync_.Reset();
  DropStartupCodePages();
  Loop();
  Finish();
  return 0;
}

void Monitor::Loop() {
  enum Kind { kSignal, kOom, kListen, kStream, kStdinOut, kClient };
  std::vector<struct pollfd> pfds;
  std::vector<std::pair<Kind, size_t>> what;
  for (;;) {
    bool open_streams = false;
    for (auto& s : streams_) open_streams |= !s.eof;
    if (exited_ && !open_streams) return;

    pfds.clear();
    what.clear();
    auto add = [&](int fd, short events, Kind k, size_t i) {
      pfds.push_back({fd, events, 0});
      what.emplace_back(k, i);
    };
    add(signal_fd_.get(), POLLIN, kSignal, 0);
    if (oom_notify_.valid()) add(oom_notify_.get(), POLLIN, kOom, 0);
    if (listen_fd_.valid() && clients_.size() < kMaxClients) {
      add(listen_fd_.get(), POLLIN, kListen, 0);
    }
    for (size_t i = 0; i < streams_.size(); ++i) {
      if (!streams_[i].eof) add(streams_[i].fd.get(), POLLIN, kStream, i);
    }
    if (stdin_fd_.valid() && stdin_off_ < stdin_buf_.size()) {
      add(stdin_fd_.get(), POLLOUT, kStdinOut, 0);
    }
    bool stdin_room = stdin_buf_.size() - stdin_off_ < kMaxStdinQueue;
    for (size_t i = 0; i < clients_.size(); ++i) {
      short ev = stdin_room ? POLLIN : 0;
      if (!clients_[i].queue.empty()) ev |= POLLOUT;
      // Left out entirely, not polled with no events: POLLHUP would spin.
      if (ev != 0) add(clients_[i].fd.get(), ev, kClient, i);
    }

    int timeout = -1;
    if (exited_) {
      timeout = static_cast<int>(last_activity_ms_ + kDrainIdleMs - MonotonicMs());
      if (timeout <= 0) return;
    }
    if (oom_recheck_at_ms_ > 0) {
      int until = static_cast<int>(std::max<int64_t>(0, oom_recheck_at_ms_ - MonotonicMs()));
      timeout = timeout < 0 ? until : std::min(timeout, until);
    }
    int n = poll(pfds.data(), pfds.size(), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      Diag(ErrnoText("poll", "in monitor of " + cfg_.id, errno));
      return;
    }
    if (oom_recheck_at_ms_ > 0 && MonotonicMs() >= oom_recheck_at_ms_) CheckOom(false);
    if (n == 0) continue;  // drain deadline: re-evaluated at the top

    for (size_t i = 0; i < pfds.size(); ++i) {
      short re = pfds[i].revents;
      if (re == 0) continue;
      auto [kind, idx] = what[i];
      switch (kind) {
        case kSignal:
          HandleSignals();
          break;
        case kOom:
          CheckOom(/*notified=*/true);
          break;
        case kListen:
          AcceptClients();
          break;
        case kStream:
          ReadStream(streams_[idx]);
          break;
        case kStdinOut:
          FlushStdin();
          break;
        case kClient: {
          Client& c = clients_[idx];
          if (!c.dead && (re & POLLOUT)) FlushClient(c);
          if (!c.dead && (re & (POLLIN | POLLHUP | POLLERR))) ReadClient(c);
          break;
        }
      }
    }
    for (auto& c : clients_) {
      if (c.dead) EndSessionStdin(c);
    }
    std::erase_if(clients_, [](const Client& c) { return c.dead; });
  }
}

void Monitor::HandleSignals() {
  struct signalfd_siginfo si;
  bool reap = false;
  while (read(signal_fd_.get(), &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
    if (si.ssi_signo == SIGCHLD) reap = true;
    if (si.ssi_signo == SIGUSR1) {
      std::string err;
      if (ReopenLog(&err)) {
        Diag("log file " + cfg_.log_path + " reopened on SIGUSR1");
      } else {
        Diag(err);
      }
    }
  }
  if (reap) Reap();
}

void Monitor::Reap() {
  // As subreaper we also inherit orphans of the container (without a pid
  // namespace); they are reaped and otherwise ignored.
  for (;;) {
    int status = 0;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p <= 0) return;
    if (p == container_pid_ && !exited_) {
      exited_ = true;
      wait_status_ = status;
      clock_gettime(CLOCK_REALTIME, &exit_time_);
      last_activity_ms_ = MonotonicMs();
    }
  }
}

void Monitor::ReadStream(Stream& s) {
  // A few reads per wakeup keep a chatty container from starving the others.
  for (int i = 0; i < 4; ++i) {
    ssize_t n = read(s.fd.get(), rbuf_.data(), kReadChunk);
    if (n > 0) {
      OnOutput(s, std::string_view(rbuf_.data(), static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    // EOF, or EIO from a pty master once the last slave fd closed.
    s.eof = true;
    s.fd.Reset();
    return;
  }
}

void Monitor::OnOutput(Stream& s, std::string_view data) {
  last_activity_ms_ = MonotonicMs();
  log_buf_.clear();
  s.splitter.Feed(data, NowRfc3339(), &log_buf_);
  WriteLog(log_buf_);
  for (auto& c : clients_) {
    if (!c.dead && c.attached && (c.flags & s.flag)) Send(c, s.frame, data);
  }
}

void Monitor::QueueStdin(std::string_view data) {
  if (!stdin_fd_.valid() || stdin_close_pending_) return;
  stdin_buf_.append(data);
  FlushStdin();
}

void Monitor::FlushStdin() {
  while (stdin_fd_.valid() && stdin_off_ < stdin_buf_.size()) {
    ssize_t n =
        write(stdin_fd_.get(), stdin_buf_.data() + stdin_off_, stdin_buf_.size() - stdin_off_);
    if (n > 0) {
      stdin_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    // EPIPE: the container closed its stdin or exited; nobody will read more.
    Diag(ErrnoText("write stdin of container", cfg_.id, errno));
    stdin_fd_.Reset();
  }
  stdin_buf_.clear();
  stdin_off_ = 0;
  if (stdin_close_pending_ && stdin_fd_.valid()) {
    Diag("closing stdin of container " + cfg_.id);
    stdin_fd_.Reset();
  }
}

void Monitor::EndSessionStdin(Client& c) {
  if (!c.attached || !(c.flags & kAttachStdin) || c.stdin_ended) return;
  c.stdin_ended = true;
  if (cfg_.stdin_once) {
    stdin_close_pending_ = true;
    FlushStdin();
  }
}

void Monitor::AcceptClients() {
  while (clients_.size() < kMaxClients) {
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) Diag(ErrnoText("accept on", cfg_.attach_socket, errno));
      return;
    }
    Client c;
    c.fd.Reset(fd);
    clients_.push_back(std::move(c));
  }
}

void Monitor::ReadClient(Client& c) {
  for (int i = 0; i < 16 && !c.dead; ++i) {
    if (stdin_buf_.size() - stdin_off_ >= kMaxStdinQueue) return;
    ssize_t n = recv(c.fd.get(), rbuf_.data(), rbuf_.size(), MSG_DONTWAIT | MSG_TRUNC);
    // ECONNRESET means the client closed with our frames unread; it is
    // reported (once) before the frames the client sent, which still count.
    if (n < 0 && (errno == EINTR || errno == ECONNRESET)) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      DropClient(c);
      return;
    }
    DecodedFrame f = DecodeFrame(rbuf_.data(), rbuf_.size(), static_cast<size_t>(n));
    if (!f.ok) {
      Send(c, FrameType::kError, f.error);
      DropClient(c);
      return;
    }
    HandleFrame(c, f.type, f.payload);
  }
}

void Monitor::HandleFrame(Client& c, FrameType type, std::string_view payload) {
  switch (type) {
    case FrameType::kAttach: {
      uint8_t flags = 0;
      if (!DecodeAttachPayload(payload, &flags)) {
        Send(c, FrameType::kError, "attach frame needs exactly one flags byte");
        return;
      }
      if ((flags & kAttachStdin) && !cfg_.stdin_open) {
        Send(c, FrameType::kError, "container " + cfg_.id + " was not created with stdin open");
        return;
      }
      if ((flags & kAttachStdin) && !stdin_fd_.valid()) {
        Send(c, FrameType::kError, "stdin of container " + cfg_.id + " is already closed");
        return;
      }
      // One writer at a time: input interleaved from two sessions would be
      // garbage to the container.
      if (flags & kAttachStdin) {
        for (const Client& other : clients_) {
          if (&other != &c && other.attached && (other.flags & kAttachStdin) &&
              !other.stdin_ended && !other.dead) {
            Send(c, FrameType::kError,
                 "stdin of container " + cfg_.id +
                     " is in use by another attach session; attach without stdin, or when it "
                     "ends");
            return;
          }
        }
      }
      c.attached = true;
      c.flags = flags;
      Send(c, FrameType::kOk, "");
      return;
    }
    case FrameType::kStdin:
      if (c.attached && (c.flags & kAttachStdin) && !c.stdin_ended) QueueStdin(payload);
      return;
    case FrameType::kCloseStdin:
      EndSessionStdin(c);
      return;
    case FrameType::kResize: {
      struct winsize ws {};
      if (!DecodeResizePayload(payload, &ws.ws_row, &ws.ws_col) || !pty_master_.valid()) return;
      if (ioctl(pty_master_.get(), TIOCSWINSZ, &ws) != 0) {
        Diag(ErrnoText("resize terminal of container", cfg_.id, errno));
      }
      return;
    }
    case FrameType::kReopenLog: {
      std::string err;
      if (ReopenLog(&err)) {
        Send(c, FrameType::kOk, "");
      } else {
        Diag(err);
        Send(c, FrameType::kError, err);
      }
      return;
    }
    default:
      Send(c, FrameType::kError,
           "unknown frame type " + std::to_string(static_cast<unsigned>(type)));
      return;
  }
}

void Monitor::Send(Client& c, FrameType type, std::string_view payload) {
  if (c.dead || c.output_closed) return;
  std::string frame;
  frame.reserve(1 + payload.size());
  frame.push_back(static_cast<char>(type));
  frame.append(payload);
  c.queued += frame.size();
  c.queue.push_back(std::move(frame));
  if (c.queued > kMaxClientQueue) {
    Diag("attach client of container " + cfg_.id + " is " + std::to_string(c.queued) +
         " bytes behind; disconnecting it");
    DropClient(c);
    return;
  }
  FlushClient(c);
}

void Monitor::FlushClient(Client& c) {
  while (!c.dead && !c.queue.empty()) {
    const std::string& f = c.queue.front();
    ssize_t n = send(c.fd.get(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) {
      c.output_closed = true;
      c.queue.clear();
      c.queued = 0;
      return;
    }
    c.queued -= f.size();
    c.queue.pop_front();
  }
}

void Monitor::DropClient(Client& c) {
  c.dead = true;
  c.queue.clear();
  c.queued = 0;
}

// Live OOM notifications, so that an OOM kill of any process of the
// container (not only of its init) is reported while it runs, through the OOM
// file berthd watches. Best effort: without them the count is still compared
// at exit.
void Monitor::WatchOom() {
  if (oom_.counter_file.empty() || oom_kills_at_start_ < 0) return;
  if (oom_.v1) {
    // cgroup v1: "<eventfd> <fd of memory.oom_control>" written to
    // cgroup.event_control arms the eventfd; the kernel keeps what it needs,
    // so only the eventfd stays open.
    Fd efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    Fd control(open(oom_.counter_file.c_str(), O_RDONLY | O_CLOEXEC));
    const std::string event_control = oom_.cgroup_dir + "/cgroup.event_control";
    Fd reg(open(event_control.c_str(), O_WRONLY | O_CLOEXEC));
    if (!efd.valid() || !control.valid() || !reg.valid()) {
      Diag(ErrnoText("set up OOM notification on", event_control, errno));
      return;
    }
    std::string line = std::to_string(efd.get()) + " " + std::to_string(control.get());
    if (write(reg.get(), line.data(), line.size()) < 0) {
      Diag(ErrnoText("register OOM eventfd in", event_control, errno));
      return;
    }
    oom_notify_ = std::move(efd);
  } else {
    // cgroup v2: memory.events signals every change of its counters to inotify.
    Fd in(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!in.valid() || inotify_add_watch(in.get(), oom_.counter_file.c_str(), IN_MODIFY) < 0) {
      Diag(ErrnoText("watch", oom_.counter_file, errno));
      return;
    }
    oom_notify_ = std::move(in);
  }
}

void Monitor::CheckOom(bool notified) {
  if (notified && oom_notify_.valid()) {
    char buf[4096];
    while (read(oom_notify_.get(), buf, sizeof(buf)) > 0) {
    }
  }
  long now = ReadOomKills(oom_.counter_file);
  if (now < 0 || oom_kills_at_start_ < 0) return;
  long kills = now - oom_kills_at_start_;
  if (kills <= oom_kills_reported_) {
    // The v1 notification comes when the cgroup runs out of memory, before
    // the OOM killer has chosen (and counted) a victim: look again shortly,
    // backing off, for up to ~2.5 s after the last notification.
    const int64_t t = MonotonicMs();
    if (notified) {
      oom_recheck_step_ms_ = 5;
    } else {
      oom_recheck_step_ms_ *= 2;
    }
    oom_recheck_at_ms_ = oom_recheck_step_ms_ > 1280 ? 0 : t + oom_recheck_step_ms_;
    return;
  }
  oom_recheck_at_ms_ = 0;
  oom_kills_reported_ = kills;
  std::string text = std::string(kOomKeyKills) + "=" + std::to_string(kills) + "\n" + kOomKeyTime +
                     "=" + NowRfc3339() + "\n";
  std::string err;
  if (!WriteFileAtomic(cfg_.oom_file, text, &err)) Diag(err);
  Diag("container " + cfg_.id + ": " + std::to_string(kills) + " OOM kill(s) in its memory cgroup");
}

void Monitor::Finish() {
  std::string ts = NowRfc3339();
  log_buf_.clear();
  for (auto& s : streams_) s.splitter.Flush(ts, &log_buf_);
  WriteLog(log_buf_);

  // No new clients once the container is gone.
  listen_fd_.Reset();
  if (attach_socket_bound_) unlink(cfg_.attach_socket.c_str());

  int code = 255;
  int sig = 0;
  if (WIFEXITED(wait_status_)) {
    code = WEXITSTATUS(wait_status_);
  } else if (WIFSIGNALED(wait_status_)) {
    sig = WTERMSIG(wait_status_);
    code = 128 + sig;
  }
  // The kernel counts an OOM kill before it sends SIGKILL, so the count is
  // final once init has been reaped.
  CheckOom(false);
  oom_recheck_at_ms_ = 0;
  oom_notify_.Reset();
  bool oom = oom_kills_reported_ > 0;
  const bool deleted = cfg_.delete_on_exit && DeleteRuntimeState();
  std::string text = std::string(kExitKeyCode) + "=" + std::to_string(code) + "\n" +
                     kExitKeySignal + "=" + std::to_string(sig) + "\n" + kExitKeyTime + "=" +
                     FormatRfc3339Nano(exit_time_) + "\n" + kExitKeyOom + "=" +
                     (oom ? "true" : "false") + "\n" + kExitKeyPid + "=" +
                     std::to_string(container_pid_) + "\n";
  if (cfg_.delete_on_exit) {
    text += std::string(kExitKeyRuntimeDeleted) + "=" + (deleted ? "true" : "false") + "\n";
  }
  std::string err;
  if (!WriteFileAtomic(cfg_.exit_file, text, &err)) Diag(err);
  Diag("container " + cfg_.id + " exited with code " + std::to_string(code));

  // Last words to attach clients: blocking with a short timeout, since
  // nothing else is left to serve.
  std::string code_text = std::to_string(code);
  for (auto& c : clients_) {
    if (c.dead || c.output_closed || !c.attached) continue;
    c.queue.push_back(std::string(1, static_cast<char>(FrameType::kExit)) + code_text);
    fcntl(c.fd.get(), F_SETFL, 0);
    struct timeval tv = {1, 0};
    setsockopt(c.fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    for (const auto& f : c.queue) {
      if (send(c.fd.get(), f.data(), f.size(), MSG_NOSIGNAL) < 0) break;
    }
  }
  clients_.clear();
}

}  // namespace

std::string ParseMonitorArgs(int argc, char** argv, MonitorConfig* cfg, bool* info_only) {
  *info_only = false;
  auto is_abs = [](const std::string& p) { return !p.empty() && p[0] == '/'; };
  enum : int {
    kId = 256,
    kBundle,
    kRuntime,
    kRuntimeRoot,
    kRuntimeArg,
    kLogPath,
    kExitFile,
    kOomFile,
    kAttachSocket,
    kPidFile,
    kMonitorPidFile,
    kMonitorLog,
    kSyncFd,
    kLogLineMax,
    kTerminal,
    kStdin,
    kStdinOnce,
    kDeleteOnExit,
    kVersion,
  };
  static const struct option kOptions[] = {
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, kVersion},
      {"id", required_argument, nullptr, kId},
      {"bundle", required_argument, nullptr, kBundle},
      {"runtime", required_argument, nullptr, kRuntime},
      {"runtime-root", required_argument, nullptr, kRuntimeRoot},
      {"runtime-arg", required_argument, nullptr, kRuntimeArg},
      {"log-path", required_argument, nullptr, kLogPath},
      {"exit-file", required_argument, nullptr, kExitFile},
      {"oom-file", required_argument, nullptr, kOomFile},
      {"attach-socket", required_argument, nullptr, kAttachSocket},
      {"pid-file", required_argument, nullptr, kPidFile},
      {"monitor-pid-file", required_argument, nullptr, kMonitorPidFile},
      {"monitor-log", required_argument, nullptr, kMonitorLog},
      {"sync-fd", required_argument, nullptr, kSyncFd},
      {"log-line-max", required_argument, nullptr, kLogLineMax},
      {"terminal", no_argument, nullptr, kTerminal},
      {"stdin", no_argument, nullptr, kStdin},
      {"stdin-once", no_argument, nullptr, kStdinOnce},
      {"delete-on-exit", no_argument, nullptr, kDeleteOnExit},
      {nullptr, 0, nullptr, 0},
  };
  // getopt keeps its position in globals: start over (the monitor parses
  // once, single-threaded, before anything else runs). "+": stop at the
  // first operand rather than permuting; ":": report a missing value as ':'
  // so that the message below can name the flag. opterr = 0: no messages of
  // getopt's own; ours name the flag the same way for every error.
  optind = 1;
  opterr = 0;
  int opt = 0;
  while ((opt = getopt_long(argc, argv, "+:h", kOptions, nullptr)) != -1) {
    const std::string flag = argv[optind - 1] ? argv[optind - 1] : "";
    const std::string value = optarg ? optarg : "";
    std::string err;
    long number = 0;
    switch (opt) {
      case 'h': {
        static constexpr char kUsage[] =
            "Usage: berth-monitor --id ID --bundle DIR --runtime PATH --runtime-root DIR\n"
            "                     --log-path FILE [options]\n"
            "Parents one OCI container: runs `<runtime> create`, writes its output to a CRI\n"
            "log file, serves attach, records its exit status. Contract: docs/monitor.md.\n"
            "  --runtime-arg ARG      extra global runtime flag (repeatable)\n"
            "  --exit-file FILE       default <bundle>/exit\n"
            "  --oom-file FILE        OOM kill count, rewritten on each one (default "
            "<bundle>/oom)\n"
            "  --attach-socket PATH   default <bundle>/attach\n"
            "  --pid-file FILE        default <bundle>/pid\n"
            "  --monitor-pid-file F   write the monitor's pid here\n"
            "  --monitor-log FILE     diagnostics of the monitor (default: discarded)\n"
            "  --sync-fd N            report 'monitor'/'created'/'error' lines on fd N\n"
            "  --terminal             container gets a pty (--console-socket)\n"
            "  --stdin                keep the container's stdin open for attach\n"
            "  --stdin-once           close stdin when the first attach session ends\n"
            "  --delete-on-exit       run `<runtime> delete --force` after the exit, before\n"
            "                         the exit file is written\n"
            "  --log-line-max BYTES   longest log record content (default 16384)\n";
        WriteAll(1, kUsage, sizeof(kUsage) - 1);
        *info_only = true;
        return "";
      }
      case kVersion: {
        static constexpr char kVersionText[] = "berth-monitor " BERTH_MONITOR_VERSION "\n";
        WriteAll(1, kVersionText, sizeof(kVersionText) - 1);
        *info_only = true;
        return "";
      }
      case kId:
        cfg->id = value;
        break;
      case kBundle:
        cfg->bundle = value;
        break;
      case kRuntime:
        cfg->runtime = value;
        break;
      case kRuntimeRoot:
        cfg->runtime_root = value;
        break;
      case kRuntimeArg:
        cfg->runtime_args.push_back(value);
        break;
      case kLogPath:
        cfg->log_path = value;
        break;
      case kExitFile:
        cfg->exit_file = value;
        break;
      case kOomFile:
        cfg->oom_file = value;
        break;
      case kAttachSocket:
        cfg->attach_socket = value;
        break;
      case kPidFile:
        cfg->pid_file = value;
        break;
      case kMonitorPidFile:
        cfg->monitor_pid_file = value;
        break;
      case kMonitorLog:
        cfg->monitor_log = value;
        break;
      case kSyncFd:
        if (!ParseLong(value, 3, 1 << 20, &number)) {
          err = "--sync-fd needs a file descriptor number >= 3, got \"" + value + "\"";
        }
        cfg->sync_fd = static_cast<int>(number);
        break;
      case kLogLineMax:
        if (!ParseLong(value, 1, 1 << 24, &number)) {
          err = "--log-line-max needs a byte count between 1 and 16777216, got \"" + value + "\"";
        }
        cfg->log_line_max = static_cast<size_t>(number);
        break;
      case kTerminal:
        cfg->terminal = true;
        break;
      case kStdin:
        cfg->stdin_open = true;
        break;
      case kStdinOnce:
        cfg->stdin_once = true;
        break;
      case kDeleteOnExit:
        cfg->delete_on_exit = true;
        break;
      case ':':
        err = "flag " + flag + " needs a value";
        break;
      default:  // '?': an unknown flag, or a value given to a flag that takes none
        if (size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
          err = "flag " + flag.substr(0, eq) + " takes no value (or is unknown; see --help)";
        } else {
          err = "unknown argument \"" + flag + "\" (see --help)";
        }
        break;
    }
    if (!err.empty()) return err;
  }
  if (optind < argc) return std::string("unknown argument \"") + argv[optind] + "\" (see --help)";
  if (cfg->sync_fd >= 0 && fcntl(cfg->sync_fd, F_GETFD) < 0) {
    int fd = cfg->sync_fd;
    cfg->sync_fd = -1;
    return "--sync-fd " + std::to_string(fd) + " is not an open file descriptor";
  }
  if (cfg->id.empty() || cfg->id[0] == '-' || cfg->id.find('/') != std::string::npos) {
    return "--id is required and must not contain '/' or start with '-' (got \"" + cfg->id + "\")";
  }
  if (cfg->runtime.empty()) return "--runtime is required";
  struct {
    const char* flag;
    std::string* value;
    bool required;
  } paths[] = {{"--bundle", &cfg->bundle, true},
               {"--runtime-root", &cfg->runtime_root, true},
               {"--log-path", &cfg->log_path, true},
               {"--exit-file", &cfg->exit_file, false},
               {"--oom-file", &cfg->oom_file, false},
               {"--attach-socket", &cfg->attach_socket, false},
               {"--pid-file", &cfg->pid_file, false},
               {"--monitor-pid-file", &cfg->monitor_pid_file, false},
               {"--monitor-log", &cfg->monitor_log, false}};
  for (auto& p : paths) {
    if (p.value->empty() && !p.required) continue;
    if (!is_abs(*p.value)) {
      return std::string(p.flag) + " needs an absolute path, got \"" + *p.value + "\"";
    }
  }
  while (cfg->bundle.size() > 1 && cfg->bundle.back() == '/') cfg->bundle.pop_back();
  if (cfg->exit_file.empty()) cfg->exit_file = cfg->bundle + "/" + kDefaultExitFile;
  if (cfg->oom_file.empty()) cfg->oom_file = cfg->bundle + "/" + kDefaultOomFile;
  if (cfg->attach_socket.empty()) cfg->attach_socket = cfg->bundle + "/" + kDefaultAttachSocket;
  if (cfg->pid_file.empty()) cfg->pid_file = cfg->bundle + "/" + kDefaultPidFile;
  if (cfg->stdin_once && !cfg->stdin_open) return "--stdin-once needs --stdin";
  return "";
}

int RunMonitor(const MonitorConfig& cfg) {
  Monitor m(cfg);
  return m.Run();
}

}  // namespace berth::monitor
