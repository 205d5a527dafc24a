#include "stream/client.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <list>

#include "stream/channel_io.h"
#include "stream/remotecommand.h"
#include "stream/spdy_session.h"
#include "stream/websocket.h"
#include "stream/ws_conn.h"

namespace berth::stream {
namespace {

namespace rc = remotecommand;

constexpr size_t kMaxErrorStream = 1 << 20;
constexpr size_t kMaxRefusalBody = 64 * 1024;

std::string HostHeader(const Url& u) {
  std::string host = u.host.find(':') != std::string::npos ? StrCat("[", u.host, "]") : u.host;
  bool default_port =
      (u.scheme == "http" && u.port == 80) || (u.scheme == "https" && u.port == 443);
  return default_port ? host : StrCat(host, ":", u.port);
}

StatusOr<std::unique_ptr<Transport>> Dial(const Url& u, const ClientOptions& options,
                                          Clock::time_point deadline) {
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectTcp(u.host, u.port, deadline));
  std::unique_ptr<Transport> t;
  if (u.scheme == "https") {
    ASSIGN_OR_RETURN(std::shared_ptr<TlsContext> ctx, TlsContext::ForClient(options.ca_file));
    ASSIGN_OR_RETURN(t, ctx->WrapClient(std::move(fd), u.host));
    RETURN_IF_ERROR(t->Handshake(deadline));
  } else {
    t = MakeTcpTransport(std::move(fd), StrCat(u.host, ":", u.port));
  }
  return t;
}

// The body of a refusal, as far as it came.
std::string ReadBody(Transport& t, const HttpResponseHead& head, Clock::time_point deadline) {
  size_t want = kMaxRefusalBody;
  if (auto cl = head.headers.Get("Content-Length")) {
    size_t n = 0;
    auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec == std::errc()) want = std::min(n, kMaxRefusalBody);
  }
  std::string body;
  char buf[4096];
  while (body.size() < want) {
    StatusOr<size_t> n =
        t.Read(std::span<char>(buf, std::min(sizeof(buf), want - body.size())), deadline);
    if (!n.ok() || *n == 0) break;
    body.append(buf, *n);
  }
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

Status Refusal(int status, std::string_view url, std::string_view body) {
  std::string message =
      StrCat("streaming server refused ", url, ": HTTP ", status, body.empty() ? "" : ": ", body);
  switch (status) {
    case 400:
    case 405:
    case 431:
      return InvalidArgumentError(message);
    case 403:
      return PermissionDeniedError(message);
    case 404:
      return NotFoundError(message);
    default:
      return UnavailableError(message);
  }
}

struct Upgrade {
  std::unique_ptr<Transport> transport;
  HttpResponseHead head;
};

StatusOr<Upgrade> SendUpgrade(const std::string& url, const std::string& method,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              const ClientOptions& options) {
  ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  auto deadline = Clock::now() + options.connect_timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<Transport> t, Dial(u, options, deadline));
  std::string request = StrCat(method, " ", u.target, " HTTP/1.1\r\nHost: ", HostHeader(u),
                               "\r\nUser-Agent: berth-stream-client\r\n");
  for (const auto& [n, v] : headers) request += StrCat(n, ": ", v, "\r\n");
  if (method == "POST") request += "Content-Length: 0\r\n";
  request += "\r\n";
  RETURN_IF_ERROR(t->Write(request));
  HttpLimits limits;
  StatusOr<std::string> raw = ReadHttpHead(*t, limits, deadline);
  if (!raw.ok()) return Annotate(raw.status(), StrCat("upgrading ", url));
  StatusOr<HttpResponseHead> head = ParseResponseHead(*raw, limits);
  if (!head.ok()) return Annotate(head.status(), StrCat("upgrading ", url));
  if (head->status != 101) {
    return Refusal(head->status, url, ReadBody(*t, *head, deadline));
  }
  return Upgrade{std::move(t), std::move(*head)};
}

