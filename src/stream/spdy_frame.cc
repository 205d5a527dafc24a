#include "stream/spdy_frame.h"

#include <algorithm>
#include <cstring>

namespace berth::stream::spdy {
namespace {

uint32_t Load32(std::string_view s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[at + 3])};
}

void Put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::string ControlHeader(FrameType type, uint8_t flags, size_t length) {
  std::string out;
  Put32(out, 0x80000000u | (uint32_t{kVersion} << 16) | static_cast<uint16_t>(type));
  Put32(out, (uint32_t{flags} << 24) | static_cast<uint32_t>(length & kMaxFrameLength));
  return out;
}

Status FrameError(std::string_view what) {
  return InvalidArgumentError(StrCat("SPDY protocol error: ", what));
}

}  // namespace

std::optional<std::string_view> FindHeader(const HeaderBlock& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string SerializeHeaderBlock(const HeaderBlock& headers) {
  // Values of one name travel together, NUL-separated, in first-seen order.
  std::vector<std::pair<std::string, std::string>> merged;
  for (const auto& header : headers) {
    auto it = std::find_if(merged.begin(), merged.end(),
                           [&](const auto& p) { return p.first == header.first; });
    if (it == merged.end()) {
      merged.push_back(header);
    } else {
      it->second.push_back('\0');
      it->second += header.second;
    }
  }
  std::string out;
  Put32(out, static_cast<uint32_t>(merged.size()));
  for (const auto& [name, value] : merged) {
    Put32(out, static_cast<uint32_t>(name.size()));
    out += name;
    Put32(out, static_cast<uint32_t>(value.size()));
    out += value;
  }
  return out;
}

StatusOr<HeaderBlock> ParseHeaderBlock(std::string_view raw, const Limits& limits) {
  if (raw.size() < 4) return FrameError("header block shorter than its count");
  uint32_t count = Load32(raw, 0);
  if (count > limits.max_header_pairs) {
    return FrameError(
        StrCat("header block with ", count, " pairs (limit ", limits.max_header_pairs, ")"));
  }
  size_t pos = 4;
  HeaderBlock out;
  auto take = [&](std::string_view& field) -> Status {
    if (raw.size() - pos < 4) return FrameError("truncated header block");
    uint32_t len = Load32(raw, pos);
    pos += 4;
    if (len > raw.size() - pos) return FrameError("header length past the end of the block");
    field = raw.substr(pos, len);
    pos += len;
    return OkStatus();
  };
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view name;
    std::string_view value;
    RETURN_IF_ERROR(take(name));
    RETURN_IF_ERROR(take(value));
    if (name.empty()) return FrameError("empty header name");
    std::string lname(name);
    for (char& c : lname) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c == '\0') return FrameError("NUL in a header name");
    }
    while (true) {
      size_t nul = value.find('\0');
      out.emplace_back(lname, std::string(value.substr(0, nul)));
      if (nul == std::string_view::npos) break;
      value.remove_prefix(nul + 1);
      if (out.size() > limits.max_header_pairs) return FrameError("too many header values");
    }
  }
  if (pos != raw.size()) return FrameError("bytes after the last header pair");
  return out;
}

HeaderDecompressor::HeaderDecompressor() = default;
HeaderDecompressor::~HeaderDecompressor() {
  if (init_) inflateEnd(&z_);
}

StatusOr<HeaderBlock> HeaderDecompressor::Decompress(std::string_view compressed,
                                                     const Limits& limits) {
  if (broken_) return FrameError("header compression state is broken");
  if (!init_) {
    if (inflateInit(&z_) != Z_OK) return InternalError("inflateInit failed");
    init_ = true;
  }
  // Any failure below leaves the shared zlib stream out of step with the
  // peer's: nothing later can be decoded.
  broken_ = true;
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z_.avail_in = static_cast<uInt>(compressed.size());
  std::string raw;
  char buf[4096];
  while (true) {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof(buf);
    int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      const std::string& dict = HeaderDictionary();
      if (inflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(dict.data()),
                               static_cast<uInt>(dict.size())) != Z_OK) {
        return FrameError("header block compressed with another dictionary");
      }
      continue;
    }
    raw.append(buf, sizeof(buf) - z_.avail_out);
    if (raw.size() > limits.max_header_block) {
      return FrameError(StrCat("header block inflates past ", limits.max_header_block, " bytes"));
    }
    if (rc == Z_BUF_ERROR && z_.avail_in == 0) break;  // no progress possible: all consumed
    if (rc != Z_OK) return FrameError(StrCat("corrupt compressed header block (zlib ", rc, ")"));
    if (z_.avail_in == 0 && z_.avail_out != 0) break;
  }
  ASSIGN_OR_RETURN(HeaderBlock headers, ParseHeaderBlock(raw, limits));
  broken_ = false;
  return headers;
}

