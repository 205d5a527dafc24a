#include "oci/oci_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/fs.h"
#include "common/numbers.h"

namespace berth::oci {

namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(60);

Status MakePipe(UniqueFd& r, UniqueFd& w) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  r.Reset(fds[0]);
  w.Reset(fds[1]);
  return OkStatus();
}

// A file only the runtime reads while berthd waits for it, then removed: no
// fsync (it need not survive a crash; start-up sweeps it).
Status WriteTempFile(const std::string& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("create ", path));
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::unlink(path.c_str());
      return ErrnoStatus(err, StrCat("write ", path));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

// What is in a pipe now, without blocking (at most 64 KiB).
std::string ReadAvailable(int fd) {
  std::string out;
  char buf[4096];
  while (out.size() < 65536) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// runc logs as `time="..." level=error msg="..."`: keep the messages.
std::string RuntimeMessage(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while ((pos = text.find("msg=\"", pos)) != std::string::npos) {
    pos += 5;
    std::string msg;
    for (; pos < text.size() && text[pos] != '"'; ++pos) {
      if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
      msg.push_back(text[pos]);
    }
    if (!out.empty()) out += "; ";
    out += msg;
  }
  if (out.empty()) out = text;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "no message" : out;
}

// The --console-socket of a terminal exec: the runtime connects and sends
// the pty master with SCM_RIGHTS. Removed on destruction.
class ConsoleSocket {
 public:
  static StatusOr<ConsoleSocket> Listen(const std::string& path) {
    ConsoleSocket s;
    s.path_ = path;
    s.fd_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.fd_.valid()) return ErrnoStatus(errno, StrCat("socket for ", path));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string bind_path = path;
    if (path.size() >= sizeof(addr.sun_path)) {
      // Too long for an address: reach it through a descriptor of its
      // directory, for us and (through our /proc entry) for the runtime.
      size_t slash = path.rfind('/');
      s.dir_.Reset(::open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!s.dir_.valid()) return ErrnoStatus(errno, StrCat("open directory of ", path));
      bind_path = StrCat("/proc/self/fd/", s.dir_.get(), "/", path.substr(slash + 1));
      s.runtime_path_ =
          StrCat("/proc/", ::getpid(), "/fd/", s.dir_.get(), "/", path.substr(slash + 1));
      if (s.runtime_path_.size() >= sizeof(addr.sun_path)) {
        return InvalidArgumentError(StrCat("console socket name too long: ", path));
      }
    } else {
      s.runtime_path_ = path;
    }
    std::memcpy(addr.sun_path, bind_path.c_str(), bind_path.size() + 1);
    if (::bind(s.fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return ErrnoStatus(errno, StrCat("bind console socket ", path));
    }
    s.bound_ = true;
    if (::listen(s.fd_.get(), 1) != 0) return ErrnoStatus(errno, StrCat("listen on ", path));
    return s;
  }

  ConsoleSocket() = default;
  ConsoleSocket(ConsoleSocket&& o) noexcept
      : path_(std::move(o.path_)),
        runtime_path_(std::move(o.runtime_path_)),
        fd_(std::move(o.fd_)),
        dir_(std::move(o.dir_)),
        bound_(std::exchange(o.bound_, false)) {}
  ConsoleSocket& operator=(ConsoleSocket&&) = delete;
  ~ConsoleSocket() {
    if (bound_) ::unlink(path_.c_str());
  }

  const std::string& path_for_runtime() const { return runtime_path_; }

  // The pty master the runtime sent. Called after the runtime exited, so
  // whatever it sent is queued already: nothing blocks.
  StatusOr<UniqueFd> Receive() {
    UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      return ErrnoStatus(errno, StrCat("the runtime sent no terminal to ", path_));
    }
    char data[256];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
      n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus(errno, StrCat("receive the terminal on ", path_));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
          c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        return UniqueFd(fd);
      }
    }
    return InternalError(StrCat("the runtime's message on ", path_, " carried no terminal"));
  }

 private:
  std::string path_, runtime_path_;
  UniqueFd fd_, dir_;
  bool bound_ = false;
};

