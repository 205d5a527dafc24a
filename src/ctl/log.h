// Diagnostics on stderr in the shape crictl (logrus' text formatter) uses:
// on a terminal "FATA[0000] message" with the level colored, otherwise
// time="2006-01-02T15:04:05Z07:00" level=fatal msg="message".
//
// Not thread-safe; one Logger per command invocation.
#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <string_view>

namespace berth::ctl {

class Logger {
 public:
  enum class Level { kFatal, kError, kWarning, kInfo, kDebug };

  // `colored`: the stream is a terminal. Debug lines are printed only when
  // `debug` is set (crictl -D).
  Logger(std::ostream& err, bool colored, bool debug = false);

  void set_debug(bool debug) { debug_ = debug; }
  bool debug() const { return debug_; }

  void Log(Level level, std::string_view msg);
  void Fatal(std::string_view msg) { Log(Level::kFatal, msg); }
  void Error(std::string_view msg) { Log(Level::kError, msg); }
  void Warn(std::string_view msg) { Log(Level::kWarning, msg); }
  void Info(std::string_view msg) { Log(Level::kInfo, msg); }
  void Debug(std::string_view msg) {
    if (debug_) Log(Level::kDebug, msg);
  }

  // One formatted line (with '\n') as Log would print it; `now` and the
  // start time are given so tests can pin them.
  static std::string Format(Level level, std::string_view msg, bool colored,
                            std::chrono::system_clock::time_point now,
                            std::chrono::system_clock::time_point start);

 private:
  std::ostream& err_;
  bool colored_;
  bool debug_;
  std::chrono::system_clock::time_point start_;
};

}  // namespace berth::ctl
