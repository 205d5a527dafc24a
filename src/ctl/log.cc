#include "ctl/log.h"

#include <fmt/format.h>

#include <ctime>

#include "ctl/table.h"

namespace berth::ctl {
namespace {

// logrus quotes a value unless it consists only of these characters.
bool NeedsQuoting(std::string_view s) {
  for (char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '/' || c == '@' || c == '^' || c == '+';
    if (!plain) return true;
  }
  return false;
}

std::string Rfc3339Local(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  long off = tm.tm_gmtoff;
  if (off == 0) return out + "Z";
  char sign = off < 0 ? '-' : '+';
  off = off < 0 ? -off : off;
  return out + fmt::format("{}{:02}:{:02}", sign, off / 3600, (off % 3600) / 60);
}

}  // namespace

Logger::Logger(std::ostream& err, bool colored, bool debug)
    : err_(err), colored_(colored), debug_(debug), start_(std::chrono::system_clock::now()) {}

void Logger::Log(Level level, std::string_view msg) {
  err_ << Format(level, msg, colored_, std::chrono::system_clock::now(), start_);
  err_.flush();
}

std::string Logger::Format(Level level, std::string_view msg, bool colored,
                           std::chrono::system_clock::time_point now,
                           std::chrono::system_clock::time_point start) {
  std::string_view name = "info";
  int color = 36;
  switch (level) {
    case Level::kFatal:
      name = "fatal", color = 31;
      break;
    case Level::kError:
      name = "error", color = 31;
      break;
    case Level::kWarning:
      name = "warning", color = 33;
      break;
    case Level::kInfo:
      name = "info", color = 36;
      break;
    case Level::kDebug:
      name = "debug", color = 37;
      break;
  }
  if (colored) {
    // logrus drops one trailing newline on a terminal only; the key=value
    // form quotes the message as it is.
    if (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    std::string upper;
    for (char c : name.substr(0, 4)) upper.push_back(static_cast<char>(c - 'a' + 'A'));
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
    return fmt::format("\x1b[{}m{}\x1b[0m[{:04}] {:<44} \n", color, upper, secs, msg);
  }
  std::string time = Rfc3339Local(now);
  std::string text = fmt::format("time={} level={} msg=", GoQuote(time), name);
  text += NeedsQuoting(msg) ? GoQuote(msg) : std::string(msg);
  text += '\n';
  return text;
}

}  // namespace berth::ctl