std::optional<rc::Protocol> FindProtocol(const std::vector<rc::Protocol>& list,
                                         std::string_view name) {
  for (const rc::Protocol& p : list) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

// Copies `from` to `to` until `from` ends; then closes `to`. If `to` fails,
// the rest of `from` is read and dropped so the connection does not stall.
void Copy(ByteSource& from, ByteSink& to) {
  std::string buf(32 * 1024, '\0');
  bool sink_ok = true;
  while (true) {
    StatusOr<size_t> n = from.Read(buf);
    if (!n.ok() || *n == 0) break;
    if (sink_ok) sink_ok = to.Write(std::string_view(buf.data(), *n)).ok();
  }
  (void)to.CloseWrite();
}

StatusOr<std::string> ReadAll(ByteSource& from, size_t limit) {
  std::string out;
  char buf[4096];
  while (true) {
    StatusOr<size_t> n = from.Read(buf);
    // A reset after the data is the end of it: servers on moby/spdystream
    // (containerd's) reset the streams when they close the session.
    if (!n.ok() && n.status().code() == StatusCode::kAborted && !out.empty()) return out;
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    if (out.size() < limit) out.append(buf, std::min(*n, limit - out.size()));
  }
}

StatusOr<int> RunSpdyCommand(const std::string& url, RemoteCommandIo& io,
                             const ClientOptions& options) {
  std::vector<std::string> offered = options.protocols;
  if (offered.empty()) {
    for (const rc::Protocol& p : rc::SpdyRemoteCommandProtocols()) offered.emplace_back(p.name);
  }
  ASSIGN_OR_RETURN(UpgradedConnection conn, UpgradeSpdy(url, offered, options));
  std::optional<rc::Protocol> protocol =
      conn.protocol.empty() ? FindProtocol(rc::SpdyRemoteCommandProtocols(), rc::kV1)
                            : FindProtocol(rc::SpdyRemoteCommandProtocols(), conn.protocol);
  if (!protocol) {
    return DataLossError(StrCat("server chose unknown protocol \"", conn.protocol, "\""));
  }
  SpdySession::Options so;
  so.server = false;
  so.stream_window = options.stream_window;
  SpdySession session(*conn.transport, so);
  session.Start([](std::shared_ptr<SpdyStream> s) { s->Reset(spdy::RstStatus::kRefusedStream); },
                [](const Status&) {});
  auto open = [&](std::string_view type) {
    return session.OpenStream({{std::string(rc::kStreamTypeHeader), std::string(type)}},
                              options.stream_timeout);
  };
  ASSIGN_OR_RETURN(std::shared_ptr<SpdyStream> error, open(rc::kStreamTypeError));
  std::shared_ptr<SpdyStream> in, out, err, resize;
  if (io.stdin != nullptr) {
    ASSIGN_OR_RETURN(in, open(rc::kStreamTypeStdin));
  }
  if (io.stdout != nullptr) {
    ASSIGN_OR_RETURN(out, open(rc::kStreamTypeStdout));
  }
  if (io.stderr != nullptr && !io.tty) {
    ASSIGN_OR_RETURN(err, open(rc::kStreamTypeStderr));
  }
  if (io.tty && protocol->resize()) {
    ASSIGN_OR_RETURN(resize, open(rc::kStreamTypeResize));
  }

  StatusOr<std::string> error_text = std::string();
  std::thread error_thread([&] { error_text = ReadAll(*error, kMaxErrorStream); });
  std::thread out_thread, err_thread, in_thread, resize_thread;
  if (out) out_thread = std::thread([&] { Copy(*out, *io.stdout); });
  if (err) err_thread = std::thread([&] { Copy(*err, *io.stderr); });
  if (in) in_thread = std::thread([&] { Copy(*io.stdin, *in); });
  if (resize && io.sizes != nullptr) {
    resize_thread = std::thread([&] {
      while (std::optional<TerminalSize> size = io.sizes->Next()) {
        if (!resize->Write(rc::EncodeTerminalSize(*size)).ok()) break;
      }
    });
  }
  if (out_thread.joinable()) out_thread.join();
  if (err_thread.joinable()) err_thread.join();
  error_thread.join();
  if (io.stdin != nullptr) io.stdin->Interrupt();
  if (io.sizes != nullptr) io.sizes->Close();
  session.Close(std::chrono::milliseconds(1000));
  if (in_thread.joinable()) in_thread.join();
  if (resize_thread.joinable()) resize_thread.join();
  if (!error_text.ok()) {
    // v1 servers (the kubelet's) reset the error stream: no error then.
    if (protocol->version == 1) return 0;
    return Annotate(error_text.status(), "reading the error stream");
  }
  return rc::DecodeErrorStream(protocol->error_format(), *error_text);
}

StatusOr<int> RunWebSocketCommand(const std::string& url, RemoteCommandIo& io,
                                  const ClientOptions& options) {
  std::vector<std::string> offered = options.protocols;
  if (offered.empty()) offered = {std::string(rc::kV5), std::string(rc::kV4)};
  ASSIGN_OR_RETURN(UpgradedConnection conn, UpgradeWebSocket(url, offered, options));
  std::optional<rc::Protocol> protocol =
      conn.protocol.empty() ? std::optional<rc::Protocol>(rc::Protocol{"", 1, false})
                            : FindProtocol(rc::WebSocketRemoteCommandProtocols(), conn.protocol);
  if (!protocol) {
    return DataLossError(StrCat("server chose unknown protocol \"", conn.protocol, "\""));
  }
  WebSocketConn ws(*conn.transport, /*client=*/true, 256 * 1024);
  ws.Start();
  const bool b64 = protocol->base64;
  std::string error_text;
  Status read_status;
  ByteSink* out = io.stdout;
  ByteSink* err = io.tty ? nullptr : io.stderr;
  std::thread reader([&] {
    bool out_ok = true, err_ok = true;
    ws::ChannelDecoder decoder(
        b64,
        [&](uint8_t channel, std::string_view data) -> Status {
          if (channel == rc::kStdoutChannel && out != nullptr && out_ok) {
            out_ok = out->Write(data).ok();
          } else if (channel == rc::kStderrChannel && err != nullptr && err_ok) {
            err_ok = err->Write(data).ok();
          } else if (channel == rc::kErrorChannel && error_text.size() < kMaxErrorStream) {
            error_text.append(data.substr(0, kMaxErrorStream - error_text.size()));
          }
          return OkStatus();
        },
        [&](uint8_t) -> Status { return OkStatus(); });
    DecoderAdapter adapter(decoder);
    while (true) {
      StatusOr<bool> more = ws.ReadMessage(adapter);
      if (!more.ok()) {
        read_status = more.status();
        break;
      }
      if (!*more) break;
    }
  });
  ChannelSink stdin_sink(ws, b64, rc::kStdinChannel, protocol->close_signal());
  ChannelSink resize_sink(ws, b64, rc::kResizeChannel);
  std::thread in_thread, resize_thread;
  if (io.stdin != nullptr) in_thread = std::thread([&] { Copy(*io.stdin, stdin_sink); });
  if (io.tty && io.sizes != nullptr) {
    resize_thread = std::thread([&] {
      while (std::optional<TerminalSize> size = io.sizes->Next()) {
        if (!resize_sink.Write(rc::EncodeTerminalSize(*size)).ok()) break;
      }
    });
  }
  reader.join();
  if (out != nullptr) (void)out->CloseWrite();
  if (err != nullptr) (void)err->CloseWrite();
  if (io.stdin != nullptr) io.stdin->Interrupt();
  if (io.sizes != nullptr) io.sizes->Close();
  std::optional<ws::ClosePayload> close = ws.peer_close();
  ws.Close(ws::kCloseNormal, "", Clock::now() + std::chrono::milliseconds(500));
  ws.Cancel();
  if (in_thread.joinable()) in_thread.join();
  if (resize_thread.joinable()) resize_thread.join();
  if (!read_status.ok() && error_text.empty()) {
    return Annotate(read_status, "reading from the streaming server");
  }
  if (!close.has_value() && error_text.empty()) {
    return UnavailableError("streaming server closed the connection without a status");
  }
  return rc::DecodeErrorStream(protocol->error_format(), error_text);
}

}  // namespace

