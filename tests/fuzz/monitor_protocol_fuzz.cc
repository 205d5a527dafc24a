// What berthd reads from berth-monitor and what the monitor reads from
// attach clients (monitor/protocol.h, client.h, frame.h): the exit file, the
// sync pipe report, RFC 3339 times and attach frames, all on the same bytes.
// Properties: a time the monitor writes parses back to the same instant, and
// resize payloads decode to what was encoded.
#include <time.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_util.h"
#include "monitor/client.h"
#include "monitor/cri_log.h"
#include "monitor/frame.h"

using berth::fuzz::AsText;
namespace monitor = berth::monitor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = AsText(data, size);
  auto exit = monitor::ParseExitFile(text);
  if (exit.ok()) (void)exit->exit_code;
  (void)monitor::ParseSyncReport(text, "fuzz");
  (void)monitor::ParseRfc3339Nano(text);

  monitor::DecodedFrame f = monitor::DecodeFrame(reinterpret_cast<const char*>(data), size, size);
  if (f.ok) {
    uint8_t flags = 0;
    uint16_t rows = 0, cols = 0;
    if (monitor::DecodeAttachPayload(f.payload, &flags)) {
      FUZZ_CHECK(f.payload.size() == 1, "attach payload of %zu bytes", f.payload.size());
    }
    if (monitor::DecodeResizePayload(f.payload, &rows, &cols)) {
      auto again = monitor::EncodeResizePayload(rows, cols);
      FUZZ_CHECK(std::string_view(again.data(), again.size()) == f.payload,
                 "resize %u x %u encodes differently", rows, cols);
    }
  }

  if (size >= 12) {
    // Any instant the monitor can stamp, from year 0 to 9999.
    int64_t secs = 0;
    uint32_t nanos = 0;
    std::memcpy(&secs, data, 8);
    std::memcpy(&nanos, data + 8, 4);
    constexpr int64_t kYear0 = -62167219200, kYear9999End = 253402300799;
    secs = kYear0 + static_cast<int64_t>(static_cast<uint64_t>(secs) %
                                         static_cast<uint64_t>(kYear9999End - kYear0 + 1));
    struct timespec ts = {static_cast<time_t>(secs), static_cast<long>(nanos % 1000000000)};
    std::string stamp = monitor::FormatRfc3339Nano(ts);
    auto parsed = monitor::ParseRfc3339Nano(stamp);
    // Nanoseconds since 1970 fit int64 from 1677 to 2262 only; outside that the
    // parser must refuse rather than wrap around.
    constexpr int64_t kMinSecs = -9223372036, kMaxSecs = 9223372035;
    if (secs >= kMinSecs && secs <= kMaxSecs) {
      FUZZ_CHECK(parsed.ok(), "%s does not parse: %s", stamp.c_str(),
                 parsed.status().ToString().c_str());
      FUZZ_CHECK(*parsed == secs * 1000000000 + ts.tv_nsec, "%s parses as %lld", stamp.c_str(),
                 static_cast<long long>(*parsed));
    } else if (secs < kMinSecs || secs > kMaxSecs + 1) {
      FUZZ_CHECK(!parsed.ok(), "%s is out of range but parses as %lld", stamp.c_str(),
                 static_cast<long long>(*parsed));
    }
  }
  return 0;
}
