#include "stream/websocket.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <cstring>
#include <optional>

#include "common/base64.h"

namespace berth::stream::ws {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void RandomBytes(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got > 0) {
      p += got;
      n -= static_cast<size_t>(got);
    }
  }
}

}  // namespace

std::string AcceptKey(std::string_view key) {
  std::string input = std::string(key) + std::string(kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string NewKey() {
  unsigned char raw[16];
  RandomBytes(raw, sizeof(raw));
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
}

bool IsValidKey(std::string_view key) {
  // 16 bytes encode to 22 characters and "==".
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22)) {
    if (!IsBase64Char(c)) return false;
  }
  return true;
}

StatusOr<std::optional<FrameHeader>> ParseFrameHeader(std::string_view buf,
                                                      const FrameLimits& limits) {
  if (buf.size() < 2) return std::optional<FrameHeader>();
  auto b0 = static_cast<uint8_t>(buf[0]);
  auto b1 = static_cast<uint8_t>(buf[1]);
  FrameHeader h;
  h.fin = (b0 & 0x80) != 0;
  if ((b0 & 0x70) != 0) return InvalidArgumentError("WebSocket frame with reserved bits set");
  uint8_t op = b0 & 0x0f;
  switch (op) {
    case 0x0:
    case 0x1:
    case 0x2:
    case 0x8:
    case 0x9:
    case 0xA:
      h.opcode = static_cast<Opcode>(op);
      break;
    default:
      return InvalidArgumentError(StrCat("WebSocket frame with unknown opcode ", op));
  }
  h.masked = (b1 & 0x80) != 0;
  uint64_t len = b1 & 0x7f;
  size_t pos = 2;
  if (len == 126) {
    if (buf.size() < 4) return std::optional<FrameHeader>();
    len = (uint64_t{static_cast<uint8_t>(buf[2])} << 8) | static_cast<uint8_t>(buf[3]);
    pos = 4;
  } else if (len == 127) {
    if (buf.size() < 10) return std::optional<FrameHeader>();
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(buf[2 + i]);
    if ((len >> 63) != 0) return InvalidArgumentError("WebSocket frame length has its top bit set");
    pos = 10;
  }
  if (h.masked) {
    if (buf.size() < pos + 4) return std::optional<FrameHeader>();
    std::memcpy(h.mask, buf.data() + pos, 4);
    pos += 4;
  }
  bool control = op >= 0x8;
  if (control && (!h.fin || len > 125)) {
    return InvalidArgumentError("WebSocket control frame fragmented or longer than 125 bytes");
  }
  if (len > limits.max_payload) {
    return InvalidArgumentError(
        StrCat("WebSocket frame of ", len, " bytes is over the limit of ", limits.max_payload));
  }
  h.payload_length = len;
  h.header_size = pos;
  return std::optional<FrameHeader>(h);
}

std::string EncodeFrameHeader(Opcode opcode, bool fin, uint64_t payload_length,
                              const uint8_t* mask) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | static_cast<uint8_t>(opcode)));
  uint8_t mask_bit = mask != nullptr ? 0x80 : 0;
  if (payload_length < 126) {
    out.push_back(static_cast<char>(mask_bit | payload_length));
  } else if (payload_length <= 0xffff) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(payload_length >> 8));
    out.push_back(static_cast<char>(payload_length & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((payload_length >> (8 * i)) & 0xff));
  }
  if (mask != nullptr) out.append(reinterpret_cast<const char*>(mask), 4);
  return out;
}

std::string EncodeFrame(Opcode opcode, std::string_view payload, bool fin, bool client_mask) {
  uint8_t mask[4];
  if (client_mask) RandomBytes(mask, sizeof(mask));
  std::string out = EncodeFrameHeader(opcode, fin, payload.size(), client_mask ? mask : nullptr);
  size_t start = out.size();
  out.append(payload);
  if (client_mask) ApplyMask(out.data() + start, payload.size(), mask, 0);
  return out;
}

void ApplyMask(char* data, size_t n, const uint8_t mask[4], uint64_t offset) {
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(data[i] ^ mask[(offset + i) & 3]);
}

StatusOr<ClosePayload> ParseClosePayload(std::string_view payload) {
  ClosePayload out;
  if (payload.empty()) return out;
  if (payload.size() == 1) return InvalidArgumentError("WebSocket close payload of one byte");
  out.code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                   static_cast<uint8_t>(payload[1]));
  out.reason = std::string(payload.substr(2));
  return out;
}

std::string EncodeClosePayload(uint16_t code, std::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xff));
  // Control frames carry at most 125 bytes.
  out.append(reason.substr(0, 123));
  return out;
}

std::string EncodeChannelMessage(bool base64, uint8_t channel, std::string_view data) {
  std::string out;
  if (!base64) {
    out.reserve(data.size() + 1);
    out.push_back(static_cast<char>(channel));
    out.append(data);
    return out;
  }
  out.push_back(static_cast<char>('0' + channel));
  out += Base64Encode(data);
  return out;
}

void ChannelDecoder::Begin() {
  have_channel_ = false;
  carry_.clear();
  saw_padding_ = false;
  close_body_.clear();
}

Status ChannelDecoder::Emit(std::string_view decoded) {
  if (decoded.empty()) return OkStatus();
  if (channel_ == kCloseSignalChannel) {
    if (close_body_.size() + decoded.size() > 16) {
      return InvalidArgumentError("close signal message is too long");
    }
    close_body_.append(decoded);
    return OkStatus();
  }
  return on_data_(channel_, decoded);
}

Status ChannelDecoder::Data(std::string_view piece) {
  if (piece.empty()) return OkStatus();
  if (!have_channel_) {
    char c = piece.front();
    piece.remove_prefix(1);
    if (base64_) {
      if (c < '0' || c > '9') return InvalidArgumentError("base64 channel message without a digit");
      channel_ = static_cast<uint8_t>(c - '0');
    } else {
      channel_ = static_cast<uint8_t>(c);
    }
    have_channel_ = true;
  }
  if (!base64_) return Emit(piece);
  std::string decoded;
  for (char c : piece) {
    if (c == '=') {
      saw_padding_ = true;
    } else if (!IsBase64Char(c) || saw_padding_) {
      return InvalidArgumentError("invalid base64 in a channel message");
    }
    carry_.push_back(c);
    if (carry_.size() == 4) {
      if (carry_[2] == '=' && carry_[3] != '=') {
        return InvalidArgumentError("invalid base64 padding in a channel message");
      }
      if (carry_[0] == '=' || carry_[1] == '=') {
        return InvalidArgumentError("invalid base64 padding in a channel message");
      }
      std::optional<std::string> block = Base64Decode(carry_);
      if (!block) return InvalidArgumentError("invalid base64 in a channel message");
      decoded.append(*block);
      carry_.clear();
    }
  }
  return Emit(decoded);
}

Status ChannelDecoder::End() {
  if (!carry_.empty()) return InvalidArgumentError("truncated base64 in a channel message");
  if (have_channel_ && channel_ == kCloseSignalChannel) {
    if (close_body_.size() != 1) {
      return InvalidArgumentError("close signal message must name exactly one channel");
    }
    RETURN_IF_ERROR(on_close_(static_cast<uint8_t>(close_body_[0])));
  }
  Begin();
  return OkStatus();
}

}  // namespace berth::stream::ws