StatusOr<UpgradedConnection> UpgradeSpdy(const std::string& url,
                                         const std::vector<std::string>& protocols,
                                         const ClientOptions& options, const std::string& method) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Connection", "Upgrade"},
                                                              {"Upgrade", "SPDY/3.1"}};
  for (const std::string& p : protocols) headers.emplace_back(std::string(rc::kProtocolHeader), p);
  ASSIGN_OR_RETURN(Upgrade up, SendUpgrade(url, method, headers, options));
  if (!up.head.headers.HasToken("Upgrade", "SPDY/3.1") ||
      !up.head.headers.HasToken("Connection", "upgrade")) {
    return DataLossError(StrCat("upgrading ", url, ": the server did not switch to SPDY/3.1"));
  }
  UpgradedConnection out;
  out.protocol = std::string(up.head.headers.Get(rc::kProtocolHeader).value_or(""));
  out.transport = std::move(up.transport);
  out.response = std::move(up.head);
  return out;
}

StatusOr<UpgradedConnection> UpgradeWebSocket(const std::string& url,
                                              const std::vector<std::string>& protocols,
                                              const ClientOptions& options) {
  std::string key = ws::NewKey();
  std::vector<std::pair<std::string, std::string>> headers = {{"Connection", "Upgrade"},
                                                              {"Upgrade", "websocket"},
                                                              {"Sec-WebSocket-Version", "13"},
                                                              {"Sec-WebSocket-Key", key}};
  if (!protocols.empty()) {
    std::string list;
    for (const std::string& p : protocols) list += (list.empty() ? "" : ", ") + p;
    headers.emplace_back("Sec-WebSocket-Protocol", list);
  }
  ASSIGN_OR_RETURN(Upgrade up, SendUpgrade(url, "GET", headers, options));
  if (up.head.headers.Get("Sec-WebSocket-Accept").value_or("") != ws::AcceptKey(key)) {
    return DataLossError(StrCat("upgrading ", url, ": wrong Sec-WebSocket-Accept"));
  }
  UpgradedConnection out;
  out.protocol = std::string(up.head.headers.Get("Sec-WebSocket-Protocol").value_or(""));
  if (!out.protocol.empty() &&
      std::find(protocols.begin(), protocols.end(), out.protocol) == protocols.end()) {
    return DataLossError(StrCat("upgrading ", url, ": the server chose protocol ", out.protocol,
                                " we did not offer"));
  }
  out.transport = std::move(up.transport);
  out.response = std::move(up.head);
  return out;
}

