// Integration tests of the streaming RPCs (Exec, Attach, PortForward) end to end: a real berthd
// over its gRPC socket answers a URL of its streaming server; the test connects there with the
// stream/ client library (SPDY/3.1 and WebSocket, the protocols of kubectl and crictl) or with
// berthctl, and checks what the process in the container saw and did: stdin, stdout and stderr
// kept apart, exit codes, terminal sizes, attach to running and exiting containers,
// port-forward transfers checksummed, tokens that must not work, clients that vanish, many
// sessions at once. Every test ends with the fixture's leak checks.
//
// Needs root (namespaces, mounts, runc) and Debian's CNI plugins. Traffic goes only to
// 127.0.0.1 and to the pod addresses of networks the tests create.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "stream/client.h"
#include "stream/remotecommand.h"
#include "stream/spdy_session.h"

namespace berth::testing {
namespace {

using stream::ClientOptions;
using stream::RemoteCommandIo;
using stream::StreamProtocol;
using stream::StringOutput;
using stream::TerminalSize;

#ifndef BERTHCTL_PATH
#error "BERTHCTL_PATH must name the berthctl binary (see tests/integration/CMakeLists.txt)"
#endif

// Terminal sizes pushed by the test while a session runs.
class SizeQueue final : public stream::TerminalSizeQueue {
 public:
  void Push(TerminalSize s) {
    std::lock_guard l(mu_);
    sizes_.push_back(s);
    cv_.notify_all();
  }
  std::optional<TerminalSize> Next() override {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return closed_ || !sizes_.empty(); });
    if (sizes_.empty()) return std::nullopt;
    TerminalSize s = sizes_.front();
    sizes_.pop_front();
    return s;
  }
  void Close() override {
    std::lock_guard l(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TerminalSize> sizes_;
  bool closed_ = false;
};

// Waits until `pred` holds (polling), at most `timeout`.
bool Eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Host pids whose command line is exactly `cmdline` (arguments joined by spaces).
std::vector<int> PidsRunning(const std::string& cmdline) {
  std::vector<int> out;
  for (int pid : AllPids()) {
    if (CmdlineOf(pid) == cmdline) out.push_back(pid);
  }
  return out;
}

// Children of `pid` (all threads), from /proc.
std::vector<int> ChildrenOf(int pid) {
  std::vector<int> out;
  for (const std::string& task : DirEntries(StrCat("/proc/", pid, "/task"))) {
    std::string text = ReadOr(StrCat("/proc/", pid, "/task/", task, "/children"));
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find(' ', pos);
      if (end == std::string::npos) end = text.size();
      if (end > pos) out.push_back(ParseDecimal<int>(text.substr(pos, end - pos)).value_or(0));
      pos = end + 1;
    }
  }
  return out;
}

std::string Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish().hex();
}

// GET http://127.0.0.1:<port><path> (HTTP/1.0) and the body, retrying while the connection is
// refused or reset (the server may still be starting).
StatusOr<std::string> HttpGet(uint16_t port, const std::string& path,
                              std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto deadline = Clock::now() + timeout;
  Status last = UnavailableError("not tried");
  while (Clock::now() < deadline) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{30, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      last = ErrnoStatus(errno, StrCat("connect 127.0.0.1:", port));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    std::string req = StrCat("GET ", path, " HTTP/1.0\r\nHost: pod\r\n\r\n");
    if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(req.size())) {
      last = ErrnoStatus(errno, "send request");
      continue;
    }
    std::string resp;
    std::vector<char> buf(1 << 16);
    ssize_t n;
    while ((n = ::recv(fd.get(), buf.data(), buf.size(), 0)) > 0) {
      resp.append(buf.data(), static_cast<size_t>(n));
    }
    size_t head_end = resp.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      // Forwarding ended before a response: the server was not listening yet.
      last = UnavailableError(StrCat("no HTTP response (", resp.size(), " bytes)"));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (resp.compare(0, 12, "HTTP/1.0 200") != 0 && resp.compare(0, 12, "HTTP/1.1 200") != 0) {
      return InternalError(StrCat("HTTP answer: ", resp.substr(0, resp.find("\r\n"))));
    }
    return resp.substr(head_end + 4);
  }
  return last;
}

class StreamIT : public RuntimeServiceIT {
 protected:
  // A host-network pod with one running container.
  std::string RunContainer(const std::string& name, std::vector<std::string> cmd,
                           bool stdin = false, bool stdin_once = false, bool tty = false) {
    cri::PodSandboxConfig pod = PodConfig(name, cri::NODE, cri::CONTAINER);
    std::string pod_id, id;
    grpc::Status s = RunPod(pod, &pod_id);
    EXPECT_TRUE(s.ok()) << Describe(s);
    cri::ContainerConfig cfg = CtrConfig(name, std::move(cmd));
    cfg.set_stdin(stdin);
    cfg.set_stdin_once(stdin_once);
    cfg.set_tty(tty);
    s = CreateCtr(pod_id, pod, cfg, &id);
    EXPECT_TRUE(s.ok()) << Describe(s);
    s = StartCtr(id);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return id;
  }