HeaderCompressor::HeaderCompressor() = default;
HeaderCompressor::~HeaderCompressor() {
  if (init_) deflateEnd(&z_);
}

std::string HeaderCompressor::Compress(const HeaderBlock& headers) {
  if (!init_) {
    // A 2 KiB window and the smallest hash: header blocks here are a few
    // dozen bytes, and each session keeps one compressor for its lifetime.
    deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 11, 1, Z_DEFAULT_STRATEGY);
    const std::string& dict = HeaderDictionary();
    deflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(dict.data()),
                         static_cast<uInt>(dict.size()));
    init_ = true;
  }
  std::string raw = SerializeHeaderBlock(headers);
  z_.next_in = reinterpret_cast<Bytef*>(raw.data());
  z_.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  char buf[4096];
  do {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof(buf);
    deflate(&z_, Z_SYNC_FLUSH);
    out.append(buf, sizeof(buf) - z_.avail_out);
  } while (z_.avail_out == 0);
  return out;
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

StatusOr<std::optional<Frame>> FrameDecoder::Next() {
  std::string_view avail = std::string_view(buf_).substr(pos_);
  if (in_data_) {
    if (data_left_ == 0 || !avail.empty()) {
      size_t n = std::min<size_t>({avail.size(), data_left_, limits_.max_data_piece});
      Data d;
      d.stream_id = data_stream_;
      d.frame_start = !data_started_;
      d.data.assign(avail.substr(0, n));
      data_left_ -= static_cast<uint32_t>(n);
      pos_ += n;
      data_started_ = true;
      if (data_left_ == 0) {
        in_data_ = false;
        d.fin = (data_flags_ & kFlagFin) != 0;
      }
      return std::optional<Frame>(std::move(d));
    }
    return std::optional<Frame>();
  }
  if (avail.size() < 8) return std::optional<Frame>();
  uint32_t w0 = Load32(avail, 0);
  uint32_t w1 = Load32(avail, 4);
  uint8_t flags = static_cast<uint8_t>(w1 >> 24);
  uint32_t length = w1 & kMaxFrameLength;
  if ((w0 & 0x80000000u) != 0) {
    if (length > limits_.max_control_frame) {
      return FrameError(
          StrCat("control frame of ", length, " bytes (limit ", limits_.max_control_frame, ")"));
    }
    if (avail.size() < 8 + size_t{length}) return std::optional<Frame>();
    std::string_view payload = avail.substr(8, length);
    pos_ += 8 + size_t{length};
    ASSIGN_OR_RETURN(Frame f, ParseControl(static_cast<uint16_t>((w0 >> 16) & 0x7fff),
                                           static_cast<uint16_t>(w0 & 0xffff), flags, payload));
    return std::optional<Frame>(std::move(f));
  }
  uint32_t stream = w0 & 0x7fffffff;
  if (stream == 0) return FrameError("data frame on stream 0");
  pos_ += 8;
  in_data_ = true;
  data_stream_ = stream;
  data_flags_ = flags;
  data_left_ = length;
  data_started_ = false;
  return Next();
}