FdInput::FdInput(int fd) : fd_(fd), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

StatusOr<size_t> FdInput::Read(std::span<char> buf) {
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll on input");
    }
    if (fds[1].revents != 0) return CancelledError("input interrupted");
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoStatus(errno, "read input");
    }
    return static_cast<size_t>(n);
  }
}

void FdInput::Interrupt() {
  uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof(one));
}

Status FdOutput::Write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write output");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

Status StringOutput::Write(std::string_view data) {
  std::lock_guard lock(mu_);
  data_ += data;
  return OkStatus();
}

Status StringOutput::CloseWrite() {
  std::lock_guard lock(mu_);
  closed_ = true;
  return OkStatus();
}

std::string StringOutput::str() const {
  std::lock_guard lock(mu_);
  return data_;
}

bool StringOutput::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

StatusOr<int> RunRemoteCommand(const std::string& url, RemoteCommandIo& io,
                               const ClientOptions& options) {
  if (options.protocol == StreamProtocol::kWebSocket) {
    return RunWebSocketCommand(url, io, options);
  }
  return RunSpdyCommand(url, io, options);
}

// --- port-forward -------------------------------------------------------------

namespace {

Status SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write to the local connection");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

// A local socket as a ByteSource.
class SocketSource final : public ByteSource {
 public:
  explicit SocketSource(int fd) : fd_(fd) {}
  StatusOr<size_t> Read(std::span<char> buf) override {
    while (true) {
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoStatus(errno, "read from the local connection");
    }
  }

 private:
  int fd_;
};

// A local socket as a ByteSink; CloseWrite half-closes it.
class SocketSink final : public ByteSink {
 public:
  explicit SocketSink(int fd) : fd_(fd) {}
  Status Write(std::string_view data) override { return SendAll(fd_, data); }
  Status CloseWrite() override {
    ::shutdown(fd_, SHUT_WR);
    return OkStatus();
  }

