// What the remote command and port-forward code parses from peers: the resize
// stream's TerminalSize JSON (from clients), the error stream's Status JSON
// (from servers, in the client library) and port lists (from URLs).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stream/remotecommand.h"

using namespace berth::stream;
namespace rc = berth::stream::remotecommand;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  rc::TerminalSizeDecoder decoder;
  size_t step = size > 0 ? data[0] % 17 + 1 : 1;
  for (size_t i = 0; i < in.size(); i += step) {
    if (!decoder.Feed(in.substr(i, step)).ok()) break;
  }
  (void)rc::DecodeErrorStream(rc::ErrorFormat::kStatus, in);
  (void)rc::DecodeErrorStream(rc::ErrorFormat::kText, in);
  std::vector<std::string> ports;
  size_t start = 0;
  for (size_t i = 0; i <= in.size() && ports.size() < 16; ++i) {
    if (i == in.size() || in[i] == '&') {
      ports.emplace_back(in.substr(start, i - start));
      start = i + 1;
    }
  }
  (void)rc::ParsePortList(ports);
  return 0;
}
