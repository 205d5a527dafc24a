// Reading container log files the way `crictl logs` does (it uses the
// kubelet's log reader). A CRI log file holds one record per line:
//
//   2016-10-06T00:17:09.669794202Z stdout P first part of a long line
//   2016-10-06T00:17:09.669794203Z stdout F the rest of it
//   2016-10-06T00:17:10.000000000Z stderr F an error
//
// "F" ends a line, "P" marks a partial record whose text continues in the
// next record (its newline was added by the writer and is dropped here), so
// printing the records one after the other joins the parts. Docker's JSON
// lines ({"log":..., "stream":..., "time":...}) are understood as well; the
// first line of the file decides the format.
//
// Parsing functions are pure and thread-safe; ReadCriLog uses the files and
// streams it is given.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ctl/go_time.h"

namespace berth::ctl {

enum class LogStream { kStdout, kStderr };

struct LogRecord {
  ZonedTime timestamp;
  bool has_timestamp = true;  // false: a Docker line without "time"
  LogStream stream = LogStream::kStdout;
  std::string text;  // what is printed: the newline kept for "F", dropped for "P"
};

// Parses one CRI record; `line` may end with its newline.
StatusOr<LogRecord> ParseCriLogLine(std::string_view line);

// Parses one Docker JSON log line.
StatusOr<LogRecord> ParseDockerJsonLogLine(std::string_view line);

// Offset in the file of the start of its last `n` complete lines (a final
// line without newline is not counted); 0 for n < 0 or when the file has
// fewer lines.
StatusOr<int64_t> FindTailLineStart(int fd, int64_t n);

struct LogReadOptions {
  int64_t tail = -1;                        // last n records of the file; -1: all
  int64_t limit_bytes = -1;                 // stop after this many bytes of output; -1: no limit
  std::optional<int64_t> since_unix_nanos;  // skip records older than this
  bool follow = false;                      // keep reading while the container runs
  bool timestamps = false;                  // prefix each printed line with its RFC 3339 timestamp
};

// What ReadCriLog needs from the world while following.
struct LogFollowHooks {
  // Whether the container still runs. Asked at each end of file; once it
  // says no, the rest of the file is printed and reading ends.
  std::function<StatusOr<bool>()> container_running;
  // A descriptor that becomes readable when the user wants to stop (e.g. a
  // signalfd for SIGINT); -1 for none. Stopping this way is not an error.
  int cancel_fd = -1;
  // How long to wait for a change of the file before checking again.
  int poll_interval_ms = 1000;
};

// Prints the log file at `path` (symlinks resolved): stdout records to
// `out`, stderr records to `err`, honoring `opts`. Errors name the file,
// like "failed to open log file \"<path>\": ...".
Status ReadCriLog(const std::string& path, const LogReadOptions& opts, std::ostream& out,
                  std::ostream& err, const LogFollowHooks& hooks = {});

}  // namespace berth::ctl
