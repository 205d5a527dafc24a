// The streaming server end to end over real loopback TCP, driven by the
// client library (and raw frames where a test needs to misbehave), with a
// scripted fake Runtime.
#include "stream/stream_server.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <thread>

#include "common/digest.h"
#include "common/fs.h"
#include "stream/client.h"
#include "stream/remotecommand.h"
#include "stream/spdy_session.h"
#include "stream/websocket.h"
#include "stream/ws_conn.h"
#include "stream_fake_runtime.h"

namespace berth::stream {
namespace {

namespace rc = remotecommand;
using testing::EchoServer;
using testing::FakeBehavior;
using testing::FakeRuntime;
using Out = ProcessStreams::Output;
using Src = ProcessStreams::Source;
using namespace std::chrono_literals;

size_t CountDir(const char* path) {
  size_t n = 0;
  DIR* d = opendir(path);
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}
size_t ThreadCount() { return CountDir("/proc/self/task"); }
size_t FdCount() { return CountDir("/proc/self/fd"); }

// Polls `pred` for up to 20 s (the condition is about the server's threads
// reaching a state, not about how fast they do).
bool Eventually(const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

ExecRequest Exec(bool in, bool out, bool err, bool tty = false) {
  ExecRequest r;
  r.container_id = "c1";
  r.cmd = {"sh", "-c", "true"};
  r.stdin = in;
  r.stdout = out;
  r.stderr = err;
  r.tty = tty;
  return r;
}

struct ProtocolCase {
  StreamProtocol transport;
  std::string protocol;
  bool carries_exit_code;
};

std::vector<ProtocolCase> AllProtocols() {
  return {{StreamProtocol::kSpdy, "v4.channel.k8s.io", true},
          {StreamProtocol::kSpdy, "v3.channel.k8s.io", false},
          {StreamProtocol::kSpdy, "v2.channel.k8s.io", false},
          {StreamProtocol::kSpdy, "channel.k8s.io", false},
          {StreamProtocol::kWebSocket, "v5.channel.k8s.io", true},
          {StreamProtocol::kWebSocket, "v4.channel.k8s.io", true},
          {StreamProtocol::kWebSocket, "v4.base64.channel.k8s.io", true},
          {StreamProtocol::kWebSocket, "channel.k8s.io", false},
          {StreamProtocol::kWebSocket, "base64.channel.k8s.io", false}};
}

ClientOptions For(const ProtocolCase& p) {
  ClientOptions o;
  o.protocol = p.transport;
  o.protocols = {p.protocol};
  return o;
}

std::string Name(const ProtocolCase& p) {
  return StrCat(p.transport == StreamProtocol::kSpdy ? "spdy " : "websocket ", p.protocol);
}

class SizeQueue final : public TerminalSizeQueue {
 public:
  explicit SizeQueue(std::vector<TerminalSize> sizes) : sizes_(std::move(sizes)) {}
  std::optional<TerminalSize> Next() override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || next_ < sizes_.size(); });
    if (next_ < sizes_.size()) return sizes_[next_++];
    return std::nullopt;
  }
  void Close() override {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TerminalSize> sizes_;
  size_t next_ = 0;
  bool closed_ = false;
};

class StreamServerTest : public ::testing::Test {
 protected:
  void StartServer(StreamServerOptions options = {}) {
    auto s = StreamServer::Start(std::move(options), &runtime_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void SetUp() override { StartServer(); }
  void TearDown() override {
    if (server_) server_->Stop();
    EXPECT_EQ(runtime_.live_processes.load(), 0) << "a process outlived its session";
  }
  std::string ExecUrl(const ExecRequest& r) {
    auto url = server_->ExecUrl(r);
    EXPECT_TRUE(url.ok()) << url.status();
    return url.ok() ? *url : "";
  }

  FakeRuntime runtime_;
  std::unique_ptr<StreamServer> server_;
};

TEST_F(StreamServerTest, ExecSeparatesStdoutAndStderrAndReportsExitCodes) {
  for (int exit_code : {0, 3}) {
    runtime_.on_exec = [exit_code](const ExecRequest&) {
      FakeBehavior b;
      b.outputs = {Out{Src::kStdout, "out-1 "}, Out{Src::kStderr, "err-1"},
                   Out{Src::kStdout, "out-2"}};
      b.exit_code = exit_code;
      return StatusOr<FakeBehavior>(b);
    };
    for (const ProtocolCase& p : AllProtocols()) {
      SCOPED_TRACE(StrCat(Name(p), " exit ", exit_code));
      StringOutput out, err;
      RemoteCommandIo io;
      io.stdout = &out;
      io.stderr = &err;
      StatusOr<int> result = RunRemoteCommand(ExecUrl(Exec(false, true, true)), io, For(p));
      EXPECT_EQ(out.str(), "out-1 out-2");
      EXPECT_EQ(err.str(), "err-1");
      EXPECT_TRUE(out.closed());
      if (exit_code == 0) {
        ASSERT_TRUE(result.ok()) << result.status();
        EXPECT_EQ(*result, 0);
      } else if (p.carries_exit_code) {
        ASSERT_TRUE(result.ok()) << result.status();
        EXPECT_EQ(*result, 3);
      } else {
        // Older protocols carry the failure as text.
        ASSERT_FALSE(result.ok());
        EXPECT_NE(
            result.status().message().find("command terminated with non-zero exit code: "
                                           "error executing command [sh -c true], exit code 3"),
            std::string::npos)
            << result.status();
      }
    }
  }
}

TEST_F(StreamServerTest, StdinHalfCloseReachesTheProcess) {
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.echo_stdin = true;
    return StatusOr<FakeBehavior>(b);
  };
  std::string input(300 * 1024, '\0');
  std::mt19937 rng(1);  // NOLINT(bugprone-random-generator-seed): the same bytes every run
  for (char& c : input) c = static_cast<char>(rng());
  for (const ProtocolCase& p :
       {ProtocolCase{StreamProtocol::kSpdy, "v4.channel.k8s.io", true},
        ProtocolCase{StreamProtocol::kSpdy, "v2.channel.k8s.io", false},
        ProtocolCase{StreamProtocol::kWebSocket, "v5.channel.k8s.io", true},
        ProtocolCase{StreamProtocol::kWebSocket, "v4.base64.channel.k8s.io", true}}) {
    SCOPED_TRACE(Name(p));
    bool can_close = p.transport == StreamProtocol::kSpdy || p.protocol == rc::kV5;
    ChunkInput in;
    ASSERT_TRUE(in.Push(input).ok());
    if (can_close) in.Finish();
    StringOutput out;
    RemoteCommandIo io;
    io.stdin = &in;
    io.stdout = &out;
    std::future<StatusOr<int>> result = std::async(std::launch::async, [&] {
      return RunRemoteCommand(ExecUrl(Exec(true, true, false)), io, For(p));
    });
    if (!can_close) {
      // Without a close signal the process only ends when cancelled: wait for
      // the echo, then drop the connection by ending the server's session.
      ASSERT_TRUE(Eventually([&] { return out.str().size() == input.size(); }));
      server_->Stop();
      EXPECT_FALSE(result.get().ok());
      StartServer();
      continue;
    }
    StatusOr<int> r = result.get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, 0);
    EXPECT_TRUE(out.str() == input) << out.str().size() << " bytes of " << input.size();
  }
}

TEST_F(StreamServerTest, TerminalResizeReachesTheProcess) {
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.report_resize = true;
    return StatusOr<FakeBehavior>(b);
  };
  for (const ProtocolCase& p :
       {ProtocolCase{StreamProtocol::kSpdy, "v4.channel.k8s.io", true},
        ProtocolCase{StreamProtocol::kSpdy, "v3.channel.k8s.io", false},
        ProtocolCase{StreamProtocol::kWebSocket, "v5.channel.k8s.io", true},
        ProtocolCase{StreamProtocol::kWebSocket, "v4.base64.channel.k8s.io", true}}) {
    SCOPED_TRACE(Name(p));
    SizeQueue sizes({{132, 43}});
    ChunkInput in;
    StringOutput out;
    RemoteCommandIo io;
    io.stdin = &in;
    io.stdout = &out;
    io.tty = true;
    io.sizes = &sizes;
    StatusOr<int> r = RunRemoteCommand(ExecUrl(Exec(true, true, false, true)), io, For(p));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(out.str(), "132x43");
  }
}

