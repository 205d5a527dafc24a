// The streaming server's request handlers (internal to stream/): each answers
// one upgraded HTTP request on its connection's thread and returns when the
// session is over. The token was already consumed; a failed negotiation is
// answered with the status code the kubelet uses.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stream/http.h"
#include "stream/runtime.h"
#include "stream/transport.h"

namespace berth::stream {

struct HandlerOptions {
  std::chrono::milliseconds stream_creation_timeout{30000};
  // After the server's last frame, how long to wait for the client to close.
  std::chrono::milliseconds linger{5000};
};

// Exec or attach: what the token was issued for.
struct CommandTarget {
  bool attach = false;
  ExecRequest exec;              // when !attach
  AttachRequest attach_request;  // when attach
  bool stdin() const { return attach ? attach_request.stdin : exec.stdin; }
  bool stdout() const { return attach ? attach_request.stdout : exec.stdout; }
  bool stderr() const { return attach ? attach_request.stderr : exec.stderr; }
  bool tty() const { return attach ? attach_request.tty : exec.tty; }
  const std::string& container_id() const {
    return attach ? attach_request.container_id : exec.container_id;
  }
};

void ServeRemoteCommand(Transport& t, const HttpRequest& req, const CommandTarget& target,
                        Runtime& runtime, const HandlerOptions& options);
void ServePortForward(Transport& t, const HttpRequest& req, const PortForwardRequest& target,
                      Runtime& runtime, const HandlerOptions& options);

// Writes a plain-text response and closes the connection gracefully (the
// client gets the whole body even if it is still sending).
void RespondAndClose(Transport& t, int status, std::string_view body,
                     const std::vector<std::pair<std::string, std::string>>& headers = {});

// Request classification shared by the handlers.
bool IsWebSocketRequest(const HttpRequest& req);
bool IsSpdyUpgradeRequest(const HttpRequest& req);
// Checks a WebSocket opening handshake (GET, version 13, a valid key) and
// answers the failure itself (false).
bool CheckWebSocketHandshake(Transport& t, const HttpRequest& req);
// The 101 answer to a WebSocket handshake; `protocol` may be empty.
std::string WebSocketAcceptResponse(const HttpRequest& req, std::string_view protocol);

}  // namespace berth::stream
