// Port-forward over SPDY (portforward.k8s.io: per forwarded connection a data
// and an error stream, paired by the requestID header, the port in the port
// header) and over WebSocket (channels 2i and 2i+1 for the i-th port of the
// URL's "port" parameters; the server's first message on each carries the
// port, little-endian). Each forwarded connection gets a socket from
// Runtime::PortForward and two copy loops; every copy blocks on its
// destination, so a slow side throttles the other instead of filling memory.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include "stream/byte_stream.h"
#include "stream/channel_io.h"
#include "stream/handlers.h"
#include "stream/remotecommand.h"
#include "stream/spdy_session.h"
#include "stream/ws_conn.h"

namespace berth::stream {
namespace {

namespace rc = remotecommand;

Status WriteFd(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write to the forwarded connection");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

// The pod side of one forwarded connection. The socket is shut down (not
// closed) to unblock its copy loops from another thread.
class PodConnection {
 public:
  void Set(UniqueFd fd) {
    std::lock_guard lock(mu_);
    fd_ = std::move(fd);
    if (aborted_) ::shutdown(fd_.get(), SHUT_RDWR);
  }
  int fd() {
    std::lock_guard lock(mu_);
    return fd_.get();
  }
  void Abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    if (fd_.valid()) ::shutdown(fd_.get(), SHUT_RDWR);
  }
  bool aborted() {
    std::lock_guard lock(mu_);
    return aborted_;
  }

 private:
  std::mutex mu_;
  UniqueFd fd_;
  bool aborted_ = false;
};

// Copies `from` into the pod socket until `from` ends (then half-closes the
// socket) or fails.
void CopyToPod(ByteSource& from, int fd) {
  char buf[32 * 1024];
  while (true) {
    StatusOr<size_t> n = from.Read(buf);
    if (!n.ok()) {
      ::shutdown(fd, SHUT_RDWR);
      return;
    }
    if (*n == 0) {
      ::shutdown(fd, SHUT_WR);
      return;
    }
    if (!WriteFd(fd, std::string_view(buf, *n)).ok()) {
      // The pod side went away: keep reading so the client's stream does
      // not stall the connection, dropping the bytes.
      while (true) {
        StatusOr<size_t> m = from.Read(buf);
        if (!m.ok() || *m == 0) return;
      }
    }
  }
}

// Copies the pod socket into `to` until EOF. Returns the read error, if any.
Status CopyFromPod(int fd, ByteSink& to) {
  char buf[32 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read from the forwarded connection");
    }
    if (n == 0) return OkStatus();
    RETURN_IF_ERROR(to.Write(std::string_view(buf, static_cast<size_t>(n))));
  }
}

std::string PortNotAllowed(uint16_t port) {
  return StrCat("port ", port, " is not among the ports this port-forward URL was issued for");
}

bool PortAllowed(const PortForwardRequest& target, uint16_t port) {
  return target.ports.empty() ||
         std::find(target.ports.begin(), target.ports.end(), int32_t{port}) != target.ports.end();
}

std::string ForwardError(uint16_t port, const PortForwardRequest& target, const Status& s) {
  return StrCat("error forwarding port ", port, " to pod ", target.pod_sandbox_id, ": ",
                s.message());
}

// --- SPDY -------------------------------------------------------------------

struct StreamPair {
  std::string request_id;
  std::shared_ptr<SpdyStream> data;
  std::shared_ptr<SpdyStream> error;
  Clock::time_point created;
  PodConnection pod;
  std::thread thread;
  std::atomic<bool> done{false};
};

void RunPair(StreamPair& pair, const PortForwardRequest& target, Runtime& runtime) {
  auto fail = [&](const std::string& message) {
    (void)pair.error->Write(message);
    (void)pair.error->CloseWrite();
    (void)pair.data->CloseWrite();
  };
  std::string_view port_text = pair.data->header(rc::kPortHeader).value_or("");
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    fail(StrCat("invalid port header \"", port_text, "\": must be a number from 1 to 65535"));
    return;
  }
  if (!PortAllowed(target, static_cast<uint16_t>(port))) {
    fail(PortNotAllowed(static_cast<uint16_t>(port)));
    return;
  }
  StatusOr<UniqueFd> fd = runtime.PortForward(target.pod_sandbox_id, static_cast<uint16_t>(port));
  if (!fd.ok()) {
    spdlog::info("event=stream_portforward_failed pod={} port={} error=\"{}\"",
                 target.pod_sandbox_id, port, fd.status().message());
    fail(ForwardError(static_cast<uint16_t>(port), target, fd.status()));
    return;
  }
  int raw = fd->get();
  pair.pod.Set(std::move(*fd));
  std::thread to_pod([&] { CopyToPod(*pair.data, raw); });
  Status s = CopyFromPod(raw, *pair.data);
  if (s.ok()) {
    (void)pair.data->CloseWrite();
  } else if (!pair.pod.aborted()) {
    (void)pair.error->Write(ForwardError(static_cast<uint16_t>(port), target, s));
    pair.data->Reset();
  }
  (void)pair.error->CloseWrite();
  to_pod.join();
}