 private:
  int fd_;
};

// Drops the first `n` bytes written (the port prefix of WebSocket
// port-forward channels).
class SkipPrefix final : public ByteSink {
 public:
  SkipPrefix(ByteSink& to, size_t n) : to_(to), skip_(n) {}
  Status Write(std::string_view data) override {
    size_t k = std::min(skip_, data.size());
    skip_ -= k;
    data.remove_prefix(k);
    return data.empty() ? OkStatus() : to_.Write(data);
  }
  Status CloseWrite() override { return to_.CloseWrite(); }

 private:
  ByteSink& to_;
  size_t skip_;
};

}  // namespace

struct PortForwarder::Impl {
  std::string url;
  ClientOptions options;
  Log log;
  std::vector<PortMapping> mappings;
  std::vector<Listener> listeners;
  UniqueFd wake;

  // SPDY: the one connection to the server.
  std::unique_ptr<Transport> transport;
  std::unique_ptr<SpdySession> session;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool lost = false;
  Status lost_status;
  int next_request_id = 0;
  struct Forwarded {
    UniqueFd local;
    std::thread thread;
    bool done = false;
  };
  std::list<Forwarded> forwarded;
  std::thread accept_thread;

  void Say(const std::string& line) {
    if (log) log(line);
  }
  void AcceptLoop();
  void ForwardSpdy(int local, const PortMapping& m);
  Status StartWebSocket();
  void ForwardWebSocket(int local, size_t index);

  // WebSocket: one connection carries one forwarded connection per port.
  std::unique_ptr<WebSocketConn> ws;
  bool ws_base64 = false;
  std::vector<std::unique_ptr<BoundedPipe>> from_pod;
  std::vector<bool> used;
  std::thread ws_reader;
};

void PortForwarder::Impl::ForwardSpdy(int local, const PortMapping& m) {
  int request_id;
  {
    std::lock_guard lock(mu);
    request_id = next_request_id++;
  }
  spdy::HeaderBlock headers = {
      {std::string(rc::kStreamTypeHeader), std::string(rc::kStreamTypeError)},
      {std::string(rc::kPortHeader), std::to_string(m.remote_port)},
      {std::string(rc::kRequestIdHeader), std::to_string(request_id)}};
  StatusOr<std::shared_ptr<SpdyStream>> error =
      session->OpenStream(headers, options.stream_timeout);
  if (!error.ok()) {
    Say(StrCat("error creating error stream for port ", m.local_port, " -> ", m.remote_port, ": ",
               error.status().message()));
    return;
  }
  (void)(*error)->CloseWrite();  // we never write to it
  headers[0].second = std::string(rc::kStreamTypeData);
  StatusOr<std::shared_ptr<SpdyStream>> data = session->OpenStream(headers, options.stream_timeout);
  if (!data.ok()) {
    Say(StrCat("error creating forwarding stream for port ", m.local_port, " -> ", m.remote_port,
               ": ", data.status().message()));
    (*error)->Reset();
    return;
  }
  StatusOr<std::string> message = std::string();
  std::thread error_reader([&] { message = ReadAll(**error, kMaxErrorStream); });
  SocketSink to_local(local);
  SocketSource from_local(local);
  std::thread to_remote([&] { Copy(from_local, **data); });
  Copy(**data, to_local);  // until the pod side ends
  // Like kubectl: once the remote side is done, the local side is too.
  ::shutdown(local, SHUT_RDWR);
  to_remote.join();
  error_reader.join();
  if (message.ok() && !message->empty()) {
    Say(StrCat("an error occurred forwarding ", m.local_port, " -> ", m.remote_port, ": ",
               *message));
  }
  (*data)->Reset();
  (*error)->Reset();
}

