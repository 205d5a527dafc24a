// exec (streaming), attach, port-forward: the client side of the CRI
// streaming protocols, with crictl's flags and messages. With -t the local
// terminal is put in raw mode, window size changes (SIGWINCH) are sent as
// resize events, and ctrl-p,ctrl-q detaches (ends our stdin), as crictl does.
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "ctl/commands.h"
#include "ctl/table.h"
#include "ctl/terminal.h"
#include "stream/client.h"

namespace berth::ctl {
namespace {

// crictl's stand-in when a runtime returns a URL without scheme or host.
constexpr std::string_view kKubeletUrlHost = "http://127.0.0.1:10250";

std::string FixUrl(const std::string& url) {
  if (url.find("://") != std::string::npos) return url;
  if (!url.empty() && url.front() == '/') return StrCat(kKubeletUrlHost, url);
  return StrCat("http://", url);
}

// --- local endpoints --------------------------------------------------------

// An istream as input (tests drive berthctl with string streams).
class IstreamInput final : public stream::InputSource {
 public:
  explicit IstreamInput(std::istream& in) : in_(in) {}
  StatusOr<size_t> Read(std::span<char> buf) override {
    if (interrupted_) return CancelledError("input interrupted");
    in_.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    return static_cast<size_t>(in_.gcount());
  }
  void Interrupt() override { interrupted_ = true; }

 private:
  std::istream& in_;
  std::atomic<bool> interrupted_{false};
};

class OstreamOutput final : public stream::ByteSink {
 public:
  explicit OstreamOutput(std::ostream& out) : out_(out) {}
  Status Write(std::string_view data) override {
    std::lock_guard lock(mu_);
    out_.write(data.data(), static_cast<std::streamsize>(data.size()));
    out_.flush();
    return out_ ? OkStatus() : UnavailableError("output closed");
  }
  Status CloseWrite() override { return OkStatus(); }