void ServeSpdy(Transport& t, const HttpRequest& req, const PortForwardRequest& target,
               Runtime& runtime, const HandlerOptions& options) {
  std::vector<std::string> offered = req.headers.Tokens(rc::kProtocolHeader);
  if (offered.empty()) {
    RespondAndClose(t, 400, StrCat("unable to upgrade: ", rc::kProtocolHeader, " is required"));
    return;
  }
  if (std::find(offered.begin(), offered.end(), rc::kPortForwardV1) == offered.end()) {
    std::string client;
    for (const std::string& o : offered) client += (client.empty() ? "" : " ") + o;
    RespondAndClose(t, 403,
                    StrCat("unable to upgrade: unable to negotiate protocol: client supports [",
                           client, "], server accepts [", rc::kPortForwardV1, "]"),
                    {{std::string(rc::kAcceptedProtocolsHeader), std::string(rc::kPortForwardV1)}});
    return;
  }
  if (!IsSpdyUpgradeRequest(req)) {
    RespondAndClose(t, 400, "unable to upgrade: missing upgrade headers in request");
    return;
  }
  if (!t.Write(
            FormatResponse(101, ReasonPhrase(101),
                           {{"Connection", "Upgrade"},
                            {"Upgrade", "SPDY/3.1"},
                            {std::string(rc::kProtocolHeader), std::string(rc::kPortForwardV1)}}))
           .ok()) {
    return;
  }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<SpdyStream>> incoming;
  bool closed = false;
  SpdySession::Options session_options;
  session_options.server = true;
  SpdySession session(t, session_options);
  session.Start(
      [&](std::shared_ptr<SpdyStream> s) {
        std::lock_guard lock(mu);
        incoming.push_back(std::move(s));
        cv.notify_all();
      },
      [&](const Status&) {
        std::lock_guard lock(mu);
        closed = true;
        cv.notify_all();
      });

  std::list<StreamPair> pairs;  // stable addresses for the pair threads
  auto wake_every = std::min<std::chrono::milliseconds>(options.stream_creation_timeout,
                                                        std::chrono::milliseconds(1000));
  while (true) {
    std::deque<std::shared_ptr<SpdyStream>> batch;
    {
      std::unique_lock lock(mu);
      cv.wait_for(lock, wake_every, [&] { return closed || !incoming.empty(); });
      if (closed) break;
      batch.swap(incoming);
    }
    for (std::shared_ptr<SpdyStream>& s : batch) {
      std::string type(s->header(rc::kStreamTypeHeader).value_or(""));
      std::string id(s->header(rc::kRequestIdHeader).value_or(""));
      if (id.empty()) {
        // Clients older than Kubernetes 1.5 send no requestID; the kubelet
        // pairs their consecutive streams by id (data = error + 2).
        if (type == rc::kStreamTypeError) id = std::to_string(s->id());
        if (type == rc::kStreamTypeData) id = std::to_string(s->id() - 2);
      }
      if (type != rc::kStreamTypeData && type != rc::kStreamTypeError) {
        s->Reset(spdy::RstStatus::kProtocolError);
        continue;
      }
      auto it = std::find_if(pairs.begin(), pairs.end(), [&](const StreamPair& p) {
        return p.request_id == id && !p.thread.joinable();
      });
      if (it == pairs.end()) {
        it = pairs.emplace(pairs.end());
        it->request_id = id;
        it->created = Clock::now();
      }
      std::shared_ptr<SpdyStream>& slot = type == rc::kStreamTypeData ? it->data : it->error;
      if (slot) {
        s->Reset(spdy::RstStatus::kProtocolError);
        continue;
      }
      slot = std::move(s);
      if (it->data && it->error) {
        StreamPair& p = *it;
        p.thread = std::thread([&p, &target, &runtime] {
          RunPair(p, target, runtime);
          p.done = true;
        });
      }
    }
    auto now = Clock::now();
    for (auto it = pairs.begin(); it != pairs.end();) {
      if (it->thread.joinable() && it->done) {
        it->thread.join();
        it = pairs.erase(it);
        continue;
      }
      if (!it->thread.joinable() && now - it->created > options.stream_creation_timeout) {
        if (it->error) {
          (void)it->error->Write("timed out waiting for the data stream of this port-forward");
          (void)it->error->CloseWrite();
        }
        if (it->data) it->data->Reset();
        it = pairs.erase(it);
        continue;
      }
      ++it;
    }
  }
  // The client is gone (or the server stops): end every forwarded connection.
  session.Cancel();
  for (StreamPair& p : pairs) p.pod.Abort();
  for (StreamPair& p : pairs) {
    if (p.thread.joinable()) p.thread.join();
  }
}

