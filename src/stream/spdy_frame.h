// SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00 and the 3.1 revision) as
// pure code: frame structs, an incremental decoder with hard limits, encoders,
// and the zlib-compressed header blocks with the SPDY/3 dictionary. The
// session logic (streams, flow control, threads) is in spdy_session.h.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace berth::stream::spdy {

constexpr uint16_t kVersion = 3;

enum class FrameType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

constexpr uint8_t kFlagFin = 0x01;             // SYN_STREAM, SYN_REPLY, HEADERS, data
constexpr uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM
constexpr uint8_t kFlagClearSettings = 0x01;   // SETTINGS

enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

enum class GoAwayStatus : uint32_t { kOk = 0, kProtocolError = 1, kInternalError = 2 };

constexpr uint32_t kSettingsInitialWindowSize = 7;
// Both the per-stream and the session window start at 64 KiB.
constexpr uint32_t kDefaultWindow = 64 * 1024;
constexpr uint32_t kMaxWindow = 0x7fffffff;
constexpr uint32_t kMaxStreamId = 0x7fffffff;
constexpr uint32_t kMaxFrameLength = 0xffffff;

// Name/value pairs; names are lowercase. A name with several values appears
// once per value (on the wire they are joined with NUL bytes).
using HeaderBlock = std::vector<std::pair<std::string, std::string>>;
// The first value of `name` in `headers`.
std::optional<std::string_view> FindHeader(const HeaderBlock& headers, std::string_view name);

struct SynStream {
  uint32_t stream_id = 0;
  uint32_t associated_stream_id = 0;
  uint8_t priority = 0;  // 0 (highest) to 7
  uint8_t flags = 0;
  HeaderBlock headers;
};
struct SynReply {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  HeaderBlock headers;
};
struct RstStream {
  uint32_t stream_id = 0;
  uint32_t status = 0;
};
struct Setting {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits
  uint32_t value = 0;
};
struct Settings {
  uint8_t flags = 0;
  std::vector<Setting> entries;
};
struct Ping {
  uint32_t id = 0;
};
struct GoAway {
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;
};
struct Headers {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  HeaderBlock headers;
};
struct WindowUpdate {
  uint32_t stream_id = 0;  // 0: the session window
  uint32_t delta = 0;
};
// A piece of a data frame. Large frames are handed out in pieces as they
// arrive, so a 16 MiB frame is never buffered whole; `fin` is set on the last
// piece of a frame that carries FLAG_FIN. `frame_start` marks the first piece.
struct Data {
  uint32_t stream_id = 0;
  bool fin = false;
  bool frame_start = false;
  std::string data;
};
// A control frame of a type this code does not know; SPDY says to ignore it.
struct UnknownControl {
  uint16_t type = 0;
};

using Frame = std::variant<SynStream, SynReply, RstStream, Settings, Ping, GoAway, Headers,
                           WindowUpdate, Data, UnknownControl>;

// The SPDY/3 header compression dictionary (1423 bytes).
const std::string& HeaderDictionary();

struct Limits {
  uint32_t max_control_frame = 64 * 1024;  // compressed header blocks included
  size_t max_header_block = 64 * 1024;     // decompressed bytes of one header block
  size_t max_header_pairs = 256;           // name/value pairs in one block
  size_t max_data_piece = 64 * 1024;       // largest Data piece handed out at once
};

// Inflates header blocks. One per session and direction: SPDY compresses all
// header blocks of a direction with one zlib stream.
class HeaderDecompressor {
 public:
  HeaderDecompressor();
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;
  // Inflates one compressed block (it must end on a sync flush) and parses
  // the name/value pairs. Errors (zlib errors, more than
  // limits.max_header_block bytes, malformed blocks) leave the zlib stream
  // unusable: the session must end.
  StatusOr<HeaderBlock> Decompress(std::string_view compressed, const Limits& limits);

 private:
  z_stream z_{};
  bool init_ = false;
  bool broken_ = false;
};

class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;
  std::string Compress(const HeaderBlock& headers);

 private:
  z_stream z_{};
  bool init_ = false;
};

// The uncompressed wire form of a header block, and its parser (exposed for
// tests and fuzzing).
std::string SerializeHeaderBlock(const HeaderBlock& headers);
StatusOr<HeaderBlock> ParseHeaderBlock(std::string_view raw, const Limits& limits);

// Decodes a byte stream into frames. Errors are session errors (the stream of
// bytes cannot be trusted any more): answer GOAWAY PROTOCOL_ERROR and close.
class FrameDecoder {
 public:
  explicit FrameDecoder(Limits limits = {}) : limits_(limits) {}
  void Feed(std::string_view bytes);
  // The next frame, or std::nullopt when more bytes are needed.
  StatusOr<std::optional<Frame>> Next();
  // Bytes fed but not yet returned as frames.
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  StatusOr<Frame> ParseControl(uint16_t version, uint16_t type, uint8_t flags,
                               std::string_view payload);

  Limits limits_;
  HeaderDecompressor decompressor_;
  std::string buf_;
  size_t pos_ = 0;
  // Inside a data frame: its stream, flags and bytes not yet handed out.
  bool in_data_ = false;
  uint32_t data_stream_ = 0;
  uint8_t data_flags_ = 0;
  uint32_t data_left_ = 0;
  bool data_started_ = false;
};

// Encoders. Header blocks go through `hc`, which must be the one compressor of
// this direction, used in the order the frames go on the wire.
std::string EncodeSynStream(const SynStream& f, HeaderCompressor& hc);
std::string EncodeSynReply(const SynReply& f, HeaderCompressor& hc);
std::string EncodeHeaders(const Headers& f, HeaderCompressor& hc);
std::string EncodeRstStream(const RstStream& f);
std::string EncodeSettings(const Settings& f);
std::string EncodePing(const Ping& f);
std::string EncodeGoAway(const GoAway& f);
std::string EncodeWindowUpdate(const WindowUpdate& f);
// A data frame; `data` must be at most kMaxFrameLength bytes.
std::string EncodeData(uint32_t stream_id, std::string_view data, bool fin);

}  // namespace berth::stream::spdy