bool SaysNotExist(const ProcessResult& r) {
  const std::string& e = r.err.empty() ? r.out : r.err;
  return e.find("does not exist") != std::string::npos ||
         e.find("not found") != std::string::npos || e.find("No such file") != std::string::npos;
}

class CliRuntime final : public OciRuntime {
 public:
  CliRuntime(std::string name, std::string binary, std::string root,
             std::vector<std::string> global_args)
      : name_(std::move(name)),
        binary_(std::move(binary)),
        root_(std::move(root)),
        global_args_(std::move(global_args)) {}

  const std::string& handler_name() const override { return name_; }
  const std::string& binary() const override { return binary_; }
  const std::string& state_root() const override { return root_; }
  const std::vector<std::string>& global_args() const override { return global_args_; }

  Status Start(const std::string& id) override {
    return Annotate(RunChecked({"start", id}), StrCat("start container ", id));
  }

  Status Kill(const std::string& id, int signal, bool all) override {
    std::vector<std::string> args = {"kill"};
    if (all) args.push_back("--all");
    args.push_back(id);
    args.push_back(std::to_string(signal));
    return Annotate(RunChecked(args), StrCat("signal ", signal, " to container ", id));
  }

  Status Delete(const std::string& id, bool force) override {
    std::vector<std::string> args = {"delete"};
    if (force) args.push_back("--force");
    args.push_back(id);
    ASSIGN_OR_RETURN(ProcessResult r, Run(args));
    if (r.exit_code == 0 || SaysNotExist(r)) return OkStatus();
    return InternalError(StrCat("delete container ", id, ": ", DescribeFailure(Argv(args), r)));
  }