  grpc::Status ExecRpc(const cri::ExecRequest& req, std::string* url) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::ExecResponse resp;
    grpc::Status s = berthd_->runtime().Exec(&ctx, req, &resp);
    *url = resp.url();
    return s;
  }

  std::string ExecUrl(const std::string& id, std::vector<std::string> cmd, bool stdin, bool stdout,
                      bool stderr, bool tty = false) {
    cri::ExecRequest req;
    req.set_container_id(id);
    for (auto& a : cmd) req.add_cmd(std::move(a));
    req.set_stdin(stdin);
    req.set_stdout(stdout);
    req.set_stderr(stderr);
    req.set_tty(tty);
    std::string url;
    grpc::Status s = ExecRpc(req, &url);
    EXPECT_TRUE(s.ok()) << "Exec: " << Describe(s);
    return url;
  }

  grpc::Status AttachRpc(const cri::AttachRequest& req, std::string* url) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::AttachResponse resp;
    grpc::Status s = berthd_->runtime().Attach(&ctx, req, &resp);
    *url = resp.url();
    return s;
  }

  std::string AttachUrl(const std::string& id, bool stdin, bool stdout, bool stderr,
                        bool tty = false) {
    cri::AttachRequest req;
    req.set_container_id(id);
    req.set_stdin(stdin);
    req.set_stdout(stdout);
    req.set_stderr(stderr);
    req.set_tty(tty);
    std::string url;
    grpc::Status s = AttachRpc(req, &url);
    EXPECT_TRUE(s.ok()) << "Attach: " << Describe(s);
    return url;
  }

  grpc::Status PortForwardRpc(const std::string& pod_id, const std::vector<int32_t>& ports,
                              std::string* url) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::PortForwardRequest req;
    req.set_pod_sandbox_id(pod_id);
    for (int32_t p : ports) req.add_port(p);
    cri::PortForwardResponse resp;
    grpc::Status s = berthd_->runtime().PortForward(&ctx, req, &resp);
    *url = resp.url();
    return s;
  }

  struct Session {
    StatusOr<int> exit = UnknownError("not run");
    std::string out, err;
  };

  // A whole exec or attach session: `input` on stdin (then EOF) if given.
  Session Run(const std::string& url, const std::optional<std::string>& input, bool stdout,
              bool stderr, StreamProtocol protocol = StreamProtocol::kSpdy) {
    Session r;
    stream::ChunkInput in;
    StringOutput out, err;
    RemoteCommandIo io;
    if (input) {
      io.stdin = &in;
      EXPECT_TRUE(in.Push(*input).ok());
      in.Finish();
    }
    if (stdout) io.stdout = &out;
    if (stderr) io.stderr = &err;
    ClientOptions opts;
    opts.protocol = protocol;
    r.exit = stream::RunRemoteCommand(url, io, opts);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  // A container's exec'd and attach sessions are all over: berthd has no child left (no
  // runtime, no subreaper), the runtime root holds no temporary file.
  void ExpectNoSessionLeft() {
    EXPECT_TRUE(Eventually([&] { return ChildrenOf(berthd_->pid()).empty(); }))
        << "children of berthd: " << ::testing::PrintToString(ChildrenOf(berthd_->pid()));
    std::vector<std::string> temp;
    for (const std::string& f : DirEntries(berthd_->state() / "runtimes" / "runc")) {
      if (f.starts_with("exec-")) temp.push_back(f);
    }
    EXPECT_THAT(temp, IsEmpty()) << "exec temporary files left";
  }
};

// ---------------------------------------------------------------------------------------------
// Exec: the three streams apart, exit codes, stdin to EOF, over SPDY and WebSocket.

TEST_F(StreamIT, ExecSeparatesStreamsAndReportsExitCodes) {
  const std::string id = RunContainer("exec", {"sleep", "3600"});
  for (StreamProtocol protocol : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    SCOPED_TRACE(protocol == StreamProtocol::kSpdy ? "SPDY" : "WebSocket");
    {
      Session s =
          Run(ExecUrl(id, {"sh", "-c", "echo to-out; echo to-err >&2; exit 3"}, false, true, true),
              std::nullopt, true, true, protocol);
      ASSERT_TRUE(s.exit.ok()) << s.exit.status();
      EXPECT_EQ(*s.exit, 3);
      EXPECT_EQ(s.out, "to-out\n");
      EXPECT_EQ(s.err, "to-err\n");
    }
    {
      // stdin reaches the process and its end is an EOF there.
      std::string input;
      for (int i = 0; i < 20000; ++i) input += StrCat("line ", i, "\n");
      Session s = Run(ExecUrl(id, {"sh", "-c", "cat; echo done >&2"}, true, true, true), input,
                      true, true, protocol);
      ASSERT_TRUE(s.exit.ok()) << s.exit.status();
      EXPECT_EQ(*s.exit, 0);
      EXPECT_EQ(s.out.size(), input.size());
      EXPECT_TRUE(s.out == input) << "stdin came back changed";
      EXPECT_EQ(s.err, "done\n");
    }
    {
      // Only stdout asked for: stderr is dropped, not mixed in.
      Session s = Run(ExecUrl(id, {"sh", "-c", "echo a; echo b >&2; echo c"}, false, true, false),
                      std::nullopt, true, false, protocol);
      ASSERT_TRUE(s.exit.ok()) << s.exit.status();
      EXPECT_EQ(s.out, "a\nc\n");
    }
    {
      // A command that cannot start is reported, not an exit code.
      Session s = Run(ExecUrl(id, {"no-such-program"}, false, true, true), std::nullopt, true, true,
                      protocol);
      ASSERT_FALSE(s.exit.ok());
      EXPECT_THAT(s.exit.status().message(), HasSubstr("executable file not found"));
    }
  }
  // ExecSync shares the path: same streams and code.
  cri::ExecSyncResponse sync;
  IT_EXPECT_GRPC_OK(Exec(id, {"sh", "-c", "echo so; echo se >&2; exit 4"}, 10, &sync));
  EXPECT_EQ(sync.stdout(), "so\n");
  EXPECT_EQ(sync.stderr(), "se\n");
  EXPECT_EQ(sync.exit_code(), 4);
  ExpectNoSessionLeft();
  IT_EXPECT_GRPC_OK(RemovePod(*pod_ids_.begin()));
  ExpectNoLeaks("after exec sessions");
}

