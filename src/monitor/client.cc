#include "monitor/client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "common/process.h"
#include "monitor/frame.h"
#include "monitor/unix_path.h"

namespace berth::monitor {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// The fd number the monitor sees its sync pipe on.
constexpr int kChildSyncFd = 3;

int RemainingMs(steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

template <typename T>
bool ParseInt(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

}  // namespace

fs::path MonitorSpec::ExitFile() const {
  return exit_file.empty() ? bundle / kDefaultExitFile : exit_file;
}
fs::path MonitorSpec::AttachSocket() const {
  return attach_socket.empty() ? bundle / kDefaultAttachSocket : attach_socket;
}
fs::path MonitorSpec::PidFile() const {
  return pid_file.empty() ? bundle / kDefaultPidFile : pid_file;
}

std::vector<std::string> MonitorArgv(const MonitorSpec& spec, int sync_fd) {
  std::vector<std::string> argv = {
      spec.monitor_binary.string(), "--id",       spec.container_id,     "--bundle",
      spec.bundle.string(),         "--runtime",  spec.runtime.string(), "--runtime-root",
      spec.runtime_root.string(),   "--log-path", spec.log_path.string()};
  for (const auto& a : spec.runtime_args) argv.insert(argv.end(), {"--runtime-arg", a});
  auto opt = [&](const char* flag, const fs::path& p) {
    if (!p.empty()) argv.insert(argv.end(), {flag, p.string()});
  };
  opt("--exit-file", spec.exit_file);
  opt("--attach-socket", spec.attach_socket);
  opt("--pid-file", spec.pid_file);
  opt("--monitor-pid-file", spec.monitor_pid_file);
  opt("--monitor-log", spec.monitor_log);
  if (sync_fd >= 0) argv.insert(argv.end(), {"--sync-fd", std::to_string(sync_fd)});
  if (spec.terminal) argv.push_back("--terminal");
  if (spec.stdin_open) argv.push_back("--stdin");
  if (spec.stdin_once) argv.push_back("--stdin-once");
  if (spec.delete_on_exit) argv.push_back("--delete-on-exit");
  if (spec.log_line_max > 0) {
    argv.insert(argv.end(), {"--log-line-max", std::to_string(spec.log_line_max)});
  }
  return argv;
}

StatusOr<MonitorHandle> ParseSyncReport(std::string_view text, std::string_view id) {
  MonitorHandle h;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    std::string_view word = line.substr(0, line.find(' '));
    std::string_view rest = word.size() < line.size() ? line.substr(word.size() + 1) : "";
    if (word == kSyncError) {
      // The message runs to the end of the report.
      std::string_view msg = Trim(text.substr(word.size()));
      return UnknownError(StrCat("berth-monitor for container ", id, ": ", msg));
    }
    if (word == kSyncMonitor) {
      if (!ParseInt(Trim(rest), &h.monitor_pid) || h.monitor_pid <= 0) {
        return InternalError(
            StrCat("berth-monitor for container ", id, " reported a bad pid: \"", line, "\""));
      }
    } else if (word == kSyncCreated) {
      if (!ParseInt(Trim(rest), &h.container_pid) || h.container_pid <= 0) {
        return InternalError(StrCat("berth-monitor for container ", id,
                                    " reported a bad container pid: \"", line, "\""));
      }
      if (h.monitor_pid <= 0) {
        return InternalError(
            StrCat("berth-monitor for container ", id, " reported created before its own pid"));
      }
      return h;
    } else if (!line.empty()) {
      return InternalError(StrCat("berth-monitor for container ", id,
                                  " wrote an unknown report line: \"", line, "\""));
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return InternalError(StrCat("berth-monitor for container ", id,
                              " exited without reporting whether the container was created"));
}

StatusOr<MonitorHandle> SpawnMonitor(const MonitorSpec& spec) {
  const std::string& id = spec.container_id;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, StrCat("pipe for monitor of ", id));
  UniqueFd sync_r(p[0]);
  // Kept above the fds the spawn file actions write (0-3) so none aliases.
  UniqueFd sync_w(fcntl(p[1], F_DUPFD_CLOEXEC, 10));
  close(p[1]);
  if (!sync_w.valid()) return ErrnoStatus(errno, StrCat("dup pipe for monitor of ", id));

  // A clean environment: nothing of berthd's leaks into the runtime.
  SpawnOptions opts;
  opts.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
#ifdef BERTH_SANITIZER_BUILD
  // Except, in sanitizer builds, the sanitizers' options: they carry the
  // log_path that keeps the monitor's reports (its stderr is /dev/null).
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"}) {
    if (const char* v = getenv(name)) opts.env.push_back(StrCat(name, "=", v));
  }
#endif
  // stdio is /dev/null; the sync pipe is the monitor's only channel back.
  opts.extra_fds = {{kChildSyncFd, sync_w.get()}};
  std::vector<std::string> argv = MonitorArgv(spec, kChildSyncFd);
  auto first = SpawnProcess(argv, opts);
  if (!first.ok()) {
    return Annotate(first.status(),
                    StrCat("spawn ", spec.monitor_binary.string(), " for container ", id));
  }
  sync_w.Reset();
  // The first process only forks the real monitor and exits.
  ASSIGN_OR_RETURN(int first_exit, first->Wait());

  std::string text;
  auto deadline = steady_clock::now() + spec.timeout;
  char buf[4096];
  for (;;) {
    struct pollfd pfd = {sync_r.get(), POLLIN, 0};
    int n = poll(&pfd, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, StrCat("poll sync pipe of monitor for ", id));
    if (n == 0) {
      // Whatever the runtime is stuck on, the monitor must not outlive the
      // failed create unnoticed.
      pid_t mpid = 0;
      std::string_view first_line = std::string_view(text).substr(0, text.find('\n'));
      if (first_line.starts_with(std::string(kSyncMonitor) + " ") &&
          ParseInt(Trim(first_line.substr(sizeof(kSyncMonitor))), &mpid) && mpid > 0) {
        kill(mpid, SIGKILL);
      }
      return DeadlineExceededError(StrCat(
          "berth-monitor for container ", id, " did not report within ", spec.timeout.count(),
          " ms (runtime ", spec.runtime.string(), " create still running?)",
          mpid > 0 ? StrCat("; killed monitor pid ", mpid) : std::string()));
    }
    ssize_t r = read(sync_r.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(errno, StrCat("read sync pipe of monitor for ", id));
    if (r == 0) break;
    text.append(buf, static_cast<size_t>(r));
  }
  auto result = ParseSyncReport(text, id);
  if (!result.ok() && text.empty() && first_exit != 0) {
    return InternalError(StrCat(spec.monitor_binary.string(), " for container ", id,
                                " exited with status ", first_exit, " without a report"));
  }
  return result;
}

StatusOr<int64_t> ParseRfc3339Nano(std::string_view text) {
  auto bad = [&] { return InvalidArgumentError(StrCat("not an RFC 3339 time: \"", text, "\"")); };
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return bad();
  }
  int year, mon, day, hour, min, sec;
  if (!ParseInt(text.substr(0, 4), &year) || !ParseInt(text.substr(5, 2), &mon) ||
      !ParseInt(text.substr(8, 2), &day) || !ParseInt(text.substr(11, 2), &hour) ||
      !ParseInt(text.substr(14, 2), &min) || !ParseInt(text.substr(17, 2), &sec)) {
    return bad();
  }
  std::string_view rest = text.substr(19);
  int64_t nanos = 0;
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    int64_t scale = 100000000;
    for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) {
      nanos += (rest[i] - '0') * scale;
      scale /= 10;
    }
    if (i == 1) return bad();
    rest.remove_prefix(i);
  }
  int64_t offset = 0;
  if (rest == "Z" || rest == "z") {
    offset = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh, om;
    if (!ParseInt(rest.substr(1, 2), &oh) || !ParseInt(rest.substr(4, 2), &om)) return bad();
    offset = (oh * 3600 + om * 60) * (rest[0] == '+' ? 1 : -1);
  } else {
    return bad();
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return bad();
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset;
  // Nanoseconds since 1970 fit in int64 only from 1677 to 2262.
  int64_t result = 0;
  if (__builtin_mul_overflow(secs, int64_t{1000000000}, &result) ||
      __builtin_add_overflow(result, nanos, &result)) {
    return InvalidArgumentError(
        StrCat("RFC 3339 time out of range (years 1678 to 2262): \"", text, "\""));
  }
  return result;
}