  StatusOr<RuntimeState> State(const std::string& id) override {
    ASSIGN_OR_RETURN(ProcessResult r, Run({"state", id}));
    if (r.exit_code != 0) {
      if (SaysNotExist(r)) return NotFoundError(StrCat(name_, " does not know container ", id));
      return InternalError(DescribeFailure(Argv({"state", id}), r));
    }
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) {
      return InternalError(StrCat(name_, " state ", id, " printed no JSON"));
    }
    RuntimeState s;
    s.status = j.value("status", "");
    s.pid = j.value("pid", 0);
    return s;
  }

  StatusOr<std::unique_ptr<ExecProcess>> Exec(const std::string& id,
                                              const std::string& process_json,
                                              const ExecIo& io) override {
    const std::string what = StrCat("exec in container ", id);
    // Temporary files are named exec-* so that a start-up sweeps those of a
    // crashed berthd (see NewCliRuntime). runc reads --process from a path.
    const std::string base = StrCat(root_, "/exec-", id.substr(0, 12), "-", RandomHex(6));
    const std::string spec_path = base + ".json", pid_file = base + ".pid";
    RETURN_IF_ERROR(WriteTempFile(spec_path, process_json));
    ScopeGuard remove_files([&] {
      ::unlink(spec_path.c_str());
      ::unlink(pid_file.c_str());
    });

    UniqueFd stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w;
    if (io.stdin && !io.terminal) RETURN_IF_ERROR(MakePipe(stdin_r, stdin_w));
    if (io.stdout && !io.terminal) RETURN_IF_ERROR(MakePipe(stdout_r, stdout_w));
    // Always a stderr pipe: without a terminal the runtime hands its stderr
    // to the process, and its own error messages arrive there too.
    RETURN_IF_ERROR(MakePipe(stderr_r, stderr_w));
    std::optional<ConsoleSocket> console;
    std::vector<std::string> args = {"exec",   "--detach",  "--pid-file",
                                     pid_file, "--process", spec_path};
    if (io.terminal) {
      auto listening = ConsoleSocket::Listen(base + ".sock");
      if (!listening.ok()) return Annotate(listening.status(), what);
      console.emplace(std::move(*listening));
      args.insert(args.end(), {"--tty", "--console-socket", console->path_for_runtime()});
    }
    args.push_back(id);

    SpawnOptions opts;
    opts.adopt_orphans = true;  // the exec'd process is left behind by the runtime
    opts.stdin_fd = stdin_r.get();
    opts.stdout_fd = stdout_w.get();
    opts.stderr_fd = stderr_w.get();
    ASSIGN_OR_RETURN(Subprocess runtime, SpawnProcess(Argv(args), opts));
    stdin_r.Reset();
    stdout_w.Reset();
    stderr_w.Reset();
    auto code = runtime.Wait(std::chrono::steady_clock::now() + kCommandTimeout);
    if (!code.ok()) return Annotate(code.status(), what);  // the runtime is killed on return
    if (*code != 0) {
      return UnknownError(StrCat(what, ": ", binary_, " exec failed (exit ", *code,
                                 "): ", RuntimeMessage(ReadAvailable(stderr_r.get()))));
    }
    auto pid_text = ReadFile(pid_file);
    int pid = pid_text.ok() ? ParseDecimal<int>(*pid_text).value_or(0) : 0;
    if (pid <= 0) return InternalError(StrCat(what, ": ", binary_, " wrote no pid file"));
    UniqueFd terminal;
    if (console) {
      auto master = console->Receive();
      if (!master.ok()) {
        // Its destruction kills the process that runs without a terminal.
        ExecProcess orphan(what, std::move(runtime), pid, {}, {}, {}, {}, {});
        return Annotate(master.status(), what);
      }
      terminal = std::move(*master);
    }
    if (io.terminal) stderr_r.Reset();  // the runtime's own; the process has the terminal
    if (io.terminal && (io.rows != 0 || io.cols != 0)) {
      struct winsize ws {};
      ws.ws_row = io.rows;
      ws.ws_col = io.cols;
      ::ioctl(terminal.get(), TIOCSWINSZ, &ws);
    }
    return std::make_unique<ExecProcess>(
        StrCat("exec ", pid, " in container ", id), std::move(runtime), pid, io, std::move(stdin_w),
        std::move(stdout_r), std::move(stderr_r), std::move(terminal));
  }

  Status Update(const std::string& id, const std::string& resources_json) override {
    std::string path = StrCat(root_, "/update-", id.substr(0, 12), "-", RandomHex(6), ".json");
    RETURN_IF_ERROR(WriteFileAtomic(path, resources_json, 0600));
    ScopeGuard remove([&] { ::unlink(path.c_str()); });
    return Annotate(RunChecked({"update", "--resources", path, id}),
                    StrCat("update resources of container ", id));
  }

 private:
  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {binary_, "--root", root_};
    argv.insert(argv.end(), global_args_.begin(), global_args_.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  StatusOr<ProcessResult> Run(const std::vector<std::string>& args) {
    RunOptions opts;
    opts.timeout = kCommandTimeout;
    return RunProcess(Argv(args), opts);
  }

  Status RunChecked(const std::vector<std::string>& args) {
    ASSIGN_OR_RETURN(ProcessResult r, Run(args));
    if (r.exit_code != 0) {
      if (SaysNotExist(r)) return NotFoundError(DescribeFailure(Argv(args), r));
      return InternalError(DescribeFailure(Argv(args), r));
    }
    return OkStatus();
  }

  std::string name_, binary_, root_;
  std::vector<std::string> global_args_;
};

}  // namespace

std::unique_ptr<OciRuntime> NewCliRuntime(std::string handler_name, std::string binary,
                                          std::string state_root,
                                          std::vector<std::string> global_args) {
  // Process and resource files of calls a crashed berthd never finished.
  // The runtime's own entries are directories named by container id.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(state_root, ec)) {
    std::string name = e.path().filename().string();
    if ((name.starts_with("exec-") || name.starts_with("update-")) && !e.is_directory()) {
      std::filesystem::remove(e.path(), ec);
    }
  }
  return std::make_unique<CliRuntime>(std::move(handler_name), std::move(binary),
                                      std::move(state_root), std::move(global_args));
}

}  // namespace berth::oci