 private:
  std::mutex mu_;
  std::ostream& out_;
};

// --- exec and attach ------------------------------------------------------------

// Runs a session on `url` with the process's stdio (or the env's streams in
// tests); returns the remote exit code.
StatusOr<int> StreamCommand(CommandEnv& env, const std::string& url, bool in, bool tty) {
  if (tty && !in) return InvalidArgumentError("tty=true must be specified with interactive=true");
  bool real = env.real_stdio;
  if (tty && (!real || ::isatty(STDIN_FILENO) == 0)) {
    return InvalidArgumentError("input is not a terminal");
  }
  env.out.flush();
  std::unique_ptr<stream::InputSource> input;
  std::unique_ptr<stream::ByteSink> out, err;
  if (real) {
    if (in) input = std::make_unique<stream::FdInput>(STDIN_FILENO);
    out = std::make_unique<stream::FdOutput>(STDOUT_FILENO);
    err = std::make_unique<stream::FdOutput>(STDERR_FILENO);
  } else {
    if (in) input = std::make_unique<IstreamInput>(env.in);
    out = std::make_unique<OstreamOutput>(env.out);
    err = std::make_unique<OstreamOutput>(env.err_stream());
  }
  std::unique_ptr<DetachKeysInput> detach;
  std::unique_ptr<WindowSizeQueue> sizes;
  std::unique_ptr<RawTerminal> raw;
  stream::RemoteCommandIo io;
  io.stdin = input.get();
  io.stdout = out.get();
  io.stderr = tty ? nullptr : err.get();
  io.tty = tty;
  if (tty) {
    detach = std::make_unique<DetachKeysInput>(*input);
    io.stdin = detach.get();
    sizes = std::make_unique<WindowSizeQueue>(STDOUT_FILENO);
    io.sizes = sizes.get();
    raw = std::make_unique<RawTerminal>(STDIN_FILENO);
  }
  env.log.Debug(StrCat("Stream URL: ", url));
  return stream::RunRemoteCommand(url, io, stream::ClientOptions{});
}

Status StreamResult(const StatusOr<int>& r) {
  if (!r.ok()) return r.status();
  // client-go's error for a non-zero exit, which crictl reports.
  if (*r != 0) return UnknownError(StrCat("command terminated with exit code ", *r));
  return OkStatus();
}

struct AttachOptions {
  bool tty = false;
  bool stdin = false;
  std::vector<std::string> args;
};

Status RunAttach(CommandEnv& env, const AttachOptions& o) {
  if (o.args.empty() || o.args[0].empty()) return InvalidArgumentError("ID cannot be empty");
  if (o.args.size() != 1) {
    env.show_help();
    return OkStatus();
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  cri::AttachRequest req;
  req.set_container_id(o.args[0]);
  req.set_tty(o.tty);
  req.set_stdin(o.stdin);
  req.set_stdout(true);
  req.set_stderr(!o.tty);
  auto fail = [](const Status& s) { return Annotate(s, "attaching running container failed"); };
  if (o.tty && !o.stdin) {
    return fail(InvalidArgumentError("tty=true must be specified with interactive=true"));
  }
  StatusOr<std::string> url = Attach(env.client, req);
  if (!url.ok()) return fail(url.status());
  Status s = StreamResult(StreamCommand(env, FixUrl(*url), o.stdin, o.tty));
  return s.ok() ? s : fail(s);
}

// --- port-forward ---------------------------------------------------------------

StatusOr<stream::PortMapping> ParsePortSpec(const std::string& spec) {
  // client-go's forms: "8080" (the same port both ends), "8080:80", ":80"
  // (any free local port).
  auto parse = [&](std::string_view s, bool allow_zero) -> StatusOr<uint16_t> {
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v > 65535 ||
        (v == 0 && !allow_zero)) {
      return InvalidArgumentError(StrCat("invalid port ", GoQuote(std::string(s))));
    }
    return static_cast<uint16_t>(v);
  };
  stream::PortMapping m;
  size_t colon = spec.find(':');
  if (colon == std::string::npos) {
    ASSIGN_OR_RETURN(m.remote_port, parse(spec, false));
    m.local_port = m.remote_port;
    return m;
  }
  if (spec.find(':', colon + 1) != std::string::npos) {
    return InvalidArgumentError(StrCat("invalid port format ", GoQuote(spec)));
  }
  std::string_view local = std::string_view(spec).substr(0, colon);
  if (!local.empty()) {
    ASSIGN_OR_RETURN(m.local_port, parse(local, true));
  }
  ASSIGN_OR_RETURN(m.remote_port, parse(std::string_view(spec).substr(colon + 1), false));
  return m;
}

struct PortForwardOptions {
  std::vector<std::string> args;
};

Status RunPortForward(CommandEnv& env, const PortForwardOptions& o) {
  if (o.args.size() < 2) {
    env.show_help();
    return OkStatus();
  }
  auto fail = [](const Status& s) { return Annotate(s, "port forward"); };
  if (o.args[0].empty()) return fail(InvalidArgumentError("ID cannot be empty"));
  std::vector<stream::PortMapping> mappings;
  for (size_t i = 1; i < o.args.size(); ++i) {
    StatusOr<stream::PortMapping> m = ParsePortSpec(o.args[i]);
    if (!m.ok()) return fail(m.status());
    mappings.push_back(*m);
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  cri::PortForwardRequest req;
  req.set_pod_sandbox_id(o.args[0]);
  StatusOr<std::string> url = PortForward(env.client, req);
  if (!url.ok()) return fail(url.status());
  env.log.Debug(StrCat("PortForward URL: ", *url));
  std::mutex out_mu;
  auto say = [&](const std::string& line) {
    std::lock_guard lock(out_mu);
    bool error = line.find("error") != std::string::npos;
    std::ostream& to = error ? env.err_stream() : env.out;
    to << line << "\n";
    to.flush();
  };
  InterruptWaiter interrupts;
  StatusOr<std::unique_ptr<stream::PortForwarder>> pf =
      stream::PortForwarder::Start(FixUrl(*url), mappings, stream::ClientOptions{}, say);
  if (!pf.ok()) return fail(pf.status());
  std::vector<uint16_t> local = (*pf)->local_ports();
  for (size_t i = 0; i < mappings.size(); ++i) {
    say(StrCat("Forwarding from 127.0.0.1:", local[i], " -> ", mappings[i].remote_port));
  }
  std::atomic<bool> lost{false};
  Status why;
  std::thread watcher([&] {
    why = (*pf)->Wait();
    lost = true;
  });
  bool interrupted = interrupts.Wait([&] { return lost.load(); });
  (*pf)->Stop();
  watcher.join();
  if (!interrupted && !why.ok()) {
    // crictl reports the lost connection and ends without an error status.
    say(StrCat("error: lost connection to pod: ", why.message()));
  }
  return OkStatus();
}

}  // namespace

Status RunStreamingExec(CommandEnv& env, const std::string& id, const std::vector<std::string>& cmd,
                        bool tty, bool interactive) {
  auto fail = [](const Status& s) { return Annotate(s, "execing command in container"); };
  if (tty && !interactive) {
    return fail(InvalidArgumentError("tty=true must be specified with interactive=true"));
  }
  RETURN_IF_ERROR(env.client.runtime().status());
  cri::ExecRequest req;
  req.set_container_id(id);
  for (const std::string& arg : cmd) req.add_cmd(arg);
  req.set_tty(tty);
  req.set_stdin(interactive);
  req.set_stdout(true);
  req.set_stderr(!tty);
  StatusOr<std::string> url = Exec(env.client, req);
  if (!url.ok()) return fail(url.status());
  Status s = StreamResult(StreamCommand(env, FixUrl(*url), interactive, tty));
  return s.ok() ? s : fail(s);
}

void AddStreamCommands(CLI::App& app, CommandSink& sink) {
  auto attach = std::make_shared<AttachOptions>();
  CLI::App* attach_cmd = app.add_subcommand("attach", "Attach to a running container");
  attach_cmd->add_flag("-t,--tty", attach->tty, "Allocate a pseudo-TTY");
  attach_cmd->add_flag("-i,--stdin", attach->stdin, "Keep STDIN open");
  attach_cmd->add_option("container-id", attach->args, "CONTAINER-ID");
  sink.Bind(attach_cmd, [attach](CommandEnv& env) { return RunAttach(env, *attach); });

  auto pf = std::make_shared<PortForwardOptions>();
  CLI::App* pf_cmd = app.add_subcommand("port-forward", "Forward local port to a pod");
  pf_cmd->add_option("args", pf->args, "POD-ID [LOCAL_PORT:]REMOTE_PORT");
  sink.Bind(pf_cmd, [pf](CommandEnv& env) { return RunPortForward(env, *pf); });
}

}  // namespace berth::ctl