StatusOr<ExitRecord> ParseExitFile(std::string_view text) {
  ExitRecord rec;
  bool have_code = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    bool ok = true;
    if (key == kExitKeyCode) {
      ok = ParseInt(value, &rec.exit_code);
      have_code = ok;
    } else if (key == kExitKeySignal) {
      ok = ParseInt(value, &rec.signal);
    } else if (key == kExitKeyTime) {
      auto t = ParseRfc3339Nano(value);
      ok = t.ok();
      if (ok) {
        rec.exit_time = std::string(value);
        rec.exit_time_ns = *t;
      }
    } else if (key == kExitKeyOom) {
      ok = value == "true" || value == "false";
      rec.oom_killed = value == "true";
    } else if (key == kExitKeyPid) {
      ok = ParseInt(value, &rec.pid);
    } else if (key == kExitKeyRuntimeDeleted) {
      ok = value == "true" || value == "false";
      rec.runtime_deleted = value == "true";
    }
    if (!ok) return DataLossError(StrCat("exit file: bad value in line \"", line, "\""));
  }
  if (!have_code) return DataLossError("exit file has no exit_code line");
  return rec;
}

StatusOr<ExitRecord> ReadExitFile(const fs::path& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (!fs::exists(path)) return NotFoundError(StrCat("no exit file ", path.string(), " yet"));
    return text.status();
  }
  auto rec = ParseExitFile(*text);
  if (!rec.ok()) return Annotate(rec.status(), path.string());
  return rec;
}

