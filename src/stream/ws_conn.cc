#include "stream/ws_conn.h"

#include <algorithm>

namespace berth::stream {
namespace {
constexpr size_t kReadChunk = 32 * 1024;
}  // namespace

WebSocketConn::WebSocketConn(Transport& transport, bool client, size_t max_queued_write_bytes)
    : transport_(transport), client_(client), writer_(transport_, max_queued_write_bytes) {}

WebSocketConn::~WebSocketConn() { Cancel(); }

void WebSocketConn::Start() { writer_.Start(); }

void WebSocketConn::Cancel() { writer_.Cancel(); }

std::optional<ws::ClosePayload> WebSocketConn::peer_close() const {
  std::lock_guard lock(mu_);
  return peer_close_;
}

StatusOr<bool> WebSocketConn::Fill(size_t n) {
  if (rpos_ > 0 && rpos_ >= rbuf_.size() / 2) {
    rbuf_.erase(0, rpos_);
    rpos_ = 0;
  }
  char chunk[kReadChunk];
  while (rbuf_.size() - rpos_ < n) {
    ASSIGN_OR_RETURN(size_t got, transport_.Read(std::span<char>(chunk, sizeof(chunk))));
    if (got == 0) return false;
    rbuf_.append(chunk, got);
  }
  return true;
}

void WebSocketConn::SendCloseOnce(uint16_t code, std::string_view reason, bool after_data) {
  {
    std::lock_guard lock(mu_);
    if (close_sent_) return;
    close_sent_ = true;
  }
  std::string frame =
      ws::EncodeFrame(ws::Opcode::kClose, ws::EncodeClosePayload(code, reason), true, client_);
  // A normal close must not overtake the messages before it: the peer stops
  // reading at the Close.
  if (after_data) {
    (void)writer_.EnqueueData(std::move(frame));
  } else {
    (void)writer_.EnqueueControl(std::move(frame));
  }
}

Status WebSocketConn::ProtocolError(std::string_view what) {
  SendCloseOnce(ws::kCloseProtocolError, what, false);
  writer_.Finish(true, Clock::now() + std::chrono::seconds(1));
  return InvalidArgumentError(StrCat("WebSocket protocol error: ", what));
}

StatusOr<bool> WebSocketConn::ReadMessage(MessageHandler& handler) {
  while (true) {
    // The longest header is 14 bytes; parse with whatever is there, read more
    // while it is incomplete.
    std::optional<ws::FrameHeader> header;
    while (true) {
      StatusOr<std::optional<ws::FrameHeader>> h =
          ws::ParseFrameHeader(std::string_view(rbuf_).substr(rpos_), limits_);
      if (!h.ok()) return ProtocolError(h.status().message());
      if (h->has_value()) {
        header = **h;
        break;
      }
      ASSIGN_OR_RETURN(bool more, Fill(rbuf_.size() - rpos_ + 1));
      if (!more) return false;
    }
    if (header->masked == client_) {
      return ProtocolError(client_ ? "masked frame from the server"
                                   : "unmasked frame from the client");
    }
    rpos_ += header->header_size;
    bool control = static_cast<uint8_t>(header->opcode) >= 0x8;
    if (control) {
      ASSIGN_OR_RETURN(bool more, Fill(header->payload_length));
      if (!more) return false;
      std::string payload = rbuf_.substr(rpos_, header->payload_length);
      rpos_ += header->payload_length;
      if (header->masked) ws::ApplyMask(payload.data(), payload.size(), header->mask, 0);
      switch (header->opcode) {
        case ws::Opcode::kPing:
          RETURN_IF_ERROR(
              writer_.EnqueueControl(ws::EncodeFrame(ws::Opcode::kPong, payload, true, client_)));
          break;
        case ws::Opcode::kPong:
          break;
        case ws::Opcode::kClose: {
          StatusOr<ws::ClosePayload> cp = ws::ParseClosePayload(payload);
          if (!cp.ok()) return ProtocolError(cp.status().message());
          {
            std::lock_guard lock(mu_);
            peer_close_ = *cp;
          }
          SendCloseOnce(cp->code.value_or(ws::kCloseNormal), "", true);
          return false;
        }
        default:
          break;
      }
      continue;
    }
    if (header->opcode == ws::Opcode::kContinuation) {
      if (!in_message_) return ProtocolError("continuation frame outside a message");
    } else {
      if (in_message_) return ProtocolError("new message before the previous one ended");
      in_message_ = true;
      RETURN_IF_ERROR(handler.OnBegin(header->opcode));
    }
    uint64_t left = header->payload_length;
    uint64_t offset = 0;
    while (left > 0) {
      if (rpos_ == rbuf_.size()) {
        ASSIGN_OR_RETURN(bool more, Fill(1));
        if (!more) return false;
      }
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, rbuf_.size() - rpos_));
      char* piece = rbuf_.data() + rpos_;
      if (header->masked) ws::ApplyMask(piece, n, header->mask, offset);
      rpos_ += n;
      left -= n;
      offset += n;
      RETURN_IF_ERROR(handler.OnData(std::string_view(piece, n)));
    }
    if (header->fin) {
      in_message_ = false;
      RETURN_IF_ERROR(handler.OnEnd());
      return true;
    }
  }
}

Status WebSocketConn::SendMessage(ws::Opcode opcode, std::string_view payload) {
  return writer_.EnqueueData(ws::EncodeFrame(opcode, payload, true, client_));
}

void WebSocketConn::Close(uint16_t code, std::string_view reason, Clock::time_point deadline) {
  SendCloseOnce(code, reason, true);
  writer_.Finish(/*shutdown_write=*/true, deadline);
}

}  // namespace berth::stream
