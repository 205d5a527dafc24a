// WebSocket (RFC 6455) as pure functions: the opening handshake's accept key,
// frame headers, masking, close payloads, and Kubernetes' channel framing on
// top ("channel.k8s.io": one leading channel byte per binary message;
// "base64.channel.k8s.io": a text message whose first character is '0' +
// channel and whose rest is base64). No I/O here; ws_conn.h does that.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::stream::ws {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close status codes (RFC 6455 section 7.4.1).
constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseGoingAway = 1001;
constexpr uint16_t kCloseProtocolError = 1002;
constexpr uint16_t kCloseUnsupportedData = 1003;
constexpr uint16_t kCloseInvalidPayload = 1007;
constexpr uint16_t kClosePolicyViolation = 1008;
constexpr uint16_t kCloseTooBig = 1009;
constexpr uint16_t kCloseInternalError = 1011;

// The value of Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64 of the
// SHA-1 of the key and RFC 6455's GUID.
std::string AcceptKey(std::string_view key);
// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string NewKey();
// Whether `key` is base64 of exactly 16 bytes, as RFC 6455 requires.
bool IsValidKey(std::string_view key);

struct FrameHeader {
  bool fin = true;
  Opcode opcode = Opcode::kBinary;
  bool masked = false;
  uint8_t mask[4] = {0, 0, 0, 0};
  uint64_t payload_length = 0;
  size_t header_size = 0;  // bytes the header took on the wire
};

struct FrameLimits {
  // Longest data frame accepted; payloads are streamed, so this is about
  // sanity, not memory.
  uint64_t max_payload = uint64_t{1} << 40;
};

// Parses the frame header at the start of `buf`. std::nullopt: more bytes
// needed. Errors (INVALID_ARGUMENT) are protocol errors: reserved bits set,
// unknown opcodes, control frames that are fragmented or longer than 125
// bytes, a 64-bit length with its top bit set, or over the limit.
StatusOr<std::optional<FrameHeader>> ParseFrameHeader(std::string_view buf,
                                                      const FrameLimits& limits);
// The header bytes for a frame; `mask` set for client frames.
std::string EncodeFrameHeader(Opcode opcode, bool fin, uint64_t payload_length,
                              const uint8_t* mask);
// A whole frame; a client masks with a fresh random key.
std::string EncodeFrame(Opcode opcode, std::string_view payload, bool fin, bool client_mask);
// XORs `data` with `mask`, `offset` bytes into the payload (so a payload can
// be unmasked in pieces).
void ApplyMask(char* data, size_t n, const uint8_t mask[4], uint64_t offset);

// A Close frame's payload: code and reason (empty payload: no code).
struct ClosePayload {
  std::optional<uint16_t> code;
  std::string reason;
};
StatusOr<ClosePayload> ParseClosePayload(std::string_view payload);
std::string EncodeClosePayload(uint16_t code, std::string_view reason);

// --- Kubernetes channels ---------------------------------------------------

// The channel number of the v5 close signal: a message on channel 255 whose
// one byte names a channel the sender will write no more to.
constexpr uint8_t kCloseSignalChannel = 255;

// The payload of a channel message (binary: channel byte + data; base64:
// '0' + channel, then base64 of data). Send it as Opcode Text when `base64`.
std::string EncodeChannelMessage(bool base64, uint8_t channel, std::string_view data);

// Decodes channel messages as they arrive in pieces (one Begin, any number of
// Data, one End per message) and hands each channel's bytes to `on_data`.
// Thread-compatible (one reader).
class ChannelDecoder {
 public:
  using DataFn = std::function<Status(uint8_t channel, std::string_view data)>;
  // Called for a v5 close signal naming `channel`.
  using CloseFn = std::function<Status(uint8_t channel)>;
  ChannelDecoder(bool base64, DataFn on_data, CloseFn on_close)
      : base64_(base64), on_data_(std::move(on_data)), on_close_(std::move(on_close)) {}

  void Begin();
  Status Data(std::string_view piece);
  Status End();

 private:
  Status Emit(std::string_view decoded);

  const bool base64_;
  DataFn on_data_;
  CloseFn on_close_;
  bool have_channel_ = false;
  uint8_t channel_ = 0;
  std::string carry_;  // base64 characters not yet forming a group of 4
  bool saw_padding_ = false;
  std::string close_body_;  // payload of a close signal message
};

}  // namespace berth::stream::ws
