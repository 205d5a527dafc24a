// Encoding and decoding of attach-socket frames (protocol.h): the part of
// the protocol that reads bytes a client sent, kept apart so that it can be
// fuzzed (tests/fuzz/monitor_protocol_fuzz.cc). Header-only, libc only:
// included by the monitor binary and by berthd's client. Pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "monitor/protocol.h"

namespace berth::monitor {

struct DecodedFrame {
  bool ok = false;
  FrameType type = FrameType::kError;
  std::string_view payload;  // points into the received buffer
  const char* error = "";    // why the frame is refused when !ok
};

static_assert(kMaxFramePayload == 32768, "DecodeFrame's message names the limit");

// One received datagram: `buf` holds `stored` bytes of a datagram that was
// `length` bytes long (recv's result with MSG_TRUNC, which can exceed what the
// buffer kept).
inline DecodedFrame DecodeFrame(const char* buf, size_t stored, size_t length) {
  DecodedFrame f;
  if (length == 0) {
    f.error = "empty frame";
  } else if (length > 1 + kMaxFramePayload || length > stored) {
    f.error = "frame larger than 1 + 32768 bytes";
  } else {
    f.ok = true;
    f.type = static_cast<FrameType>(static_cast<uint8_t>(buf[0]));
    f.payload = std::string_view(buf + 1, length - 1);
  }
  return f;
}

// kAttach payload: exactly one byte of AttachFlags.
inline bool DecodeAttachPayload(std::string_view payload, uint8_t* flags) {
  if (payload.size() != 1) return false;
  *flags = static_cast<uint8_t>(payload[0]);
  return true;
}

// kResize payload: rows, cols as big-endian uint16.
inline std::array<char, 4> EncodeResizePayload(uint16_t rows, uint16_t cols) {
  return {static_cast<char>(rows >> 8), static_cast<char>(rows & 0xff),
          static_cast<char>(cols >> 8), static_cast<char>(cols & 0xff)};
}
inline bool DecodeResizePayload(std::string_view payload, uint16_t* rows, uint16_t* cols) {
  if (payload.size() != 4) return false;
  auto byte = [&](size_t i) { return static_cast<uint16_t>(static_cast<uint8_t>(payload[i])); };
  *rows = static_cast<uint16_t>(byte(0) << 8 | byte(1));
  *cols = static_cast<uint16_t>(byte(2) << 8 | byte(3));
  return true;
}

}  // namespace berth::monitor
