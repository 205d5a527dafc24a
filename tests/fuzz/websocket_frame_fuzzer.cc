// WebSocket frames from a client, through the same reader the server uses
// (WebSocketConn::ReadMessage: headers, masking, fragmentation, control
// frames, the closing handshake) into Kubernetes' channel decoder. The first
// byte picks the binary or base64 channel protocol and the read size.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "stream/transport.h"
#include "stream/websocket.h"
#include "stream/ws_conn.h"

using namespace berth;
using namespace berth::stream;

namespace {

// Reads come from the input in pieces; writes go nowhere.
class MemoryTransport final : public Transport {
 public:
  MemoryTransport(std::string_view in, size_t step)
      : Transport(UniqueFd(), "fuzz"), in_(in), step_(step) {}
  void ShutdownWrite() override {}

 protected:
  StatusOr<size_t> ReadSome(std::span<char> buf, std::optional<Clock::time_point>) override {
    size_t n = std::min({buf.size(), in_.size(), step_});
    std::memcpy(buf.data(), in_.data(), n);
    in_.remove_prefix(n);
    return n;
  }
  Status WriteAll(std::string_view) override { return OkStatus(); }

 private:
  std::string_view in_;
  size_t step_;
};

class Adapter final : public WebSocketConn::MessageHandler {
 public:
  explicit Adapter(ws::ChannelDecoder& d) : d_(d) {}
  Status OnBegin(ws::Opcode) override {
    d_.Begin();
    return OkStatus();
  }
  Status OnData(std::string_view piece) override { return d_.Data(piece); }
  Status OnEnd() override { return d_.End(); }

 private:
  ws::ChannelDecoder& d_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool base64 = data[0] & 1;
  bool client = data[0] & 2;
  size_t step = (data[0] >> 2) + 1;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  // The header parser directly, on every offset.
  ws::FrameLimits limits;
  for (size_t i = 0; i < rest.size() && i < 64; ++i)
    (void)ws::ParseFrameHeader(rest.substr(i), limits);
  (void)ws::ParseClosePayload(rest.substr(0, 125));

  MemoryTransport t(rest, step);
  WebSocketConn conn(t, client, 1 << 20);  // writer thread not started: writes only queue
  size_t bytes = 0;
  ws::ChannelDecoder decoder(
      base64,
      [&](uint8_t, std::string_view d) {
        bytes += d.size();
        return OkStatus();
      },
      [](uint8_t) { return OkStatus(); });
  Adapter adapter(decoder);
  for (int i = 0; i < 10000; ++i) {
    StatusOr<bool> more = conn.ReadMessage(adapter);
    if (!more.ok() || !*more) break;
  }
  return 0;
}