TEST_F(StreamServerTest, AttachReportsTheContainersExit) {
  for (std::optional<int> exit :
       {std::optional<int>(), std::optional<int>(0), std::optional<int>(5)}) {
    runtime_.on_attach = [exit](const AttachRequest& req) {
      FakeBehavior b;
      b.outputs = {Out{Src::kStdout, "attached to " + req.container_id}};
      b.attach_exit = exit;
      return StatusOr<FakeBehavior>(b);
    };
    AttachRequest a;
    a.container_id = "c9";
    a.stdout = true;
    auto url = server_->AttachUrl(a);
    ASSERT_TRUE(url.ok());
    EXPECT_NE(url->find("/attach/"), std::string::npos);
    StringOutput out;
    RemoteCommandIo io;
    io.stdout = &out;
    StatusOr<int> r = RunRemoteCommand(*url, io, ClientOptions{});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, exit.value_or(0));
    EXPECT_EQ(out.str(), "attached to c9");
  }
  EXPECT_EQ(runtime_.attach_calls.load(), 3);
}

TEST_F(StreamServerTest, RuntimeErrorsGoToTheErrorStream) {
  runtime_.on_exec = [](const ExecRequest& r) {
    return StatusOr<FakeBehavior>(
        NotFoundError(StrCat("container ", r.container_id, " not found")));
  };
  for (const ProtocolCase& p : AllProtocols()) {
    SCOPED_TRACE(Name(p));
    StringOutput out;
    RemoteCommandIo io;
    io.stdout = &out;
    StatusOr<int> r = RunRemoteCommand(ExecUrl(Exec(false, true, false)), io, For(p));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("Internal error occurred: container c1 not found"),
              std::string::npos)
        << r.status();
  }
}

