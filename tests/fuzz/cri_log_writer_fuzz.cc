// berth-monitor's CRI log writer (monitor/cri_log.h) on arbitrary container
// output, read back with berthctl's reader (ctl/cri_log.h).
// Input: byte 0 sets the longest record (1..64), byte 1 seeds the chunking,
// the rest is the output of the container.
// Property: the records read back give exactly the output, less the '\r' of
// each "\r\n", and every record is at most the longest record long.
#include <time.h>

#include <cstdint>
#include <string>

#include "ctl/cri_log.h"
#include "fuzz/fuzz_util.h"
#include "monitor/cri_log.h"

using berth::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_line = 1 + data[0] % 64;
  unsigned chunk_seed = data[1];
  std::string_view output = AsText(data + 2, size - 2);

  struct timespec ts = {1700000000 + static_cast<time_t>(chunk_seed) * 86400 * 30,
                        static_cast<long>(chunk_seed) * 3906251};
  const std::string stamp = berth::monitor::FormatRfc3339Nano(ts);
  berth::monitor::CriLogSplitter splitter("stderr", max_line);
  std::string log;
  for (size_t off = 0; off < output.size();) {
    size_t n = 1 + (chunk_seed * 7 + off) % 23;
    splitter.Feed(output.substr(off, n), stamp, &log);
    off += n;
  }
  splitter.Flush(stamp, &log);

  std::string expected;
  for (size_t i = 0; i < output.size(); ++i) {
    if (output[i] == '\r' && i + 1 < output.size() && output[i + 1] == '\n') continue;
    expected.push_back(output[i]);
  }
  std::string read_back;
  for (size_t start = 0; start < log.size();) {
    size_t nl = log.find('\n', start);
    FUZZ_CHECK(nl != std::string::npos, "record without a newline at %zu", start);
    std::string_view line = std::string_view(log).substr(start, nl + 1 - start);
    auto rec = berth::ctl::ParseCriLogLine(line);
    FUZZ_CHECK(rec.ok(), "record \"%.*s\" does not parse: %s", static_cast<int>(line.size()),
               line.data(), rec.status().ToString().c_str());
    FUZZ_CHECK(rec->stream == berth::ctl::LogStream::kStderr, "stream");
    FUZZ_CHECK(
        rec->timestamp.unix_nanos == static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec,
        "timestamp %s read back as %lld", stamp.c_str(),
        static_cast<long long>(rec->timestamp.unix_nanos));
    std::string_view content = rec->text;
    if (!content.empty() && content.back() == '\n') content.remove_suffix(1);
    FUZZ_CHECK(content.size() <= max_line, "record of %zu bytes, longest allowed %zu",
               content.size(), max_line);
    read_back += rec->text;
    start = nl + 1;
  }
  FUZZ_CHECK(read_back == expected, "wrote %zu bytes, read back %zu", expected.size(),
             read_back.size());
  return 0;
}
