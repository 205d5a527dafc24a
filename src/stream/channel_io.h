// Kubernetes WebSocket channels as byte endpoints: a channel's outgoing side
// as a ByteSink, and the adapter that feeds a connection's incoming messages
// to a ws::ChannelDecoder. Used by the server handlers and the client.
#pragma once

#include "stream/byte_stream.h"
#include "stream/websocket.h"
#include "stream/ws_conn.h"

namespace berth::stream {

// Each Write is one message on `channel`. The channel protocols have no
// end-of-channel signal that Kubernetes clients understand from a server, so
// CloseWrite does nothing unless `close_signal` (a v5 client's stdin): then it
// sends the v5 close signal.
class ChannelSink final : public ByteSink {
 public:
  ChannelSink(WebSocketConn& conn, bool base64, uint8_t channel, bool close_signal = false)
      : conn_(conn), base64_(base64), channel_(channel), close_signal_(close_signal) {}
  Status Write(std::string_view data) override {
    return conn_.SendMessage(base64_ ? ws::Opcode::kText : ws::Opcode::kBinary,
                             ws::EncodeChannelMessage(base64_, channel_, data));
  }
  Status CloseWrite() override {
    if (!close_signal_) return OkStatus();
    char ch = static_cast<char>(channel_);
    return conn_.SendMessage(
        ws::Opcode::kBinary,
        ws::EncodeChannelMessage(false, ws::kCloseSignalChannel, std::string_view(&ch, 1)));
  }

 private:
  WebSocketConn& conn_;
  const bool base64_;
  const uint8_t channel_;
  const bool close_signal_;
};

class DecoderAdapter final : public WebSocketConn::MessageHandler {
 public:
  explicit DecoderAdapter(ws::ChannelDecoder& d) : d_(d) {}
  Status OnBegin(ws::Opcode) override {
    d_.Begin();
    return OkStatus();
  }
  Status OnData(std::string_view piece) override { return d_.Data(piece); }
  Status OnEnd() override { return d_.End(); }

 private:
  ws::ChannelDecoder& d_;
};

}  // namespace berth::stream