Status PortForwarder::Impl::StartWebSocket() {
  std::string ws_url = url;
  for (const PortMapping& m : mappings) {
    ws_url += StrCat(ws_url.find('?') == std::string::npos ? "?" : "&", "port=", m.remote_port);
  }
  std::vector<std::string> offered = options.protocols;
  if (offered.empty()) offered = {std::string(rc::kV4)};
  ASSIGN_OR_RETURN(UpgradedConnection conn, UpgradeWebSocket(ws_url, offered, options));
  transport = std::move(conn.transport);
  ws_base64 = conn.protocol == rc::kBase64V4;
  ws = std::make_unique<WebSocketConn>(*transport, /*client=*/true, 256 * 1024);
  ws->Start();
  for (size_t i = 0; i < mappings.size(); ++i) {
    from_pod.push_back(std::make_unique<BoundedPipe>(256 * 1024));
  }
  used.assign(mappings.size(), false);
  ws_reader = std::thread([this] {
    // The server's first two bytes on each channel are its port number.
    std::vector<size_t> skip(2 * mappings.size(), 2);
    ws::ChannelDecoder decoder(
        ws_base64,
        [&](uint8_t channel, std::string_view d) -> Status {
          if (channel >= skip.size()) return OkStatus();
          size_t k = std::min(skip[channel], d.size());
          skip[channel] -= k;
          d.remove_prefix(k);
          if (d.empty()) return OkStatus();
          const PortMapping& m = mappings[channel / 2];
          if (channel % 2 == 1) {
            Say(StrCat("an error occurred forwarding ", listeners[channel / 2].port, " -> ",
                       m.remote_port, ": ", d));
            // The server gave up on this port: its local connection ends.
            (void)from_pod[channel / 2]->CloseWrite();
            return OkStatus();
          }
          (void)from_pod[channel / 2]->Write(d);
          return OkStatus();
        },
        [](uint8_t) { return OkStatus(); });
    DecoderAdapter adapter(decoder);
    Status why;
    while (true) {
      StatusOr<bool> more = ws->ReadMessage(adapter);
      if (!more.ok()) why = more.status();
      if (!more.ok() || !*more) break;
    }
    for (auto& p : from_pod) (void)p->CloseWrite();
    std::lock_guard lock(mu);
    lost = true;
    lost_status = why.ok() ? UnavailableError("the streaming server closed the connection") : why;
    uint64_t one = 1;
    (void)::write(wake.get(), &one, sizeof(one));
    cv.notify_all();
  });
  return OkStatus();
}

void PortForwarder::Impl::ForwardWebSocket(int local, size_t index) {
  {
    std::lock_guard lock(mu);
    if (used[index]) {
      Say(StrCat("refusing a second connection to local port ", listeners[index].port,
                 ": a WebSocket port-forward carries one connection per port (SPDY carries any "
                 "number)"));
      return;
    }
    used[index] = true;
  }
  SocketSink to_local(local);
  bool pod_done = false;
  std::thread to_local_thread([&] {
    Copy(*from_pod[index], to_local);
    std::lock_guard lock(mu);
    pod_done = true;
    cv.notify_all();
  });
  ChannelSink to_remote(*ws, ws_base64, static_cast<uint8_t>(2 * index));
  SocketSource from_local(local);
  std::string buf(32 * 1024, '\0');
  while (true) {
    StatusOr<size_t> n = from_local.Read(buf);
    if (!n.ok() || *n == 0) break;
    if (!to_remote.Write(std::string_view(buf.data(), *n)).ok()) break;
  }
  // The channel protocol cannot half-close: wait for the pod side to end
  // (the server closes the connection) or for Stop.
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return pod_done || stopping; });
  }
  from_pod[index]->Abort(CancelledError("port-forward stopped"));
  ::shutdown(local, SHUT_RDWR);
  to_local_thread.join();
}