TEST_F(StreamServerTest, ListensOnIpv6Loopback) {
  server_->Stop();
  StreamServerOptions v6;
  v6.address = "[::1]:0";
  StartServer(v6);
  EXPECT_TRUE(server_->base_url().starts_with("http://[::1]:")) << server_->base_url();
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.outputs = {Out{Src::kStdout, "over v6"}};
    return StatusOr<FakeBehavior>(b);
  };
  StringOutput out;
  RemoteCommandIo io;
  io.stdout = &out;
  StatusOr<int> r = RunRemoteCommand(ExecUrl(Exec(false, true, false)), io, ClientOptions{});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(out.str(), "over v6");
  StreamServerOptions bad;
  bad.address = "::1:0";  // IPv6 needs brackets
  EXPECT_EQ(StreamServer::Start(bad, &runtime_).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StreamServerTest, BadReusedAndExpiredTokensAre404AndNeverReachTheRuntime) {
  ClientOptions o;
  std::string base = server_->base_url();
  for (const std::string& url :
       {base + "/exec/0123456789abcdef0123456789abcdef", base + "/exec/", base + "/attach/x",
        base + "/portforward/x", base + "/", base + "/exec/a/b"}) {
    SCOPED_TRACE(url);
    auto up = UpgradeSpdy(url, {"v4.channel.k8s.io"}, o);
    EXPECT_EQ(up.status().code(), StatusCode::kNotFound) << up.status();
    auto ws = UpgradeWebSocket(url, {"v4.channel.k8s.io"}, o);
    EXPECT_EQ(ws.status().code(), StatusCode::kNotFound) << ws.status();
  }
  // A token of one kind does not open another.
  std::string exec_url = ExecUrl(Exec(false, true, false));
  std::string token = exec_url.substr(exec_url.rfind('/') + 1);
  EXPECT_EQ(UpgradeSpdy(base + "/attach/" + token, {"v4.channel.k8s.io"}, o).status().code(),
            StatusCode::kNotFound);
  // ... and is spent by the attempt.
  EXPECT_EQ(UpgradeSpdy(exec_url, {"v4.channel.k8s.io"}, o).status().code(), StatusCode::kNotFound);
  // Reuse after a successful session.
  std::string url = ExecUrl(Exec(false, true, false));
  StringOutput out;
  RemoteCommandIo io;
  io.stdout = &out;
  ASSERT_TRUE(RunRemoteCommand(url, io, o).ok());
  EXPECT_EQ(runtime_.exec_calls.load(), 1);
  EXPECT_EQ(RunRemoteCommand(url, io, o).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(runtime_.exec_calls.load(), 1);

  // Expiry.
  server_->Stop();
  StreamServerOptions short_ttl;
  short_ttl.token_ttl = 1s;
  StartServer(short_ttl);
  url = ExecUrl(Exec(false, true, false));
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(RunRemoteCommand(url, io, o).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(runtime_.exec_calls.load(), 1);
  EXPECT_EQ(runtime_.attach_calls.load(), 0);
  EXPECT_EQ(runtime_.portforward_calls.load(), 0);
}

TEST_F(StreamServerTest, UrlRequestsAreValidatedAndTokensBounded) {
  EXPECT_EQ(server_->ExecUrl(Exec(false, false, false)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->ExecUrl(Exec(true, true, true, true)).status().code(),
            StatusCode::kInvalidArgument);
  ExecRequest no_cmd = Exec(false, true, false);
  no_cmd.cmd.clear();
  EXPECT_EQ(server_->ExecUrl(no_cmd).status().code(), StatusCode::kInvalidArgument);
  PortForwardRequest pf;
  pf.pod_sandbox_id = "p";
  pf.ports = {0};
  EXPECT_EQ(server_->PortForwardUrl(pf).status().code(), StatusCode::kInvalidArgument);

  server_->Stop();
  StreamServerOptions few;
  few.max_tokens = 3;
  StartServer(few);
  std::set<std::string> urls;
  for (int i = 0; i < 3; ++i) urls.insert(ExecUrl(Exec(false, true, false)));
  EXPECT_EQ(urls.size(), 3u);
  EXPECT_EQ(server_->ExecUrl(Exec(false, true, false)).status().code(),
            StatusCode::kResourceExhausted);
  // Using a token frees its slot.
  StringOutput out;
  RemoteCommandIo io;
  io.stdout = &out;
  ASSERT_TRUE(RunRemoteCommand(*urls.begin(), io, ClientOptions{}).ok());
  EXPECT_TRUE(server_->ExecUrl(Exec(false, true, false)).ok());

  StreamServerOptions half_tls;
  half_tls.tls_cert_file = "/nonexistent.crt";
  EXPECT_EQ(StreamServer::Start(half_tls, &runtime_).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StreamServerTest, ProtocolNegotiationFailuresAreAnsweredLikeTheKubelet) {
  ClientOptions o;
  // SPDY without any protocol: 400.
  auto none = UpgradeSpdy(ExecUrl(Exec(false, true, false)), {}, o);
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument) << none.status();
  EXPECT_NE(none.status().message().find("X-Stream-Protocol-Version is required"),
            std::string::npos);
  // Only unknown protocols: 403 listing what the server accepts.
  auto unknown = UpgradeSpdy(ExecUrl(Exec(false, true, false)), {"v9.channel.k8s.io"}, o);
  EXPECT_EQ(unknown.status().code(), StatusCode::kPermissionDenied) << unknown.status();
  EXPECT_NE(unknown.status().message().find("v4.channel.k8s.io"), std::string::npos);
  auto ws = UpgradeWebSocket(ExecUrl(Exec(false, true, false)), {"v9.channel.k8s.io"}, o);
  EXPECT_EQ(ws.status().code(), StatusCode::kPermissionDenied) << ws.status();
  // Port-forward speaks only portforward.k8s.io over SPDY.
  PortForwardRequest pf;
  pf.pod_sandbox_id = "p";
  auto pf_url = server_->PortForwardUrl(pf);
  ASSERT_TRUE(pf_url.ok());
  EXPECT_EQ(UpgradeSpdy(*pf_url, {"v4.channel.k8s.io"}, o).status().code(),
            StatusCode::kPermissionDenied);
  // WebSocket port-forward needs ports.
  pf_url = server_->PortForwardUrl(pf);
  EXPECT_EQ(UpgradeWebSocket(*pf_url, {"v4.channel.k8s.io"}, o).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(runtime_.exec_calls.load(), 0);
  EXPECT_EQ(runtime_.portforward_calls.load(), 0);
}

TEST_F(StreamServerTest, MalformedRequestsGetHttpErrors) {
  auto raw = [&](const std::string& bytes) {
    auto u = ParseUrl(server_->base_url());
    auto fd = ConnectTcp(u->host, u->port, Clock::now() + 5s);
    EXPECT_TRUE(fd.ok());
    auto t = MakeTcpTransport(std::move(*fd), "server");
    EXPECT_TRUE(t->Write(bytes).ok());
    std::string got;
    char buf[4096];
    while (true) {
      auto n = t->Read(buf, Clock::now() + 10s);
      if (!n.ok() || *n == 0) break;
      got.append(buf, *n);
    }
    return got;
  };
  EXPECT_TRUE(raw("garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(raw("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n")
                  .starts_with("HTTP/1.1 431 "));
  EXPECT_TRUE(raw("DELETE /exec/abc HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
  // A WebSocket handshake without a valid key.
  std::string url = ExecUrl(Exec(false, true, false));
  std::string path = url.substr(url.find("/exec/"));
  EXPECT_TRUE(raw("GET " + path +
                  " HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n")
                  .starts_with("HTTP/1.1 400 "));
  EXPECT_EQ(runtime_.exec_calls.load(), 0);
}

TEST_F(StreamServerTest, UnmaskedWebSocketFramesCloseTheConnection) {
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.echo_stdin = true;
    return StatusOr<FakeBehavior>(b);
  };
  auto up =
      UpgradeWebSocket(ExecUrl(Exec(true, true, false)), {"v5.channel.k8s.io"}, ClientOptions{});
  ASSERT_TRUE(up.ok()) << up.status();
  // A client frame without a mask: a protocol error (RFC 6455 section 5.1).
  ASSERT_TRUE(up->transport
                  ->Write(ws::EncodeFrame(ws::Opcode::kBinary, std::string("\0hi", 3), true, false))
                  .ok());
  std::string got;
  char buf[4096];
  while (true) {
    auto n = up->transport->Read(buf, Clock::now() + 10s);
    if (!n.ok() || *n == 0) break;
    got.append(buf, *n);
  }
  // The server's close frame (opcode 8) with status 1002 is in there.
  size_t close = got.find('\x88');
  ASSERT_NE(close, std::string::npos);
  EXPECT_EQ(got.substr(close + 2, 2), std::string("\x03\xea", 2));
  EXPECT_TRUE(Eventually([&] { return runtime_.live_processes.load() == 0; }));
}

// Sends `size` random bytes through a forwarded local port and checks what
// comes back from the echo server, byte for byte (by SHA-256).
void EchoThrough(uint16_t local_port, size_t size) {
  auto fd = ConnectTcp("127.0.0.1", local_port, Clock::now() + 5s);
  ASSERT_TRUE(fd.ok()) << fd.status();
  std::string data(size, '\0');
  std::mt19937_64 rng(size);
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  int raw = fd->get();
  std::thread writer([&] {
    for (size_t off = 0; off < data.size();) {
      ssize_t n = ::send(raw, data.data() + off, std::min<size_t>(64 * 1024, data.size() - off),
                         MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  });
  Sha256 got;
  size_t received = 0;
  std::string buf(64 * 1024, '\0');
  while (received < size) {
    ssize_t n = ::read(raw, buf.data(), buf.size());
    if (n <= 0) break;
    got.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    received += static_cast<size_t>(n);
  }
  writer.join();
  EXPECT_EQ(received, size);
  EXPECT_EQ(got.Finish(), Sha256::Of(data));
}

TEST_F(StreamServerTest, PortForwardEchoesTenMebibytesOverSpdyAndWebSocket) {
  EchoServer echo;
  runtime_.ports[80] = echo.port();
  for (StreamProtocol proto : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    SCOPED_TRACE(proto == StreamProtocol::kSpdy ? "spdy" : "websocket");
    PortForwardRequest req;
    req.pod_sandbox_id = "pod1";
    auto url = server_->PortForwardUrl(req);
    ASSERT_TRUE(url.ok());
    ClientOptions o;
    o.protocol = proto;
    std::mutex log_mu;
    std::vector<std::string> log;
    auto pf = PortForwarder::Start(*url, {{"127.0.0.1", 0, 80}, {"127.0.0.1", 0, 81}}, o,
                                   [&](const std::string& line) {
                                     std::lock_guard lock(log_mu);
                                     log.push_back(line);
                                   });
    ASSERT_TRUE(pf.ok()) << pf.status();
    std::vector<uint16_t> local = (*pf)->local_ports();
    ASSERT_EQ(local.size(), 2u);
    if (proto == StreamProtocol::kSpdy) {
      EchoThrough(local[0], 10 << 20);
      // More forwarded connections, two at once, over the same session.
      std::thread second([&] { EchoThrough(local[0], 1 << 20); });
      EchoThrough(local[0], 1 << 20);
      second.join();
    } else {
      // A WebSocket port-forward carries one connection per port.
      std::thread first([&] { EchoThrough(local[0], 10 << 20); });
      first.join();
    }
    // Port 81 has nothing listening: the error comes back on the error stream.
    auto fd = ConnectTcp("127.0.0.1", local[1], Clock::now() + 5s);
    ASSERT_TRUE(fd.ok());
    char c;
    EXPECT_LE(::read(fd->get(), &c, 1), 0);
    EXPECT_TRUE(Eventually([&] {
      std::lock_guard lock(log_mu);
      for (const std::string& l : log) {
        if (l.find("error forwarding port 81 to pod pod1: nothing listens on port 81") !=
            std::string::npos) {
          return true;
        }
      }
      return false;
    }));
    (*pf)->Stop();
  }
}

TEST_F(StreamServerTest, PortForwardOnlyToTheRequestedPorts) {
  EchoServer echo;
  runtime_.ports[80] = echo.port();
  runtime_.ports[81] = echo.port();
  PortForwardRequest req;
  req.pod_sandbox_id = "pod1";
  req.ports = {80};
  auto url = server_->PortForwardUrl(req);
  ASSERT_TRUE(url.ok());
  std::vector<std::string> log;
  std::mutex mu;
  auto pf = PortForwarder::Start(*url, {{"127.0.0.1", 0, 81}}, ClientOptions{},
                                 [&](const std::string& l) {
                                   std::lock_guard lock(mu);
                                   log.push_back(l);
                                 });
  ASSERT_TRUE(pf.ok());
  auto fd = ConnectTcp("127.0.0.1", (*pf)->local_ports()[0], Clock::now() + 5s);
  ASSERT_TRUE(fd.ok());
  char c;
  EXPECT_LE(::read(fd->get(), &c, 1), 0);
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return !log.empty() && log.back().find("not among the ports") != std::string::npos;
  }));
  EXPECT_EQ(runtime_.portforward_calls.load(), 0);
  // Over WebSocket the refusal comes before the upgrade.
  auto ws_url = server_->PortForwardUrl(req);
  EXPECT_EQ(UpgradeWebSocket(*ws_url + "?port=81", {"v4.channel.k8s.io"}, ClientOptions{})
                .status()
                .code(),
            StatusCode::kPermissionDenied);
}

TEST_F(StreamServerTest, ClientThatDisconnectsMidStreamCancelsTheProcess) {
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.outputs = {Out{Src::kStdout, "started"}};
    b.block_until_cancel = true;
    return StatusOr<FakeBehavior>(b);
  };
  for (StreamProtocol proto : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    int cancels = runtime_.cancels.load();
    ClientOptions o;
    o.protocol = proto;
    std::string url = ExecUrl(Exec(true, true, false));
    if (proto == StreamProtocol::kSpdy) {
      auto up = UpgradeSpdy(url, {"v4.channel.k8s.io"}, o);
      ASSERT_TRUE(up.ok()) << up.status();
      SpdySession::Options so;
      so.server = false;
      SpdySession session(*up->transport, so);
      session.Start([](std::shared_ptr<SpdyStream>) {}, [](const Status&) {});
      for (const char* type : {"error", "stdin", "stdout"}) {
        ASSERT_TRUE(session.OpenStream({{"streamtype", type}}, 5000ms).ok());
      }
      ASSERT_TRUE(Eventually([&] { return runtime_.exec_calls.load() > 0; }));
      session.Cancel();  // the connection drops, no goodbye
    } else {
      auto up = UpgradeWebSocket(url, {"v5.channel.k8s.io"}, o);
      ASSERT_TRUE(up.ok()) << up.status();
      ASSERT_TRUE(Eventually([&] { return runtime_.live_processes.load() > 0; }));
      up->transport->Cancel();
    }
    EXPECT_TRUE(Eventually([&] { return runtime_.cancels.load() == cancels + 1; }));
    EXPECT_TRUE(Eventually([&] { return runtime_.live_processes.load() == 0; }));
    EXPECT_TRUE(Eventually([&] { return server_->active_connections() == 0; }));
  }
}

TEST_F(StreamServerTest, SlowReaderThrottlesTheProcessOutput) {
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.infinite_output = true;
    return StatusOr<FakeBehavior>(b);
  };
  auto up = UpgradeSpdy(ExecUrl(Exec(false, true, false)), {"v4.channel.k8s.io"}, ClientOptions{});
  ASSERT_TRUE(up.ok());
  SpdySession::Options so;
  so.server = false;
  so.stream_window = 128 * 1024;
  SpdySession session(*up->transport, so);
  session.Start([](std::shared_ptr<SpdyStream>) {}, [](const Status&) {});
  ASSERT_TRUE(session.OpenStream({{"streamtype", "error"}}, 5000ms).ok());
  auto out = session.OpenStream({{"streamtype", "stdout"}}, 5000ms);
  ASSERT_TRUE(out.ok());
  // Nobody reads: the server may send one window (128 KiB) and hold what one
  // more ReadOutput returned; the process is then not read any more.
  ASSERT_TRUE(Eventually([&] { return runtime_.bytes_produced.load() >= 128 * 1024; }));
  std::this_thread::sleep_for(500ms);
  int64_t stalled = runtime_.bytes_produced.load();
  EXPECT_LE(stalled, 256 * 1024);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(runtime_.bytes_produced.load(), stalled);
  // Reading resumes production.
  std::string buf(64 * 1024, '\0');
  size_t read = 0;
  while (read < 4u << 20) {
    auto n = (*out)->Read(buf);
    ASSERT_TRUE(n.ok() && *n > 0);
    read += *n;
  }
  EXPECT_GE(runtime_.bytes_produced.load(), 4 << 20);
  session.Cancel();
  EXPECT_TRUE(Eventually([&] { return runtime_.live_processes.load() == 0; }));
}

// Clients that ignore flow control (Kubernetes' SPDY library does; WebSocket
// has none) are throttled by TCP: the server stops reading the process once
// its queue and the socket buffers are full.
TEST_F(StreamServerTest, ClientsWithoutFlowControlAreThrottledByTcp) {
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.infinite_output = true;
    return StatusOr<FakeBehavior>(b);
  };
  for (StreamProtocol proto : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    SCOPED_TRACE(proto == StreamProtocol::kSpdy ? "spdy" : "websocket");
    runtime_.bytes_produced = 0;
    std::string url = ExecUrl(Exec(false, true, false));
    std::unique_ptr<Transport> t;
    if (proto == StreamProtocol::kSpdy) {
      auto up = UpgradeSpdy(url, {"v4.channel.k8s.io"}, ClientOptions{});
      ASSERT_TRUE(up.ok()) << up.status();
      t = std::move(up->transport);
      // Streams opened by hand: no SETTINGS, no WINDOW_UPDATE, ever.
      // (Two statements: header blocks must be compressed in wire order.)
      spdy::HeaderCompressor hc;
      std::string frames = spdy::EncodeSynStream({1, 0, 0, 0, {{"streamtype", "error"}}}, hc);
      frames += spdy::EncodeSynStream({3, 0, 0, 0, {{"streamtype", "stdout"}}}, hc);
      ASSERT_TRUE(t->Write(frames).ok());
    } else {
      auto up = UpgradeWebSocket(url, {"v4.channel.k8s.io"}, ClientOptions{});
      ASSERT_TRUE(up.ok()) << up.status();
      t = std::move(up->transport);
    }
    ASSERT_TRUE(Eventually([&] { return runtime_.bytes_produced.load() > 0; }));
    // Production stops: two looks 300 ms apart see the same count.
    int64_t last = -1;
    ASSERT_TRUE(Eventually([&] {
      int64_t now = runtime_.bytes_produced.load();
      std::this_thread::sleep_for(300ms);
      bool stalled = now == runtime_.bytes_produced.load() && now == last;
      last = now;
      return stalled;
    }));
    RecordProperty(proto == StreamProtocol::kSpdy ? "spdy_stalled_at" : "ws_stalled_at",
                   std::to_string(last));
    // Bounded by the server's queue and the kernel's socket buffers.
    EXPECT_LE(last, 32 << 20);
    t->Cancel();
    EXPECT_TRUE(Eventually([&] { return runtime_.live_processes.load() == 0; }));
  }
}

TEST_F(StreamServerTest, FiftyConcurrentSessions) {
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.echo_stdin = true;
    b.outputs = {Out{Src::kStderr, "hello from stderr"}};
    return StatusOr<FakeBehavior>(b);
  };
  constexpr int kSessions = 50;
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int i = 0; i < kSessions; ++i) {
    clients.emplace_back([&, i] {
      ClientOptions o;
      o.protocol = i % 2 ? StreamProtocol::kWebSocket : StreamProtocol::kSpdy;
      std::string input(64 * 1024 + i, static_cast<char>('a' + i % 26));
      ChunkInput in;
      (void)in.Push(input);
      in.Finish();
      StringOutput out, err;
      RemoteCommandIo io;
      io.stdin = &in;
      io.stdout = &out;
      io.stderr = &err;
      auto url = server_->ExecUrl(Exec(true, true, true));
      if (!url.ok()) return;
      StatusOr<int> r = RunRemoteCommand(*url, io, o);
      if (r.ok() && *r == 0 && out.str() == input && err.str() == "hello from stderr") ++good;
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(good.load(), kSessions);
  EXPECT_EQ(runtime_.exec_calls.load(), kSessions);
}

TEST_F(StreamServerTest, IdleSessionsAreClosed) {
  server_->Stop();
  StreamServerOptions idle;
  idle.idle_timeout = 1s;
  StartServer(idle);
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.block_until_cancel = true;
    return StatusOr<FakeBehavior>(b);
  };
  StringOutput out;
  RemoteCommandIo io;
  io.stdout = &out;
  StatusOr<int> r = RunRemoteCommand(ExecUrl(Exec(false, true, false)), io, ClientOptions{});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(Eventually([&] { return runtime_.cancels.load() == 1; }));
  EXPECT_TRUE(Eventually([&] { return runtime_.live_processes.load() == 0; }));
}

TEST_F(StreamServerTest, StopEndsOpenSessionsAndLeavesNoThreadOrFd) {
  server_->Stop();
  server_.reset();
  EchoServer echo;
  runtime_.ports[80] = echo.port();
  size_t threads_before = ThreadCount();
  size_t fds_before = FdCount();
  StartServer();
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.outputs = {Out{Src::kStdout, "running"}};
    b.block_until_cancel = true;
    return StatusOr<FakeBehavior>(b);
  };
  std::vector<std::future<StatusOr<int>>> sessions;
  std::vector<std::unique_ptr<StringOutput>> outs;
  std::vector<std::unique_ptr<ChunkInput>> ins;
  for (int i = 0; i < 6; ++i) {
    outs.push_back(std::make_unique<StringOutput>());
    ins.push_back(std::make_unique<ChunkInput>());
    std::string url = ExecUrl(Exec(true, true, false));
    StringOutput* out = outs.back().get();
    ChunkInput* in = ins.back().get();
    sessions.push_back(std::async(std::launch::async, [url, out, in, i] {
      RemoteCommandIo io;
      io.stdin = in;
      io.stdout = out;
      ClientOptions o;
      o.protocol = i % 2 ? StreamProtocol::kWebSocket : StreamProtocol::kSpdy;
      return RunRemoteCommand(url, io, o);
    }));
  }
  PortForwardRequest pfr;
  pfr.pod_sandbox_id = "p";
  auto pf =
      PortForwarder::Start(*server_->PortForwardUrl(pfr), {{"127.0.0.1", 0, 80}}, ClientOptions{});
  ASSERT_TRUE(pf.ok());
  auto conn = ConnectTcp("127.0.0.1", (*pf)->local_ports()[0], Clock::now() + 5s);
  ASSERT_TRUE(conn.ok());
  ASSERT_EQ(::send(conn->get(), "ping", 4, 0), 4);
  char buf[4];
  ASSERT_EQ(::recv(conn->get(), buf, 4, MSG_WAITALL), 4);
  ASSERT_TRUE(Eventually([&] { return runtime_.live_processes.load() == 6; }));

  server_->Stop();
  for (auto& s : sessions) EXPECT_FALSE(s.get().ok());
  EXPECT_FALSE((*pf)->Wait().ok());  // the forwarder lost its connection
  EXPECT_EQ(runtime_.cancels.load(), 6);
  EXPECT_EQ(runtime_.live_processes.load(), 0);
  EXPECT_EQ(server_->active_connections(), 0u);
  server_.reset();
  pf->reset();
  conn->Reset();
  EXPECT_TRUE(Eventually([&] { return ThreadCount() == threads_before; }))
      << ThreadCount() << " threads, " << threads_before << " before";
  // The echo server keeps its (shut down) connection's fd until it is destroyed.
  EXPECT_TRUE(Eventually([&] { return FdCount() == fds_before + 1; }))
      << FdCount() << " fds, " << fds_before << " before";
}

// --- SPDY sessions directly ---------------------------------------------------

// A client and a server session over a socket pair.
struct SessionPair {
  SessionPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_t = MakeTcpTransport(UniqueFd(fds[0]), "client");
    server_t = MakeTcpTransport(UniqueFd(fds[1]), "server");
    SpdySession::Options co;
    co.server = false;
    client = std::make_unique<SpdySession>(*client_t, co);
    SpdySession::Options so;
    so.server = true;
    server = std::make_unique<SpdySession>(*server_t, so);
    server->Start(
        [this](std::shared_ptr<SpdyStream> s) {
          std::lock_guard lock(mu);
          accepted.push_back(std::move(s));
          cv.notify_all();
        },
        [](const Status&) {});
    client->Start([](std::shared_ptr<SpdyStream>) {}, [](const Status&) {});
  }
  std::shared_ptr<SpdyStream> Accept() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return !accepted.empty(); });
    if (accepted.empty()) return nullptr;
    auto s = accepted.front();
    accepted.erase(accepted.begin());
    return s;
  }
  std::unique_ptr<Transport> client_t, server_t;
  std::unique_ptr<SpdySession> client, server;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::shared_ptr<SpdyStream>> accepted;
};