// ---------------------------------------------------------------------------------------------
// A terminal: one output stream, resizes seen by the process (`stty size`).

TEST_F(StreamIT, TtyExecSeesResizes) {
  const std::string id = RunContainer("tty", {"sleep", "3600"});
  for (StreamProtocol protocol : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    SCOPED_TRACE(protocol == StreamProtocol::kSpdy ? "SPDY" : "WebSocket");
    const std::string url =
        ExecUrl(id, {"sh", "-c", "while read x; do [ \"$x\" = q ] && exit 6; stty size; done"},
                true, true, false, /*tty=*/true);
    stream::ChunkInput in;
    StringOutput out;
    SizeQueue sizes;
    RemoteCommandIo io;
    io.stdin = &in;
    io.stdout = &out;
    io.tty = true;
    io.sizes = &sizes;
    ClientOptions opts;
    opts.protocol = protocol;
    StatusOr<int> exit = UnknownError("running");
    std::thread session([&] { exit = stream::RunRemoteCommand(url, io, opts); });
    // Each size in turn: resize, then press enter until the process prints it.
    for (TerminalSize size : {TerminalSize{80, 24}, TerminalSize{132, 43}, TerminalSize{7, 3}}) {
      sizes.Push(size);
      const std::string want = StrCat(size.height, " ", size.width, "\r\n");
      EXPECT_TRUE(Eventually(
          [&] {
            (void)in.Push("\n");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return out.str().find(want) != std::string::npos;
          },
          std::chrono::seconds(15)))
          << "stty size never said " << want << "; output so far: " << out.str();
    }
    ASSERT_TRUE(in.Push("q\n").ok());
    in.Finish();
    session.join();
    sizes.Close();
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 6);
  }
  ExpectNoSessionLeft();
}

// ---------------------------------------------------------------------------------------------
// Attach: to a running container (stdin reaches it, stdin_once ends it), to one that exits by
// itself, a second stdin session refused, a terminal.