StatusOr<Frame> FrameDecoder::ParseControl(uint16_t version, uint16_t type, uint8_t flags,
                                           std::string_view p) {
  if (version != kVersion) return FrameError(StrCat("unsupported SPDY version ", version));
  auto need = [&](size_t n, bool exact) -> Status {
    if (exact ? p.size() != n : p.size() < n) {
      return FrameError(StrCat("control frame type ", type, " with bad length ", p.size()));
    }
    return OkStatus();
  };
  switch (static_cast<FrameType>(type)) {
    case FrameType::kSynStream: {
      RETURN_IF_ERROR(need(10, false));
      SynStream f;
      f.stream_id = Load32(p, 0) & 0x7fffffff;
      f.associated_stream_id = Load32(p, 4) & 0x7fffffff;
      f.priority = static_cast<uint8_t>(static_cast<uint8_t>(p[8]) >> 5);
      f.flags = flags;
      ASSIGN_OR_RETURN(f.headers, decompressor_.Decompress(p.substr(10), limits_));
      if (f.stream_id == 0) return FrameError("SYN_STREAM for stream 0");
      return Frame(std::move(f));
    }
    case FrameType::kSynReply: {
      RETURN_IF_ERROR(need(4, false));
      SynReply f;
      f.stream_id = Load32(p, 0) & 0x7fffffff;
      f.flags = flags;
      ASSIGN_OR_RETURN(f.headers, decompressor_.Decompress(p.substr(4), limits_));
      if (f.stream_id == 0) return FrameError("SYN_REPLY for stream 0");
      return Frame(std::move(f));
    }
    case FrameType::kHeaders: {
      RETURN_IF_ERROR(need(4, false));
      Headers f;
      f.stream_id = Load32(p, 0) & 0x7fffffff;
      f.flags = flags;
      ASSIGN_OR_RETURN(f.headers, decompressor_.Decompress(p.substr(4), limits_));
      if (f.stream_id == 0) return FrameError("HEADERS for stream 0");
      return Frame(std::move(f));
    }
    case FrameType::kRstStream: {
      RETURN_IF_ERROR(need(8, true));
      RstStream f{Load32(p, 0) & 0x7fffffff, Load32(p, 4)};
      if (f.stream_id == 0) return FrameError("RST_STREAM for stream 0");
      if (f.status == 0) return FrameError("RST_STREAM with status 0");
      return Frame(f);
    }
    case FrameType::kSettings: {
      RETURN_IF_ERROR(need(4, false));
      uint32_t count = Load32(p, 0);
      if (count > (p.size() - 4) / 8 || p.size() != 4 + size_t{count} * 8) {
        return FrameError("SETTINGS count does not match its length");
      }
      Settings f;
      f.flags = flags;
      f.entries.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        uint32_t w = Load32(p, 4 + 8 * size_t{i});
        f.entries.push_back(
            Setting{static_cast<uint8_t>(w >> 24), w & 0xffffff, Load32(p, 8 + 8 * size_t{i})});
      }
      return Frame(std::move(f));
    }
    case FrameType::kPing: {
      RETURN_IF_ERROR(need(4, true));
      return Frame(Ping{Load32(p, 0)});
    }
    case FrameType::kGoAway: {
      RETURN_IF_ERROR(need(8, true));
      return Frame(GoAway{Load32(p, 0) & 0x7fffffff, Load32(p, 4)});
    }
    case FrameType::kWindowUpdate: {
      RETURN_IF_ERROR(need(8, true));
      return Frame(WindowUpdate{Load32(p, 0) & 0x7fffffff, Load32(p, 4) & 0x7fffffff});
    }
  }
  return Frame(UnknownControl{type});
}

std::string EncodeSynStream(const SynStream& f, HeaderCompressor& hc) {
  std::string block = hc.Compress(f.headers);
  std::string out = ControlHeader(FrameType::kSynStream, f.flags, 10 + block.size());
  Put32(out, f.stream_id & 0x7fffffff);
  Put32(out, f.associated_stream_id & 0x7fffffff);
  out.push_back(static_cast<char>((f.priority & 0x7) << 5));
  out.push_back('\0');  // slot
  out += block;
  return out;
}

std::string EncodeSynReply(const SynReply& f, HeaderCompressor& hc) {
  std::string block = hc.Compress(f.headers);
  std::string out = ControlHeader(FrameType::kSynReply, f.flags, 4 + block.size());
  Put32(out, f.stream_id & 0x7fffffff);
  out += block;
  return out;
}

std::string EncodeHeaders(const Headers& f, HeaderCompressor& hc) {
  std::string block = hc.Compress(f.headers);
  std::string out = ControlHeader(FrameType::kHeaders, f.flags, 4 + block.size());
  Put32(out, f.stream_id & 0x7fffffff);
  out += block;
  return out;
}

std::string EncodeRstStream(const RstStream& f) {
  std::string out = ControlHeader(FrameType::kRstStream, 0, 8);
  Put32(out, f.stream_id & 0x7fffffff);
  Put32(out, f.status);
  return out;
}

std::string EncodeSettings(const Settings& f) {
  std::string out = ControlHeader(FrameType::kSettings, f.flags, 4 + 8 * f.entries.size());
  Put32(out, static_cast<uint32_t>(f.entries.size()));
  for (const Setting& s : f.entries) {
    Put32(out, (uint32_t{s.flags} << 24) | (s.id & 0xffffff));
    Put32(out, s.value);
  }
  return out;
}

std::string EncodePing(const Ping& f) {
  std::string out = ControlHeader(FrameType::kPing, 0, 4);
  Put32(out, f.id);
  return out;
}

std::string EncodeGoAway(const GoAway& f) {
  std::string out = ControlHeader(FrameType::kGoAway, 0, 8);
  Put32(out, f.last_good_stream_id & 0x7fffffff);
  Put32(out, f.status);
  return out;
}

std::string EncodeWindowUpdate(const WindowUpdate& f) {
  std::string out = ControlHeader(FrameType::kWindowUpdate, 0, 8);
  Put32(out, f.stream_id & 0x7fffffff);
  Put32(out, f.delta & 0x7fffffff);
  return out;
}

std::string EncodeData(uint32_t stream_id, std::string_view data, bool fin) {
  std::string out;
  out.reserve(8 + data.size());
  Put32(out, stream_id & 0x7fffffff);
  Put32(out, (uint32_t{fin ? kFlagFin : uint8_t{0}} << 24) |
                 static_cast<uint32_t>(data.size() & kMaxFrameLength));
  out += data;
  return out;
}

}  // namespace berth::stream::spdy
