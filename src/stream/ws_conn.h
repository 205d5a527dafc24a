// A WebSocket connection after the opening handshake, for either end:
// messages are read on the caller's thread (payloads streamed in pieces,
// pings answered, the closing handshake done) and written through a
// FrameWriter thread. Servers require masked frames from clients; clients
// mask theirs.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "stream/frame_writer.h"
#include "stream/transport.h"
#include "stream/websocket.h"

namespace berth::stream {

class WebSocketConn {
 public:
  // What ReadMessage hands a data message to, in pieces.
  class MessageHandler {
   public:
    virtual ~MessageHandler() = default;
    virtual Status OnBegin(ws::Opcode opcode) = 0;
    // May block (back-pressure: the reader stops reading the socket).
    virtual Status OnData(std::string_view piece) = 0;
    virtual Status OnEnd() = 0;
  };

  // `transport` must outlive the connection.
  WebSocketConn(Transport& transport, bool client, size_t max_queued_write_bytes);
  ~WebSocketConn();  // Cancel(); joins the writer
  WebSocketConn(const WebSocketConn&) = delete;
  WebSocketConn& operator=(const WebSocketConn&) = delete;

  void Start();  // starts the writer thread

  // Reads frames until one whole data message went to `handler` (true) or the
  // peer closed (a Close frame, answered; or EOF): false. Errors are protocol
  // or transport errors; a protocol error is answered with Close 1002 first.
  // One reader thread at a time.
  StatusOr<bool> ReadMessage(MessageHandler& handler);

  // Queues a whole data message (one frame). Thread-safe; blocks for queue space.
  Status SendMessage(ws::Opcode opcode, std::string_view payload);
  // Queues Close (once), sends everything queued and half-closes the TCP
  // connection, waiting at most until `deadline`. The peer's answering Close
  // arrives through ReadMessage; the owner then Cancel()s.
  void Close(uint16_t code, std::string_view reason, Clock::time_point deadline);
  // Abrupt end. Thread-safe.
  void Cancel();
  // The peer's Close frame, once one arrived.
  std::optional<ws::ClosePayload> peer_close() const;
  Transport& transport() { return transport_; }

 private:
  // Makes at least `n` bytes available in rbuf_ (false at EOF).
  StatusOr<bool> Fill(size_t n);
  Status ProtocolError(std::string_view what);
  void SendCloseOnce(uint16_t code, std::string_view reason, bool after_data);

  Transport& transport_;
  const bool client_;
  FrameWriter writer_;
  std::string rbuf_;
  size_t rpos_ = 0;
  bool in_message_ = false;
  ws::FrameLimits limits_;

  mutable std::mutex mu_;
  bool close_sent_ = false;
  std::optional<ws::ClosePayload> peer_close_;
};

}  // namespace berth::stream