TEST_F(StreamIT, AttachToRunningAndExitingContainers) {
  {
    // stdin_once: the end of the session's stdin is the container's EOF; the container's exit
    // ends the session with its code.
    const std::string id =
        RunContainer("attach-cat", {"sh", "-c", "cat; echo bye >&2; exit 9"}, true, true);
    Session s = Run(AttachUrl(id, true, true, true), std::string("hello attach\n"), true, true);
    ASSERT_TRUE(s.exit.ok()) << s.exit.status();
    EXPECT_EQ(*s.exit, 9);
    EXPECT_EQ(s.out, "hello attach\n");
    EXPECT_EQ(s.err, "bye\n");
    cri::ContainerStatus st = WaitForState(id, cri::CONTAINER_EXITED, std::chrono::seconds(10));
    EXPECT_EQ(st.exit_code(), 9);
    // Attach to an exited container is refused at the RPC.
    std::string url;
    cri::AttachRequest req;
    req.set_container_id(id);
    req.set_stdout(true);
    EXPECT_EQ(AttachRpc(req, &url).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    // Output only, from a container that exits while attached: its output since the attach,
    // then the end with its exit code.
    const std::string id = RunContainer(
        "attach-exit",
        {"sh", "-c", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done; exit 5"});
    Session s = Run(AttachUrl(id, false, true, true), std::nullopt, true, true);
    ASSERT_TRUE(s.exit.ok()) << s.exit.status();
    EXPECT_EQ(*s.exit, 5);
    EXPECT_THAT(s.out, HasSubstr("tick 6\n"));
    EXPECT_EQ(WaitForState(id, cri::CONTAINER_EXITED, std::chrono::seconds(10)).exit_code(), 5);
  }
  {
    // Two attachers: both see the output, only the first may write.
    const std::string id = RunContainer("attach-two", {"cat"}, /*stdin=*/true);
    stream::ChunkInput in;
    StringOutput out;
    RemoteCommandIo io;
    io.stdin = &in;
    io.stdout = &out;
    StatusOr<int> first_exit = UnknownError("running");
    const std::string first_url = AttachUrl(id, true, true, false);
    std::thread first([&] { first_exit = stream::RunRemoteCommand(first_url, io, {}); });
    ASSERT_TRUE(Eventually([&] {
      (void)in.Push("ping\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return out.str().find("ping\n") != std::string::npos;
    }));
    Session second = Run(AttachUrl(id, true, true, false), std::string("intruder\n"), true, false);
    ASSERT_FALSE(second.exit.ok());
    EXPECT_THAT(second.exit.status().message(), HasSubstr("in use by another attach session"));
    // A reader only is fine while the writer is attached; it ends with the container.
    StringOutput watch;
    RemoteCommandIo watch_io;
    watch_io.stdout = &watch;
    StatusOr<int> watch_exit = UnknownError("running");
    const std::string watch_url = AttachUrl(id, false, true, false);
    std::thread watcher([&] { watch_exit = stream::RunRemoteCommand(watch_url, watch_io, {}); });
    EXPECT_TRUE(Eventually([&] {
      (void)in.Push("seen by both\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return watch.str().find("seen by both\n") != std::string::npos;
    }));
    EXPECT_THAT(out.str(), Not(HasSubstr("intruder")));
    IT_EXPECT_GRPC_OK(StopCtr(id, 0));
    in.Finish();
    first.join();
    watcher.join();
    EXPECT_TRUE(first_exit.ok()) << first_exit.status();
    EXPECT_TRUE(watch_exit.ok()) << watch_exit.status();
    if (watch_exit.ok()) {
      EXPECT_EQ(*watch_exit, 137);
    }
  }
  {
    // A container with a terminal: input echoed by the terminal, resize seen by the shell.
    const std::string id = RunContainer("attach-tty", {"sh"}, true, false, /*tty=*/true);
    const std::string url = AttachUrl(id, true, true, false, /*tty=*/true);
    stream::ChunkInput in;
    StringOutput out;
    SizeQueue sizes;
    RemoteCommandIo io;
    io.stdin = &in;
    io.stdout = &out;
    io.tty = true;
    io.sizes = &sizes;
    StatusOr<int> exit = UnknownError("running");
    std::thread session([&] { exit = stream::RunRemoteCommand(url, io, {}); });
    sizes.Push({101, 31});
    EXPECT_TRUE(Eventually(
        [&] {
          (void)in.Push("stty size\n");
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          return out.str().find("31 101\r\n") != std::string::npos;
        },
        std::chrono::seconds(15)))
        << out.str();
    ASSERT_TRUE(in.Push("exit 4\n").ok());
    in.Finish();
    session.join();
    sizes.Close();
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 4);
  }
  ExpectNoSessionLeft();
  for (const std::string& pod : std::vector<std::string>(pod_ids_.begin(), pod_ids_.end())) {
    IT_EXPECT_GRPC_OK(RemovePod(pod));
  }
  ExpectNoLeaks("after attach sessions");
}

// ---------------------------------------------------------------------------------------------
// Port-forward to busybox httpd in a pod with its own network namespace: 1 MiB and 100 MiB,
// checksummed, over SPDY and WebSocket; an unknown port; the pod's loopback, not the host's.

TEST_F(StreamIT, PortForwardToAPodTransfersIntact) {
  BridgeNetwork net;
  ASSERT_NO_FATAL_FAILURE(net = SetUpBridgeNetwork("bridge"));
  cri::PodSandboxConfig pod = PodConfig("web", cri::POD, cri::CONTAINER);
  std::string pod_id, id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  // httpd on the pod's loopback only: reachable by port-forward, not from the host.
  cri::ContainerConfig cfg = CtrConfig(
      "httpd", {"sh", "-c",
                "mkdir -p /www && head -c 1048576 /dev/urandom > /www/1m && "
                "head -c 104857600 /dev/urandom > /www/100m && echo ready > /www/ready && "
                "exec httpd -f -p 127.0.0.1:8080 -h /www"});
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cfg, &id));
  IT_ASSERT_GRPC_OK(StartCtr(id));
  std::map<std::string, std::string> sums;
  ASSERT_TRUE(Eventually(
      [&] {
        cri::ExecSyncResponse r;
        return Exec(id, {"cat", "/www/ready"}, 10, &r).ok() && r.stdout() == "ready\n";
      },
      std::chrono::seconds(60)));
  for (const char* f : {"1m", "100m"}) {
    std::string out = ExecOut(id, {"sha256sum", StrCat("/www/", f)});
    sums[f] = out.substr(0, out.find(' '));
    ASSERT_EQ(sums[f].size(), 64u) << out;
  }

  for (StreamProtocol protocol : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    SCOPED_TRACE(protocol == StreamProtocol::kSpdy ? "SPDY" : "WebSocket");
    // A URL is good for one connection to the streaming server: SPDY carries every forwarded
    // connection over it, WebSocket needs one per forwarded connection, so one URL per file.
    for (const char* f : {"1m", "100m"}) {
      std::string url;
      IT_ASSERT_GRPC_OK(PortForwardRpc(pod_id, {8080}, &url));
      ClientOptions opts;
      opts.protocol = protocol;
      auto forwarder = stream::PortForwarder::Start(url, {{"127.0.0.1", 0, 8080}}, opts);
      ASSERT_TRUE(forwarder.ok()) << forwarder.status();
      const uint16_t local = (*forwarder)->local_ports().at(0);
      auto start = Clock::now();
      StatusOr<std::string> body = HttpGet(local, StrCat("/", f));
      ASSERT_TRUE(body.ok()) << f << ": " << body.status();
      double s = std::chrono::duration<double>(Clock::now() - start).count();
      std::cout << "[ report   ] port-forward " << f << ": " << body->size() << " bytes in " << s
                << " s\n";
      EXPECT_EQ(body->size(), std::string_view(f) == "1m" ? 1048576u : 104857600u);
      EXPECT_EQ(Hex(*body), sums[f]) << f << " arrived changed";
      (*forwarder)->Stop();
    }
  }
  {
    // Nothing listens on 8081 in the pod: the connection is closed, the error reported.
    std::string url;
    IT_ASSERT_GRPC_OK(PortForwardRpc(pod_id, {8081}, &url));
    std::vector<std::string> log;
    std::mutex log_mu;
    auto forwarder = stream::PortForwarder::Start(url, {{"127.0.0.1", 0, 8081}}, {},
                                                  [&](const std::string& line) {
                                                    std::lock_guard l(log_mu);
                                                    log.push_back(line);
                                                  });
    ASSERT_TRUE(forwarder.ok()) << forwarder.status();
    StatusOr<std::string> body =
        HttpGet((*forwarder)->local_ports().at(0), "/1m", std::chrono::seconds(2));
    EXPECT_FALSE(body.ok());
    EXPECT_TRUE(Eventually([&] {
      std::lock_guard l(log_mu);
      for (const auto& line : log) {
        if (line.find("nothing listens on port 8081") != std::string::npos) return true;
      }
      return false;
    })) << "the forwarder was not told why";
  }
  ExpectNoSessionLeft();
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after port-forward");
}

// Host-network pods forward to the host's loopback.
TEST_F(StreamIT, PortForwardToAHostNetworkPod) {
  // A free port on the host's loopback for httpd.
  UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  probe.Reset();
  const std::string id = RunContainer(
      "hostweb", {"sh", "-c",
                  StrCat("mkdir -p /www && echo host-network-page > /www/index.html && exec httpd "
                         "-f -p 127.0.0.1:",
                         port, " -h /www")});
  (void)id;
  const std::string pod_id = *pod_ids_.begin();
  std::string url;
  IT_ASSERT_GRPC_OK(PortForwardRpc(pod_id, {port}, &url));
  auto forwarder =
      stream::PortForwarder::Start(url, {{"127.0.0.1", 0, static_cast<uint16_t>(port)}}, {});
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  StatusOr<std::string> body = HttpGet((*forwarder)->local_ports().at(0), "/index.html");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "host-network-page\n");
  (*forwarder)->Stop();
  IT_EXPECT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after host-network port-forward");
}

// ---------------------------------------------------------------------------------------------
// Bad requests at the RPCs; tokens that must not work at the streaming server.

TEST_F(StreamIT, BadRequestsAndTokensAreRefused) {
  const std::string id = RunContainer("tokens", {"sleep", "3600"});
  const std::string pod_id = *pod_ids_.begin();
  auto exec_code = [&](const std::function<void(cri::ExecRequest&)>& edit) {
    cri::ExecRequest req;
    req.set_container_id(id);
    req.add_cmd("true");
    req.set_stdout(true);
    edit(req);
    std::string url;
    return ExecRpc(req, &url).error_code();
  };
  EXPECT_EQ(exec_code([](auto& r) { r.set_container_id(""); }), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(exec_code([](auto& r) { r.set_container_id(std::string(64, 'a')); }), grpc::NOT_FOUND);
  EXPECT_EQ(exec_code([](auto& r) { r.clear_cmd(); }), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(exec_code([](auto& r) { r.set_stdout(false); }), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(exec_code([](auto& r) {
              r.set_tty(true);
              r.set_stderr(true);
            }),
            grpc::INVALID_ARGUMENT);
  {
    cri::AttachRequest req;
    req.set_container_id(id);
    req.set_stdin(true);  // created without stdin
    std::string url;
    EXPECT_EQ(AttachRpc(req, &url).error_code(), grpc::FAILED_PRECONDITION);
    req.set_stdin(false);
    EXPECT_EQ(AttachRpc(req, &url).error_code(), grpc::INVALID_ARGUMENT);  // no stream
    req.set_container_id("nope");
    req.set_stdout(true);
    EXPECT_EQ(AttachRpc(req, &url).error_code(), grpc::NOT_FOUND);
  }
  {
    std::string url;
    EXPECT_EQ(PortForwardRpc("", {80}, &url).error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_EQ(PortForwardRpc(pod_id, {0}, &url).error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_EQ(PortForwardRpc(pod_id, {65536}, &url).error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_EQ(PortForwardRpc(pod_id, {-1}, &url).error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_EQ(PortForwardRpc(std::string(64, 'b'), {80}, &url).error_code(), grpc::NOT_FOUND);
    IT_EXPECT_GRPC_OK(PortForwardRpc(pod_id, {}, &url));
    // A stopped pod, and an exited container, have nothing to stream from.
    const std::string stopped = RunContainer("stopped", {"sleep", "3600"});
    std::string stopped_pod;
    for (const cri::PodSandbox& p : ListPods({})) {
      if (p.metadata().name() == "stopped") stopped_pod = p.id();
    }
    IT_ASSERT_GRPC_OK(StopPod(stopped_pod));
    EXPECT_EQ(PortForwardRpc(stopped_pod, {80}, &url).error_code(), grpc::FAILED_PRECONDITION);
    cri::ExecRequest req;
    req.set_container_id(stopped);
    req.add_cmd("true");
    req.set_stdout(true);
    EXPECT_EQ(ExecRpc(req, &url).error_code(), grpc::FAILED_PRECONDITION);
    IT_EXPECT_GRPC_OK(RemovePod(stopped_pod));
  }

  // A token is good once: the second use is 404 and the command does not run again.
  const std::string url =
      ExecUrl(id, {"sh", "-c", "echo run >> /tmp/runs; wc -l < /tmp/runs"}, false, true, false);
  Session first = Run(url, std::nullopt, true, false);
  ASSERT_TRUE(first.exit.ok()) << first.exit.status();
  EXPECT_EQ(Trim(first.out), "1");
  Session again = Run(url, std::nullopt, true, false);
  EXPECT_EQ(again.exit.status().code(), StatusCode::kNotFound) << again.exit.status();
  // A made-up token, and one of the right form for another kind of request.
  const std::string base = url.substr(0, url.find("/exec/"));
  for (const std::string& bad :
       {StrCat(base, "/exec/AAAAAAAAAAAAAAAAAAAAAA"), StrCat(base, "/exec/"),
        StrCat(base, "/attach/", url.substr(url.rfind('/') + 1)), StrCat(base, "/nothing")}) {
    Session s = Run(bad, std::nullopt, true, false);
    EXPECT_EQ(s.exit.status().code(), StatusCode::kNotFound) << bad << ": " << s.exit.status();
  }
  EXPECT_EQ(Trim(ExecOut(id, {"wc", "-l", "/tmp/runs"})), "1 /tmp/runs");
  {
    // Status (verbose) names the streaming server the URLs point to.
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::StatusRequest req;
    req.set_verbose(true);
    cri::StatusResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->runtime().Status(&ctx, req, &resp));
    auto config = nlohmann::json::parse(resp.info().at("config"), nullptr, false);
    ASSERT_FALSE(config.is_discarded());
    EXPECT_EQ(config.value("streamUrl", ""), base);
    EXPECT_EQ(config.value("streamAddress", ""), "127.0.0.1:0");
  }

  // A token expires after a minute unused.
  const std::string stale = ExecUrl(id, {"sh", "-c", "echo run >> /tmp/runs"}, false, true, false);
  std::this_thread::sleep_for(std::chrono::seconds(61));
  Session late = Run(stale, std::nullopt, true, false);
  EXPECT_EQ(late.exit.status().code(), StatusCode::kNotFound) << late.exit.status();
  EXPECT_EQ(Trim(ExecOut(id, {"wc", "-l", "/tmp/runs"})), "1 /tmp/runs");
  ExpectNoSessionLeft();
}

// ---------------------------------------------------------------------------------------------
// A client that disconnects in the middle of a session: the exec'd process is killed, nothing
// of the session stays (no runtime, no subreaper, no temporary file).

TEST_F(StreamIT, ClientDisconnectKillsTheExecdProcess) {
  const std::string id = RunContainer("vanish", {"sleep", "3600"});
  for (bool tty : {false, true}) {
    SCOPED_TRACE(tty ? "tty" : "pipes");
    const std::string marker = tty ? "1007" : "1009";
    const std::string url = ExecUrl(id, {"sh", "-c", StrCat("echo started; exec sleep ", marker)},
                                    true, true, !tty, tty);
    auto conn = stream::UpgradeSpdy(url, {std::string(stream::remotecommand::kV4)}, {});
    ASSERT_TRUE(conn.ok()) << conn.status();
    stream::SpdySession::Options so;
    so.server = false;
    auto session = std::make_unique<stream::SpdySession>(*conn->transport, so);
    session->Start([](std::shared_ptr<stream::SpdyStream>) {}, [](const Status&) {});
    auto open = [&](std::string_view type) {
      stream::spdy::HeaderBlock h;
      h.emplace_back(std::string(stream::remotecommand::kStreamTypeHeader), std::string(type));
      return session->OpenStream(std::move(h), std::chrono::seconds(10));
    };
    auto err = open(stream::remotecommand::kStreamTypeError);
    ASSERT_TRUE(err.ok()) << err.status();
    auto in = open(stream::remotecommand::kStreamTypeStdin);
    ASSERT_TRUE(in.ok()) << in.status();
    auto out = open(stream::remotecommand::kStreamTypeStdout);
    ASSERT_TRUE(out.ok()) << out.status();
    // Every stream the request names must be there before the server starts the command.
    std::shared_ptr<stream::SpdyStream> extra;
    auto e = open(tty ? stream::remotecommand::kStreamTypeResize
                      : stream::remotecommand::kStreamTypeStderr);
    ASSERT_TRUE(e.ok()) << e.status();
    extra = *e;
    std::string got;
    char buf[256];
    while (got.find("started") == std::string::npos) {
      auto n = (*out)->Read(buf);
      ASSERT_TRUE(n.ok()) << n.status();
      ASSERT_GT(*n, 0u) << "stdout ended before the process started";
      got.append(buf, *n);
    }
    const std::string cmdline = StrCat("sleep ", marker);
    // "started" is written by the shell before it execs sleep: wait for the exec (bounded).
    for (int i = 0; i < 100 && PidsRunning(cmdline).empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(PidsRunning(cmdline).size(), 1u);
    // Gone: no goodbye, the TCP connection just closes.
    session->Cancel();
    session.reset();
    conn->transport.reset();
    EXPECT_TRUE(Eventually([&] { return PidsRunning(cmdline).empty(); }))
        << "the exec'd process outlived its client";
    ExpectNoSessionLeft();
  }
  // The container itself is untouched.
  EXPECT_EQ(CtrStatusOf(id)->state(), cri::CONTAINER_RUNNING);
  IT_EXPECT_GRPC_OK(RemovePod(*pod_ids_.begin()));
  ExpectNoLeaks("after a vanished client");
}

// ---------------------------------------------------------------------------------------------
// Many sessions at once.

TEST_F(StreamIT, FiftyConcurrentExecSessions) {
  const std::string id = RunContainer("many", {"sleep", "3600"});
  // One session first, so that whatever berthd keeps open for sessions is counted.
  Session warm = Run(ExecUrl(id, {"true"}, false, true, true), std::nullopt, true, true);
  ASSERT_TRUE(warm.exit.ok()) << warm.exit.status();
  const fs::path fd_dir = StrCat("/proc/", berthd_->pid(), "/fd");
  const size_t fds_before = DirEntries(fd_dir).size();
  constexpr int kSessions = 50;
  std::vector<std::string> urls;
  for (int i = 0; i < kSessions; ++i) {
    urls.push_back(ExecUrl(id, {"sh", "-c", StrCat("read x; echo $x-", i, "; exit ", i % 7)}, true,
                           true, true));
  }
  std::vector<Session> results(kSessions);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      results[i] = Run(urls[i], StrCat("hello\n"), true, true,
                       i % 2 ? StreamProtocol::kWebSocket : StreamProtocol::kSpdy);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kSessions; ++i) {
    SCOPED_TRACE(StrCat("session ", i));
    ASSERT_TRUE(results[i].exit.ok()) << results[i].exit.status();
    EXPECT_EQ(*results[i].exit, i % 7);
    EXPECT_EQ(results[i].out, StrCat("hello-", i, "\n"));
    EXPECT_EQ(results[i].err, "");
  }
  ExpectNoSessionLeft();
  // No descriptor of the sessions stays open in berthd (pipes, terminals, sockets, pidfds).
  EXPECT_TRUE(Eventually([&] { return DirEntries(fd_dir).size() <= fds_before; }))
      << "berthd had " << fds_before << " descriptors before the sessions, "
      << DirEntries(fd_dir).size() << " after";
  IT_EXPECT_GRPC_OK(RemovePod(*pod_ids_.begin()));
  ExpectNoLeaks("after 50 sessions");
}

// ---------------------------------------------------------------------------------------------
// berthctl, as a person uses it: exec -i (stdin, streams, exit code), attach -i, port-forward.

TEST_F(StreamIT, BerthctlExecAttachAndPortForward) {
  const std::string endpoint = StrCat("unix://", berthd_->socket_path().string());
  auto berthctl = [&](std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {BERTHCTL_PATH, "-r", endpoint, "-i", endpoint};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions opts;
    opts.stdin_data = input;
    opts.timeout = std::chrono::seconds(60);
    StatusOr<ProcessResult> r = RunProcess(argv, opts);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ProcessResult{};
  };
  const std::string id = RunContainer("ctl-exec", {"sleep", "3600"});
  {
    ProcessResult r = berthctl({"exec", id, "echo", "hi"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "hi\n");
  }
  {
    ProcessResult r =
        berthctl({"exec", "-i", id, "sh", "-c", "cat; echo e >&2; exit 3"}, "piped\nlines\n");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "piped\nlines\n");
    EXPECT_THAT(r.err, HasSubstr("e\n"));
    EXPECT_THAT(r.err, HasSubstr("command terminated with exit code 3"));
  }
  {
    // stdin_once: the end of berthctl's stdin ends the container.
    const std::string cat = RunContainer("ctl-attach", {"sh", "-c", "cat; exit 2"}, true, true);
    ProcessResult r = berthctl({"attach", "-i", cat}, "to the container\n");
    EXPECT_EQ(r.out, "to the container\n") << r.err;
    EXPECT_EQ(WaitForState(cat, cri::CONTAINER_EXITED, std::chrono::seconds(10)).exit_code(), 2);
  }
  {
    // A host-network pod with httpd on a free loopback port; berthctl forwards a free local port.
    UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    probe.Reset();
    RunContainer("ctl-web", {"sh", "-c",
                             StrCat("mkdir -p /www && echo via-berthctl > /www/index.html && exec "
                                    "httpd -f -p 127.0.0.1:",
                                    port, " -h /www")});
    std::string web_pod;
    for (const cri::PodSandbox& p : ListPods({})) {
      if (p.metadata().name() == "ctl-web") web_pod = p.id();
    }
    ASSERT_FALSE(web_pod.empty());
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd out_r(fds[0]), out_w(fds[1]);
    SpawnOptions opts;
    opts.stdout_fd = out_w.get();
    auto pf = SpawnProcess(
        {BERTHCTL_PATH, "-r", endpoint, "-i", endpoint, "port-forward", web_pod, StrCat(":", port)},
        opts);
    ASSERT_TRUE(pf.ok()) << pf.status();
    out_w.Reset();
    // "Forwarding from 127.0.0.1:<local> -> <port>"
    std::string said;
    char buf[256];
    while (said.find('\n') == std::string::npos) {
      pollfd pfd{out_r.get(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "berthctl port-forward said nothing: " << said;
      ssize_t n = ::read(out_r.get(), buf, sizeof buf);
      ASSERT_GT(n, 0) << said;
      said.append(buf, static_cast<size_t>(n));
    }
    std::smatch m;
    ASSERT_TRUE(std::regex_search(said, m, std::regex(R"(Forwarding from 127\.0\.0\.1:(\d+) -> )")))
        << said;
    StatusOr<std::string> body =
        HttpGet(static_cast<uint16_t>(std::stoi(m[1].str())), "/index.html");
    ASSERT_TRUE(body.ok()) << body.status();
    EXPECT_EQ(*body, "via-berthctl\n");
    pf->Signal(SIGINT);  // ctrl-c
    auto code = pf->Wait(Clock::now() + std::chrono::seconds(10));
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0);
  }
  ExpectNoSessionLeft();
  for (const std::string& pod : std::vector<std::string>(pod_ids_.begin(), pod_ids_.end())) {
    IT_EXPECT_GRPC_OK(RemovePod(pod));
  }
  ExpectNoLeaks("after berthctl sessions");
}

// ---------------------------------------------------------------------------------------------
// TLS: with a certificate and key the streaming server speaks only HTTPS.

class StreamTlsIT : public StreamIT {
 protected:
  void BeforeDaemonStart() override {
    cert_ = berthd_->dir() / "stream.crt";
    key_ = berthd_->dir() / "stream.key";
    StatusOr<ProcessResult> r =
        RunProcess({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key_.string(), "-out", cert_.string()});
    ASSERT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.status().ToString());
  }
  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> args = DefaultArgs();
    args.insert(args.end(),
                {"--stream-tls-cert", cert_.string(), "--stream-tls-key", key_.string()});
    return args;
  }
  fs::path cert_, key_;
};

TEST_F(StreamTlsIT, ExecOverHttps) {
  const std::string id = RunContainer("tls", {"sleep", "3600"});
  for (StreamProtocol protocol : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    const std::string url = ExecUrl(id, {"sh", "-c", "echo secret; exit 2"}, false, true, true);
    ASSERT_TRUE(url.starts_with("https://127.0.0.1:")) << url;
    Session s = Run(url, std::nullopt, true, true, protocol);
    ASSERT_TRUE(s.exit.ok()) << s.exit.status();
    EXPECT_EQ(*s.exit, 2);
    EXPECT_EQ(s.out, "secret\n");
  }
  // Plain HTTP to the HTTPS port gets no session, and starts no command.
  std::string url = ExecUrl(id, {"sh", "-c", "echo ran >> /tmp/tls-runs"}, false, true, false);
  url.replace(0, 5, "http");
  Session plain = Run(url, std::nullopt, true, false);
  EXPECT_FALSE(plain.exit.ok());
  cri::ExecSyncResponse r;
  IT_EXPECT_GRPC_OK(Exec(id, {"cat", "/tmp/tls-runs"}, 10, &r));
  EXPECT_NE(r.exit_code(), 0) << "the command ran: " << r.stdout();
  // Only one of the two is a configuration error, named as such.
  StatusOr<ProcessResult> half =
      RunProcess({BERTHD_PATH, "--stream-tls-cert", cert_.string(), "config"});
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->exit_code, 2);
  EXPECT_THAT(half->err, HasSubstr("stream.tls_key_file"));
  ExpectNoSessionLeft();
  IT_EXPECT_GRPC_OK(RemovePod(*pod_ids_.begin()));
  ExpectNoLeaks("after TLS sessions");
}

}  // namespace
}  // namespace berth::testing