// --- WebSocket --------------------------------------------------------------

struct ChannelPair {
  uint16_t port = 0;
  std::unique_ptr<ChannelSink> data;
  std::unique_ptr<ChannelSink> error;
  BoundedPipe from_client{256 * 1024};
  PodConnection pod;
  std::thread thread;
};

void ServeWebSocket(Transport& t, const HttpRequest& req, const PortForwardRequest& target,
                    Runtime& runtime, const HandlerOptions& options) {
  if (!CheckWebSocketHandshake(t, req)) return;
  std::vector<std::string> offered = req.headers.Tokens("Sec-WebSocket-Protocol");
  std::optional<rc::Protocol> protocol =
      rc::Negotiate(offered, rc::WebSocketPortForwardProtocols(), true);
  if (!protocol) {
    RespondAndClose(t, 403, "unable to upgrade: requested protocol(s) are not supported");
    return;
  }
  std::vector<std::string> port_values;
  StatusOr<std::vector<std::pair<std::string, std::string>>> query = ParseQuery(req.query);
  if (!query.ok()) {
    RespondAndClose(t, 400, query.status().message());
    return;
  }
  for (const auto& [k, v] : *query) {
    if (k == rc::kPortHeader) port_values.push_back(v);
  }
  std::vector<uint16_t> ports;
  if (port_values.empty()) {
    for (int32_t p : target.ports) {
      if (p > 0 && p <= 65535) ports.push_back(static_cast<uint16_t>(p));
    }
    if (ports.empty()) {
      RespondAndClose(t, 400, "query parameter \"port\" is required");
      return;
    }
  } else {
    StatusOr<std::vector<uint16_t>> parsed = rc::ParsePortList(port_values);
    if (!parsed.ok()) {
      RespondAndClose(t, 400, parsed.status().message());
      return;
    }
    ports = std::move(*parsed);
  }
  constexpr size_t kMaxPorts = 64;  // two channels each, channel numbers are one byte
  if (ports.size() > kMaxPorts) {
    RespondAndClose(t, 400, StrCat("at most ", kMaxPorts, " ports per connection"));
    return;
  }
  for (uint16_t p : ports) {
    if (!PortAllowed(target, p)) {
      RespondAndClose(t, 403, PortNotAllowed(p));
      return;
    }
  }
  if (!t.Write(WebSocketAcceptResponse(req, protocol->name)).ok()) return;

  WebSocketConn conn(t, /*client=*/false, 256 * 1024);
  conn.Start();
  const bool b64 = protocol->base64;
  std::vector<std::unique_ptr<ChannelPair>> pairs;
  for (size_t i = 0; i < ports.size(); ++i) {
    auto p = std::make_unique<ChannelPair>();
    p->port = ports[i];
    p->data = std::make_unique<ChannelSink>(conn, b64, static_cast<uint8_t>(2 * i));
    p->error = std::make_unique<ChannelSink>(conn, b64, static_cast<uint8_t>(2 * i + 1));
    char le[2] = {static_cast<char>(p->port & 0xff), static_cast<char>(p->port >> 8)};
    (void)p->data->Write(std::string_view(le, 2));
    (void)p->error->Write(std::string_view(le, 2));
    pairs.push_back(std::move(p));
  }

  std::mutex mu;
  std::condition_variable cv;
  bool reader_done = false;
  std::thread reader([&] {
    ws::ChannelDecoder decoder(
        b64,
        [&](uint8_t channel, std::string_view data) -> Status {
          size_t i = channel / 2;
          if (channel % 2 == 0 && i < pairs.size()) return pairs[i]->from_client.Write(data);
          return OkStatus();
        },
        [&](uint8_t channel) -> Status {
          size_t i = channel / 2;
          if (channel % 2 == 0 && i < pairs.size()) return pairs[i]->from_client.CloseWrite();
          return OkStatus();
        });
    DecoderAdapter adapter(decoder);
    while (true) {
      StatusOr<bool> more = conn.ReadMessage(adapter);
      if (!more.ok() || !*more) break;
    }
    for (auto& p : pairs) {
      p->from_client.Abort(UnavailableError("connection closed"));
      p->pod.Abort();
    }
    conn.Cancel();  // fails a write blocked on a client that stopped reading
    std::lock_guard lock(mu);
    reader_done = true;
    cv.notify_all();
  });

  for (auto& pp : pairs) {
    ChannelPair& p = *pp;
    p.thread = std::thread([&p, &target, &runtime] {
      StatusOr<UniqueFd> fd = runtime.PortForward(target.pod_sandbox_id, p.port);
      if (!fd.ok()) {
        spdlog::info("event=stream_portforward_failed pod={} port={} error=\"{}\"",
                     target.pod_sandbox_id, p.port, fd.status().message());
        (void)p.error->Write(ForwardError(p.port, target, fd.status()));
        return;
      }
      int raw = fd->get();
      p.pod.Set(std::move(*fd));
      std::thread to_pod([&] { CopyToPod(p.from_client, raw); });
      Status s = CopyFromPod(raw, *p.data);
      if (!s.ok() && !p.pod.aborted()) {
        (void)p.error->Write(ForwardError(p.port, target, s));
      }
      // No per-channel end signal exists: the connection's close ends it.
      p.from_client.Abort(CancelledError("forwarded connection closed"));
      to_pod.join();
    });
  }
  for (auto& p : pairs) p->thread.join();
  auto deadline = Clock::now() + options.linger;
  bool done;
  {
    std::lock_guard lock(mu);
    done = reader_done;
  }
  if (!done) {
    conn.Close(ws::kCloseNormal, "", deadline);
    std::unique_lock lock(mu);
    cv.wait_until(lock, deadline, [&] { return reader_done; });
  }
  conn.Cancel();
  reader.join();
}

}  // namespace

void ServePortForward(Transport& t, const HttpRequest& req, const PortForwardRequest& target,
                      Runtime& runtime, const HandlerOptions& options) {
  if (IsWebSocketRequest(req)) {
    ServeWebSocket(t, req, target, runtime, options);
  } else {
    ServeSpdy(t, req, target, runtime, options);
  }
}

}  // namespace berth::stream
