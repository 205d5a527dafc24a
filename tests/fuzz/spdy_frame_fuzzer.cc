// SPDY/3.1 frames as they arrive from a client: the frame decoder (control
// frames, data frames handed out in pieces, limits) and the zlib-compressed
// header blocks. The first byte picks how the rest is used:
//   0-127:   raw bytes on the wire, fed in pieces of (byte % 61 + 1) bytes;
//   128-191: an uncompressed header block, compressed with our compressor and
//            sent in a SYN_STREAM, so the inflate and block parser see valid
//            zlib streams with hostile content;
//   192-255: bytes handed to the header decompressor as a compressed block.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "stream/spdy_frame.h"

using namespace berth::stream::spdy;

namespace {

void DrainFrames(FrameDecoder& d) {
  while (true) {
    auto f = d.Next();
    if (!f.ok() || !f->has_value()) return;
    // Touch what a session reads.
    if (auto* syn = std::get_if<SynStream>(&**f)) {
      (void)FindHeader(syn->headers, "streamtype");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits limits;
  limits.max_control_frame = 16 * 1024;
  limits.max_header_block = 16 * 1024;
  limits.max_data_piece = 4096;
  if (mode < 128) {
    FrameDecoder d(limits);
    size_t step = mode % 61 + 1;
    for (size_t i = 0; i < rest.size(); i += step) {
      d.Feed(rest.substr(i, step));
      DrainFrames(d);
    }
  } else if (mode < 192) {
    // The block parser on its own, then through compression.
    (void)ParseHeaderBlock(rest, limits);
    HeaderCompressor hc;
    HeaderBlock block;
    auto parsed = ParseHeaderBlock(rest, limits);
    if (parsed.ok()) block = *parsed;
    SynStream syn;
    syn.stream_id = 1;
    syn.headers = block;
    std::string wire = EncodeSynStream(syn, hc);
    FrameDecoder d(limits);
    d.Feed(wire);
    DrainFrames(d);
  } else {
    HeaderDecompressor dec;
    (void)dec.Decompress(rest, limits);
    (void)dec.Decompress(rest, limits);  // a broken stream must stay refused
  }
  return 0;
}