TEST(SpdySessionTest, DataSentBeforeAResetIsStillRead) {
  // moby/spdystream servers (containerd's) write the exit status and then
  // reset the streams the client has not closed.
  SessionPair p;
  auto opened = p.client->OpenStream({{"streamtype", "error"}}, 5000ms);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::shared_ptr<SpdyStream> peer = p.Accept();
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(peer->header("streamtype").value_or(""), "error");
  ASSERT_TRUE(peer->Write("status text").ok());
  peer->Reset();
  std::string got;
  char buf[64];
  Status end;
  while (true) {
    auto n = (*opened)->Read(buf);
    if (!n.ok()) {
      end = n.status();
      break;
    }
    ASSERT_GT(*n, 0u);
    got.append(buf, *n);
  }
  EXPECT_EQ(got, "status text");
  EXPECT_EQ(end.code(), StatusCode::kAborted) << end;
}

TEST(SpdySessionTest, APeerThatIgnoresWindowsFillsAtMostTheSessionBuffer) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  auto raw = MakeTcpTransport(UniqueFd(fds[0]), "raw peer");
  auto server_t = MakeTcpTransport(UniqueFd(fds[1]), "server");
  SpdySession::Options so;
  so.server = true;
  SpdySession server(*server_t, so);
  std::mutex mu;
  std::vector<std::shared_ptr<SpdyStream>> streams;  // held, never read
  server.Start(
      [&](std::shared_ptr<SpdyStream> s) {
        std::lock_guard lock(mu);
        streams.push_back(std::move(s));
      },
      [](const Status&) {});
  // Like spdystream: no SETTINGS, no WINDOW_UPDATE, 8 streams of 1 MiB each.
  std::thread peer([&] {
    spdy::HeaderCompressor hc;
    for (uint32_t id = 1; id <= 15; id += 2) {
      if (!raw->Write(spdy::EncodeSynStream({id, 0, 0, 0, {{"n", "x"}}}, hc)).ok()) return;
    }
    std::string chunk(32 * 1024, 'd');
    for (int round = 0; round < 32; ++round) {
      for (uint32_t id = 1; id <= 15; id += 2) {
        if (!raw->Write(spdy::EncodeData(id, chunk, false)).ok()) return;
      }
    }
  });
  size_t last = SIZE_MAX;
  ASSERT_TRUE(Eventually([&] {
    size_t now = server.buffered_bytes();
    std::this_thread::sleep_for(200ms);
    bool stalled = now > 0 && now == server.buffered_bytes() && now == last;
    last = now;
    return stalled;
  }));
  EXPECT_LE(last, so.session_window + so.limits.max_data_piece);
  EXPECT_GE(last, so.session_window);
  raw->Cancel();
  server.Cancel();
  peer.join();
}

