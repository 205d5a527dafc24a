// The CRI container log format, as kubelet reads it:
//   <timestamp> <stream> <tag> <content>\n
// timestamp: RFC 3339 with nanoseconds, stream: "stdout" or "stderr", tag: "F"
// for the last (or only) piece of a line, "P" for a partial piece. A line
// longer than the maximum is cut into P pieces of exactly the maximum followed
// by the F remainder; output still without a newline at EOF is written as P
// (so a reader reproduces the bytes exactly, with no newline added).
//
// Plain C++ with no dependencies: this is part of the berth-monitor binary.
#pragma once

#include <time.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace berth::monitor {

// "2006-01-02T15:04:05.123456789Z": UTC, always nine fractional digits, so
// records of one file sort lexically. Valid input for Go's time.RFC3339Nano.
std::string FormatRfc3339Nano(const struct timespec& ts);

// Splits one output stream into CRI log records. Not thread-safe; one per
// stream.
class CriLogSplitter {
 public:
  // `stream` is "stdout" or "stderr"; `max_line` (> 0) is the longest content of one record.
  CriLogSplitter(std::string_view stream, size_t max_line);

  // Consumes `data` (any chunking) and appends to `out` every record it
  // completes, stamped with `timestamp`. Bytes of an unfinished line stay
  // buffered (at most max_line of them). A "\r\n" line ending (terminal
  // output) loses the '\r', like "\n".
  void Feed(std::string_view data, std::string_view timestamp, std::string* out);

  // At EOF: appends the buffered unfinished line, if any, as a P record.
  void Flush(std::string_view timestamp, std::string* out);

  size_t buffered() const { return pending_.size(); }

 private:
  void Emit(char tag, std::string_view timestamp, std::string* out);

  std::string stream_;
  size_t max_line_;
  std::string pending_;
};

}  // namespace berth::monitor