StatusOr<int64_t> ParseOomFile(std::string_view text) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.starts_with(kOomKeyKills) || line.size() <= sizeof(kOomKeyKills) ||
        line[sizeof(kOomKeyKills) - 1] != '=') {
      continue;
    }
    int64_t kills = 0;
    if (!ParseInt(line.substr(sizeof(kOomKeyKills)), &kills) || kills < 0) {
      return DataLossError(StrCat("OOM file: bad value in line \"", line, "\""));
    }
    return kills;
  }
  return DataLossError(StrCat("OOM file has no ", kOomKeyKills, " line"));
}

StatusOr<int64_t> ReadOomFile(const fs::path& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (!fs::exists(path)) return NotFoundError(StrCat("no OOM file ", path.string()));
    return text.status();
  }
  auto kills = ParseOomFile(*text);
  if (!kills.ok()) return Annotate(kills.status(), path.string());
  return kills;
}

StatusOr<AttachConnection> AttachConnection::Connect(const fs::path& socket) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("socket for ", socket.string()));
  if (UnixSocketBindOrConnect(fd.get(), socket.string(), /*do_bind=*/false) != 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      return UnavailableError(StrCat("monitor attach socket ", socket.string(),
                                     " is not there (container exited?): ", strerror(err)));
    }
    return ErrnoStatus(err, StrCat("connect to monitor attach socket ", socket.string()));
  }
  return AttachConnection(std::move(fd), socket.string());
}

StatusOr<AttachConnection> AttachConnection::Attach(const fs::path& socket, uint8_t flags,
                                                    milliseconds timeout) {
  ASSIGN_OR_RETURN(AttachConnection conn, Connect(socket));
  char f = static_cast<char>(flags);
  RETURN_IF_ERROR(conn.SendFrame(FrameType::kAttach, std::string_view(&f, 1)));
  ASSIGN_OR_RETURN(Frame reply, conn.Receive(timeout));
  if (reply.type == FrameType::kError) {
    return FailedPreconditionError(StrCat("attach via ", socket.string(), ": ", reply.payload));
  }
  if (reply.type != FrameType::kOk) {
    return InternalError(StrCat("attach via ", socket.string(), ": unexpected frame type '",
                                static_cast<char>(reply.type), "'"));
  }
  return conn;
}

Status AttachConnection::SendFrame(FrameType type, std::string_view payload) {
  std::string frame;
  frame.reserve(1 + payload.size());
  frame.push_back(static_cast<char>(type));
  frame.append(payload);
  for (;;) {
    ssize_t n = send(fd_.get(), frame.data(), frame.size(), MSG_NOSIGNAL);
    if (n >= 0) return OkStatus();
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) {
      return UnavailableError(StrCat("monitor closed attach connection ", socket_));
    }
    return ErrnoStatus(errno, StrCat("send to monitor attach socket ", socket_));
  }
}

Status AttachConnection::SendStdin(std::string_view data) {
  while (!data.empty()) {
    size_t n = std::min(data.size(), kMaxFramePayload);
    RETURN_IF_ERROR(SendFrame(FrameType::kStdin, data.substr(0, n)));
    data.remove_prefix(n);
  }
  return OkStatus();
}

Status AttachConnection::CloseStdin() { return SendFrame(FrameType::kCloseStdin, ""); }

Status AttachConnection::Resize(uint16_t rows, uint16_t cols) {
  std::array<char, 4> p = EncodeResizePayload(rows, cols);
  return SendFrame(FrameType::kResize, std::string_view(p.data(), p.size()));
}

Status AttachConnection::ReopenLog(milliseconds timeout) {
  RETURN_IF_ERROR(SendFrame(FrameType::kReopenLog, ""));
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    ASSIGN_OR_RETURN(Frame f, Receive(milliseconds(RemainingMs(deadline))));
    if (f.type == FrameType::kOk) return OkStatus();
    if (f.type == FrameType::kError) {
      return InternalError(StrCat("reopen log via ", socket_, ": ", f.payload));
    }
    if (f.type == FrameType::kExit) {
      return UnavailableError(StrCat("container of ", socket_, " exited before the log reopened"));
    }
  }
}

StatusOr<AttachConnection::Frame> AttachConnection::Receive(milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  std::string buf(1 + kMaxFramePayload, '\0');
  for (;;) {
    struct pollfd pfd = {fd_.get(), POLLIN, 0};
    int n = poll(&pfd, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, StrCat("poll monitor attach socket ", socket_));
    if (n == 0) {
      return DeadlineExceededError(StrCat("no frame from monitor attach socket ", socket_,
                                          " within ", timeout.count(), " ms"));
    }
    ssize_t r = recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r < 0 && errno != ECONNRESET) {
      return ErrnoStatus(errno, StrCat("receive from monitor attach socket ", socket_));
    }
    if (r <= 0) return UnavailableError(StrCat("monitor closed attach connection ", socket_));
    Frame f{static_cast<FrameType>(buf[0]), buf.substr(1, static_cast<size_t>(r) - 1)};
    return f;
  }
}

Status ReopenContainerLog(const fs::path& attach_socket, milliseconds timeout) {
  ASSIGN_OR_RETURN(AttachConnection conn, AttachConnection::Connect(attach_socket));
  return conn.ReopenLog(timeout);
}

}  // namespace berth::monitor
