// Exec and attach over SPDY (remotecommand v1-v4) and WebSocket (channel
// protocols, v5). Both end in the same steps: start the process through the
// Runtime, pump its stdio (ProcessPump), report the outcome on the error
// stream, close.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>

#include "stream/byte_stream.h"
#include "stream/channel_io.h"
#include "stream/handlers.h"
#include "stream/process_pump.h"
#include "stream/remotecommand.h"
#include "stream/spdy_session.h"
#include "stream/ws_conn.h"

namespace berth::stream {
namespace {

namespace rc = remotecommand;

// Cancels the process when the connection is lost, whether the process exists
// yet or not.
class ProcessGuard {
 public:
  void Set(ProcessStreams* p) {
    std::lock_guard lock(mu_);
    process_ = p;
    if (lost_ && process_ != nullptr) process_->Cancel();
  }
  void ConnectionLost() {
    std::lock_guard lock(mu_);
    lost_ = true;
    if (process_ != nullptr) process_->Cancel();
  }
  bool lost() {
    std::lock_guard lock(mu_);
    return lost_;
  }

 private:
  std::mutex mu_;
  ProcessStreams* process_ = nullptr;
  bool lost_ = false;
};

StatusOr<std::unique_ptr<ProcessStreams>> StartProcess(Runtime& runtime,
                                                       const CommandTarget& target) {
  if (target.attach) return runtime.Attach(target.attach_request);
  return runtime.Exec(target.exec);
}

// Go's %v of a []string: [a b c].
std::string GoList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + v[i];
  return out + "]";
}

// The error stream's content for an outcome, or empty for "nothing to say".
std::string OutcomeMessage(const rc::Protocol& protocol, const CommandTarget& target,
                           const StatusOr<std::optional<int>>& outcome) {
  bool json = protocol.error_format() == rc::ErrorFormat::kStatus;
  if (!outcome.ok()) {
    return json ? rc::InternalErrorStatus(outcome.status().message())
                : rc::InternalErrorText(outcome.status().message());
  }
  int code = outcome->value_or(0);
  if (code == 0) return json ? rc::SuccessStatus() : std::string();
  std::string what =
      target.attach
          ? StrCat("container ", target.container_id(), " exited with code ", code)
          : StrCat("error executing command ", GoList(target.exec.cmd), ", exit code ", code);
  std::string message = StrCat("command terminated with non-zero exit code: ", what);
  return json ? rc::NonZeroExitStatus(code, message) : message;
}

void LogOutcome(const CommandTarget& target, std::string_view protocol,
                const StatusOr<std::optional<int>>& outcome, bool lost) {
  std::string result = !outcome.ok()          ? StrCat("error=\"", outcome.status().message(), "\"")
                       : outcome->has_value() ? StrCat("exit_code=", **outcome)
                                              : std::string("exit_code=none");
  spdlog::info("event=stream_{} container={} protocol={} {} client_lost={}",
               target.attach ? "attach" : "exec", target.container_id(), protocol, result, lost);
}

// --- SPDY -------------------------------------------------------------------

void ServeSpdy(Transport& t, const HttpRequest& req, const CommandTarget& target, Runtime& runtime,
               const HandlerOptions& options) {
  std::vector<std::string> offered = req.headers.Tokens(rc::kProtocolHeader);
  if (offered.empty()) {
    RespondAndClose(t, 400, StrCat("unable to upgrade: ", rc::kProtocolHeader, " is required"));
    return;
  }
  std::optional<rc::Protocol> protocol =
      rc::Negotiate(offered, rc::SpdyRemoteCommandProtocols(), false);
  if (!protocol) {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string accepted;
    for (const rc::Protocol& p : rc::SpdyRemoteCommandProtocols()) {
      headers.emplace_back(std::string(rc::kAcceptedProtocolsHeader), std::string(p.name));
      accepted += (accepted.empty() ? "" : " ") + std::string(p.name);
    }
    std::string client;
    for (const std::string& o : offered) client += (client.empty() ? "" : " ") + o;
    RespondAndClose(t, 403,
                    StrCat("unable to upgrade: unable to negotiate protocol: client supports [",
                           client, "], server accepts [", accepted, "]"),
                    headers);
    return;
  }
  if (!IsSpdyUpgradeRequest(req)) {
    RespondAndClose(t, 400, "unable to upgrade: missing upgrade headers in request");
    return;
  }
  if (!t.Write(FormatResponse(101, ReasonPhrase(101),
                              {{"Connection", "Upgrade"},
                               {"Upgrade", "SPDY/3.1"},
                               {std::string(rc::kProtocolHeader), std::string(protocol->name)}}))
           .ok()) {
    return;
  }

  std::vector<std::string_view> required = {rc::kStreamTypeError};
  if (target.stdin()) required.push_back(rc::kStreamTypeStdin);
  if (target.stdout()) required.push_back(rc::kStreamTypeStdout);
  if (target.stderr()) required.push_back(rc::kStreamTypeStderr);
  if (target.tty() && protocol->resize()) required.push_back(rc::kStreamTypeResize);
  ProcessGuard guard;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::shared_ptr<SpdyStream>, std::less<>> streams;
  bool closed = false;

  SpdySession::Options session_options;
  session_options.server = true;
  SpdySession session(t, session_options);
  session.Start(
      [&](std::shared_ptr<SpdyStream> s) {
        std::string type(s->header(rc::kStreamTypeHeader).value_or(""));
        // Streams the request did not ask for are refused: nobody would read
        // them, and an unread stream stalls a peer that ignores windows.
        bool wanted = std::find(required.begin(), required.end(), type) != required.end();
        std::lock_guard lock(mu);
        if (!wanted || streams.contains(type)) {
          s->Reset(spdy::RstStatus::kProtocolError);
          return;
        }
        streams[type] = std::move(s);
        cv.notify_all();
      },
      [&](const Status&) {
        {
          std::lock_guard lock(mu);
          closed = true;
          cv.notify_all();
        }
        guard.ConnectionLost();
        // The client is gone: fail our writes too (one may be blocked on a
        // peer that stopped reading).
        session.Cancel();
      });

  bool ready;
  bool closed_early;
  {
    std::unique_lock lock(mu);
    ready = cv.wait_for(lock, options.stream_creation_timeout, [&] {
      if (closed) return true;
      for (std::string_view r : required) {
        if (!streams.contains(r)) return false;
      }
      return true;
    });
    closed_early = closed;
    ready = ready && !closed;
  }
  if (!ready) {
    spdlog::info("event=stream_client_streams_missing container={} peer={} closed={}",
                 target.container_id(), t.peer(), closed_early);
    session.Cancel();
    return;
  }
  auto get = [&](std::string_view type) -> std::shared_ptr<SpdyStream> {
    std::lock_guard lock(mu);
    auto it = streams.find(type);
    return it == streams.end() ? nullptr : it->second;
  };
  std::shared_ptr<SpdyStream> error = get(rc::kStreamTypeError);
  std::shared_ptr<SpdyStream> in = get(rc::kStreamTypeStdin);
  std::shared_ptr<SpdyStream> out = get(rc::kStreamTypeStdout);
  std::shared_ptr<SpdyStream> err = get(rc::kStreamTypeStderr);
  std::shared_ptr<SpdyStream> resize = get(rc::kStreamTypeResize);
  // v1 servers close their side of stdin at once (the kubelet does).
  if (protocol->version == 1 && in) (void)in->CloseWrite();

  StatusOr<std::unique_ptr<ProcessStreams>> process = StartProcess(runtime, target);
  StatusOr<std::optional<int>> outcome = std::optional<int>();
  std::unique_ptr<ProcessPump> pump;
  if (!process.ok()) {
    outcome = process.status();
  } else {
    guard.Set(process->get());
    pump = std::make_unique<ProcessPump>(**process,
                                         ProcessIo{in.get(), out.get(), err.get(), resize.get()});
    pump->StartInput();
    outcome = pump->RunOutput();
  }
  bool lost = guard.lost();
  LogOutcome(target, protocol->name, outcome, lost);
  if (!lost) {
    std::string message = OutcomeMessage(*protocol, target, outcome);
    if (!message.empty()) (void)error->Write(message);
    (void)error->CloseWrite();
    if (in) (void)in->CloseWrite();
    if (resize) (void)resize->CloseWrite();
    session.Close(options.linger);
  } else {
    session.Cancel();
  }
  if (process.ok()) {
    (*process)->Cancel();
    pump->JoinInput();
    guard.Set(nullptr);
  }
}

// --- WebSocket --------------------------------------------------------------

void ServeWebSocket(Transport& t, const HttpRequest& req, const CommandTarget& target,
                    Runtime& runtime, const HandlerOptions& options) {
  if (!CheckWebSocketHandshake(t, req)) return;
  std::vector<std::string> offered = req.headers.Tokens("Sec-WebSocket-Protocol");
  std::optional<rc::Protocol> protocol =
      rc::Negotiate(offered, rc::WebSocketRemoteCommandProtocols(), true);
  if (!protocol) {
    std::string supported;
    for (const rc::Protocol& p : rc::WebSocketRemoteCommandProtocols()) {
      supported += (supported.empty() ? "" : " ") + std::string(p.name);
    }
    RespondAndClose(t, 403,
                    StrCat("unable to upgrade: requested protocol(s) are not supported; supports [",
                           supported, "]"));
    return;
  }
  if (!t.Write(WebSocketAcceptResponse(req, protocol->name)).ok()) return;

  WebSocketConn conn(t, /*client=*/false, 256 * 1024);
  conn.Start();
  const bool b64 = protocol->base64;
  ChannelSink stdout_sink(conn, b64, rc::kStdoutChannel);
  ChannelSink stderr_sink(conn, b64, rc::kStderrChannel);
  ChannelSink error_sink(conn, b64, rc::kErrorChannel);
  // An empty message on the lowest writable channel tells the client the
  // session is open (as the kubelet does).
  if (target.stdout()) {
    (void)stdout_sink.Write("");
  } else if (target.stderr()) {
    (void)stderr_sink.Write("");
  } else {
    (void)error_sink.Write("");
  }

  std::unique_ptr<BoundedPipe> stdin_pipe =
      target.stdin() ? std::make_unique<BoundedPipe>(64 * 1024) : nullptr;
  std::unique_ptr<BoundedPipe> resize_pipe =
      target.tty() ? std::make_unique<BoundedPipe>(4 * 1024) : nullptr;
  ProcessGuard guard;
  std::mutex mu;
  std::condition_variable cv;
  bool reader_done = false;
  std::thread reader([&] {
    ws::ChannelDecoder decoder(
        b64,
        [&](uint8_t channel, std::string_view data) -> Status {
          if (channel == rc::kStdinChannel && stdin_pipe) return stdin_pipe->Write(data);
          if (channel == rc::kResizeChannel && resize_pipe) return resize_pipe->Write(data);
          return OkStatus();  // channels the client may not write to are ignored
        },
        [&](uint8_t channel) -> Status {
          if (!protocol->close_signal()) return OkStatus();
          if (channel == rc::kStdinChannel && stdin_pipe) return stdin_pipe->CloseWrite();
          if (channel == rc::kResizeChannel && resize_pipe) return resize_pipe->CloseWrite();
          return OkStatus();
        });
    DecoderAdapter adapter(decoder);
    while (true) {
      StatusOr<bool> more = conn.ReadMessage(adapter);
      if (!more.ok() || !*more) break;
    }
    Status gone = UnavailableError("connection closed");
    if (stdin_pipe) stdin_pipe->Abort(gone);
    if (resize_pipe) resize_pipe->Abort(gone);
    guard.ConnectionLost();
    // The client is gone: fail our writes too (one may be blocked on a peer
    // that stopped reading).
    conn.Cancel();
    std::lock_guard lock(mu);
    reader_done = true;
    cv.notify_all();
  });

  StatusOr<std::unique_ptr<ProcessStreams>> process = StartProcess(runtime, target);
  StatusOr<std::optional<int>> outcome = std::optional<int>();
  std::unique_ptr<ProcessPump> pump;
  if (!process.ok()) {
    outcome = process.status();
  } else {
    guard.Set(process->get());
    pump = std::make_unique<ProcessPump>(
        **process, ProcessIo{stdin_pipe.get(), target.stdout() ? &stdout_sink : nullptr,
                             target.stderr() ? &stderr_sink : nullptr, resize_pipe.get()});
    pump->StartInput();
    outcome = pump->RunOutput();
  }
  bool lost = guard.lost();
  LogOutcome(target, protocol->name.empty() ? "websocket" : protocol->name, outcome, lost);
  if (!lost) {
    std::string message = OutcomeMessage(*protocol, target, outcome);
    if (!message.empty()) (void)error_sink.Write(message);
    auto deadline = Clock::now() + options.linger;
    conn.Close(ws::kCloseNormal, "", deadline);
    std::unique_lock lock(mu);
    cv.wait_until(lock, deadline, [&] { return reader_done; });
  }
  conn.Cancel();
  reader.join();
  if (process.ok()) {
    (*process)->Cancel();
    pump->JoinInput();
    guard.Set(nullptr);
  }
}

}  // namespace

void ServeRemoteCommand(Transport& t, const HttpRequest& req, const CommandTarget& target,
                        Runtime& runtime, const HandlerOptions& options) {
  if (IsWebSocketRequest(req)) {
    ServeWebSocket(t, req, target, runtime, options);
  } else {
    ServeSpdy(t, req, target, runtime, options);
  }
}

}  // namespace berth::stream
