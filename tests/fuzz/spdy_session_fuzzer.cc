// A server-side SPDY session fed hostile bytes: stream ids out of order,
// data on unknown or closed streams, window updates that overflow, settings,
// resets, pings, GOAWAY, in any order. The session must neither crash nor
// hang, and its streams must stay usable (reads end, writes fail cleanly).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "stream/spdy_session.h"
#include "stream/transport.h"

using namespace berth;
using namespace berth::stream;

namespace {

// Reads come from the input in pieces, then EOF; writes go nowhere.
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 256 * 1024) return 0;
  size_t step = data[0] % 97 + 1;
  MemoryTransport t(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), step);
  SpdySession::Options options;
  options.server = true;
  // Larger than any input: the reader never waits for a consumer here.
  options.stream_window = 1 << 20;
  options.session_window = 1 << 20;
  options.max_peer_streams = 16;
  std::mutex mu;
  std::vector<std::shared_ptr<SpdyStream>> streams;
  {
    SpdySession session(t, options);
    session.Start(
        [&](std::shared_ptr<SpdyStream> s) {
          std::lock_guard lock(mu);
          streams.push_back(std::move(s));
        },
        [](const Status&) {});
    session.WaitClosed(std::chrono::milliseconds(10000));
    for (auto& s : streams) {
      char buf[256];
      while (true) {
        StatusOr<size_t> n = s->Read(buf);
        if (!n.ok() || *n == 0) break;
      }
      (void)s->header("streamtype");
      (void)s->Write("x");
      (void)s->CloseWrite();
      s->Reset();
    }
  }
  return 0;
}