TEST(SpdySessionTest, HalfCloseBothWaysAndWindowsAcrossManyStreams) {
  SessionPair p;
  constexpr int kStreams = 8;
  std::vector<std::shared_ptr<SpdyStream>> mine, theirs;
  for (int i = 0; i < kStreams; ++i) {
    auto s = p.client->OpenStream({{"n", std::to_string(i)}}, 5000ms);
    ASSERT_TRUE(s.ok()) << s.status();
    mine.push_back(*s);
    theirs.push_back(p.Accept());
    ASSERT_NE(theirs.back(), nullptr);
    EXPECT_EQ(theirs.back()->header("n").value_or(""), std::to_string(i));
  }
  // 1 MiB each way on every stream at once: far more than the windows, so
  // only WINDOW_UPDATEs let it through.
  const std::string payload(1 << 20, 'p');
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < kStreams; ++i) {
    for (const auto& ends : {std::pair(mine[i], theirs[i]), std::pair(theirs[i], mine[i])}) {
      // Plain variables: clang 14 cannot capture structured bindings.
      auto from = ends.first;
      auto to = ends.second;
      threads.emplace_back([&, from] {
        if (from->Write(payload).ok() && from->CloseWrite().ok()) ++good;
      });
      threads.emplace_back([&, to] {
        std::string got;
        char buf[16384];
        while (true) {
          auto n = to->Read(buf);
          if (!n.ok() || *n == 0) break;
          got.append(buf, *n);
        }
        if (got == payload) ++good;
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 4 * kStreams);
}

// --- TLS --------------------------------------------------------------------

// Writes a self-signed certificate for 127.0.0.1 and its key into `dir`.
void MakeCertificate(const std::filesystem::path& dir) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("berth-test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
  X509_add_ext(cert, san, -1);
  X509_EXTENSION_free(san);
  X509_sign(cert, key, EVP_sha256());
  FILE* f = fopen((dir / "tls.crt").c_str(), "w");
  PEM_write_X509(f, cert);
  fclose(f);
  f = fopen((dir / "tls.key").c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
}

TEST_F(StreamServerTest, ServesHttpsWithTheConfiguredCertificate) {
  auto dir = std::filesystem::temp_directory_path() / ("berth-stream-tls-" + RandomHex(4));
  std::filesystem::create_directories(dir);
  MakeCertificate(dir);
  server_->Stop();
  StreamServerOptions tls;
  tls.tls_cert_file = dir / "tls.crt";
  tls.tls_key_file = dir / "tls.key";
  StartServer(tls);
  EXPECT_TRUE(server_->base_url().starts_with("https://127.0.0.1:"));
  runtime_.on_exec = [](const ExecRequest&) {
    FakeBehavior b;
    b.echo_stdin = true;
    b.exit_code = 7;
    return StatusOr<FakeBehavior>(b);
  };
  for (StreamProtocol proto : {StreamProtocol::kSpdy, StreamProtocol::kWebSocket}) {
    for (bool verify : {false, true}) {
      ChunkInput in;
      std::string input(1 << 20, 'q');
      ASSERT_TRUE(in.Push(input).ok());
      in.Finish();
      StringOutput out;
      RemoteCommandIo io;
      io.stdin = &in;
      io.stdout = &out;
      ClientOptions o;
      o.protocol = proto;
      if (verify) o.ca_file = dir / "tls.crt";
      StatusOr<int> r = RunRemoteCommand(ExecUrl(Exec(true, true, false)), io, o);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(*r, 7);
      EXPECT_TRUE(out.str() == input) << out.str().size() << " bytes of " << input.size();
    }
  }
  // Plain HTTP to the TLS port fails, and a server key that does not match is refused.
  std::string url = ExecUrl(Exec(false, true, false));
  url.replace(0, 5, "http");
  EXPECT_FALSE(UpgradeSpdy(url, {"v4.channel.k8s.io"}, ClientOptions{}).ok());
  std::filesystem::create_directories(dir / "other");
  MakeCertificate(dir / "other");
  StreamServerOptions mismatch;
  mismatch.tls_cert_file = dir / "tls.crt";
  mismatch.tls_key_file = dir / "other" / "tls.key";
  EXPECT_EQ(StreamServer::Start(mismatch, &runtime_).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace berth::stream