void PortForwarder::Impl::AcceptLoop() {
  std::vector<pollfd> fds;
  for (const Listener& l : listeners) fds.push_back({l.fd.get(), POLLIN, 0});
  fds.push_back({wake.get(), POLLIN, 0});
  while (true) {
    for (pollfd& p : fds) p.revents = 0;
    int rc = ::poll(fds.data(), fds.size(), 1000);
    if (rc < 0 && errno != EINTR) return;
    {
      std::lock_guard lock(mu);
      if (stopping || lost) return;
      for (auto it = forwarded.begin(); it != forwarded.end();) {
        if (it->done) {
          it->thread.join();
          it = forwarded.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (fds.back().revents != 0) return;
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      UniqueFd local(::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (!local.valid()) continue;
      SetNoDelay(local.get());
      const PortMapping& m = mappings[i];
      Say(StrCat("Handling connection for ", listeners[i].port));
      std::lock_guard lock(mu);
      Forwarded& f = forwarded.emplace_back();
      int raw = local.get();
      f.local = std::move(local);
      f.thread = std::thread([this, raw, &m, &f, i] {
        if (options.protocol == StreamProtocol::kWebSocket) {
          ForwardWebSocket(raw, i);
        } else {
          ForwardSpdy(raw, m);
        }
        std::lock_guard l(mu);
        f.done = true;
      });
    }
  }
}

PortForwarder::PortForwarder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<PortForwarder>> PortForwarder::Start(const std::string& url,
                                                              std::vector<PortMapping> mappings,
                                                              const ClientOptions& options,
                                                              Log log) {
  if (mappings.empty()) return InvalidArgumentError("port-forward needs at least one port");
  auto impl = std::make_unique<Impl>();
  impl->url = url;
  impl->options = options;
  impl->log = std::move(log);
  impl->mappings = std::move(mappings);
  impl->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  for (const PortMapping& m : impl->mappings) {
    if (m.remote_port == 0) return InvalidArgumentError("remote port 0 cannot be forwarded");
    std::string host = m.local_address.find(':') != std::string::npos
                           ? StrCat("[", m.local_address, "]")
                           : m.local_address;
    StatusOr<Listener> l = ListenTcp(StrCat(host, ":", m.local_port), 128);
    if (!l.ok()) {
      return Annotate(l.status(), StrCat("unable to listen on port ", m.local_port));
    }
    impl->listeners.push_back(std::move(*l));
  }
  if (options.protocol == StreamProtocol::kSpdy) {
    std::vector<std::string> offered = options.protocols;
    if (offered.empty()) offered = {std::string(rc::kPortForwardV1)};
    ASSIGN_OR_RETURN(UpgradedConnection conn, UpgradeSpdy(url, offered, options));
    impl->transport = std::move(conn.transport);
    SpdySession::Options so;
    so.server = false;
    so.stream_window = options.stream_window;
    impl->session = std::make_unique<SpdySession>(*impl->transport, so);
    Impl* raw = impl.get();
    impl->session->Start(
        [](std::shared_ptr<SpdyStream> s) { s->Reset(spdy::RstStatus::kRefusedStream); },
        [raw](const Status& why) {
          std::lock_guard lock(raw->mu);
          raw->lost = true;
          raw->lost_status =
              why.ok() ? UnavailableError("lost connection to the streaming server") : why;
          uint64_t one = 1;
          (void)::write(raw->wake.get(), &one, sizeof(one));
          raw->cv.notify_all();
        });
  }
  if (options.protocol == StreamProtocol::kWebSocket) RETURN_IF_ERROR(impl->StartWebSocket());
  Impl* raw = impl.get();
  impl->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<PortForwarder>(new PortForwarder(std::move(impl)));
}

PortForwarder::~PortForwarder() { Stop(); }

std::vector<uint16_t> PortForwarder::local_ports() const {
  std::vector<uint16_t> out;
  for (const Listener& l : impl_->listeners) out.push_back(l.port);
  return out;
}

Status PortForwarder::Wait() {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stopping || impl_->lost; });
  return impl_->stopping ? OkStatus() : impl_->lost_status;
}

void PortForwarder::Stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.stopping && !s.accept_thread.joinable()) return;
    s.stopping = true;
    s.cv.notify_all();
  }
  uint64_t one = 1;
  (void)::write(s.wake.get(), &one, sizeof(one));
  if (s.accept_thread.joinable()) s.accept_thread.join();
  for (Listener& l : s.listeners) l.fd.Reset();
  {
    std::lock_guard lock(s.mu);
    for (Impl::Forwarded& f : s.forwarded) ::shutdown(f.local.get(), SHUT_RDWR);
  }
  if (s.session) s.session->Cancel();
  if (s.ws) s.ws->Cancel();
  std::list<Impl::Forwarded> forwarded;
  {
    std::lock_guard lock(s.mu);
    forwarded.swap(s.forwarded);
  }
  for (Impl::Forwarded& f : forwarded) {
    if (f.thread.joinable()) f.thread.join();
  }
  if (s.ws_reader.joinable()) s.ws_reader.join();
  // Joins the session's reader, whose last act touches this Impl.
  s.session.reset();
}

}  // namespace berth::stream
