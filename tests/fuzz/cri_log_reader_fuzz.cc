// Container log files as `berthctl logs` reads them (ctl/cri_log.h): the
// input is a whole log file, CRI or Docker JSON lines.
// Property: FindTailLineStart returns the start of a line.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "ctl/cri_log.h"
#include "fuzz/fuzz_util.h"

using berth::fuzz::AsText;
namespace ctl = berth::ctl;

namespace {

std::string g_file;  // one scratch file, rewritten for every input

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/berth-fuzz-cri-log-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) std::abort();
  close(fd);
  g_file = tmpl;
  std::atexit([] { unlink(g_file.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = AsText(data, size);
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    std::string_view line = text.substr(start, end - start);
    (void)ctl::ParseCriLogLine(line);
    (void)ctl::ParseDockerJsonLogLine(line);
    start = end;
  }

  int fd = open(g_file.c_str(), O_RDWR | O_TRUNC | O_CLOEXEC);
  if (fd < 0) std::abort();
  if (write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  for (int64_t n : {0, 1, 2, 5, 1000}) {
    auto pos = ctl::FindTailLineStart(fd, n);
    FUZZ_CHECK(pos.ok(), "%s", pos.status().ToString().c_str());
    FUZZ_CHECK(*pos >= 0 && static_cast<size_t>(*pos) <= size, "tail %ld at %ld of %zu",
               static_cast<long>(n), static_cast<long>(*pos), size);
    FUZZ_CHECK(*pos == 0 || text[static_cast<size_t>(*pos) - 1] == '\n',
               "tail %ld starts at %ld, not at a line start", static_cast<long>(n),
               static_cast<long>(*pos));
  }
  close(fd);

  ctl::LogReadOptions opts;
  for (int variant = 0; variant < 3; ++variant) {
    opts.tail = variant == 1 ? 2 : -1;
    opts.timestamps = variant == 2;
    opts.limit_bytes = variant == 2 ? 100 : -1;
    if (variant == 2) opts.since_unix_nanos = 1500000000000000000;
    std::ostringstream out, err;
    (void)ctl::ReadCriLog(g_file, opts, out, err);
  }
  return 0;
}
