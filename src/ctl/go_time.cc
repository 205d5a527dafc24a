#include "ctl/go_time.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "ctl/endpoint.h"
#include "ctl/table.h"

namespace berth::ctl {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month, day, hour, minute, second;
};

Civil CivilFromSeconds(int64_t secs) {
  int64_t days = FloorDiv(secs, 86400);
  int64_t rem = secs - days * 86400;
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  Civil c{};
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = static_cast<int64_t>(yoe) + era * 400 + (c.month <= 2);
  c.hour = static_cast<unsigned>(rem / 3600);
  c.minute = static_cast<unsigned>(rem / 60 % 60);
  c.second = static_cast<unsigned>(rem % 60);
  return c;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysIn(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Local zone offset (seconds east of UTC) and abbreviation at `secs`.
std::pair<int, std::string> LocalZone(int64_t secs) {
  time_t t = static_cast<time_t>(secs);
  tm local{};
  if (localtime_r(&t, &local) == nullptr) return {0, "UTC"};
  return {static_cast<int>(local.tm_gmtoff), local.tm_zone != nullptr ? local.tm_zone : ""};
}

// "2006-01-02T15:04:05" or with a space instead of 'T'.
std::string DateTime(const Civil& c, char sep) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02u%c%02u:%02u:%02u",
                static_cast<long long>(c.year), c.month, c.day, sep, c.hour, c.minute, c.second);
  return buf;
}

// ".123" for 123000000 ns; empty for 0 (Go's .999999999).
std::string TrimmedFraction(int64_t nanos) {
  if (nanos == 0) return "";
  char buf[16];
  std::snprintf(buf, sizeof(buf), ".%09lld", static_cast<long long>(nanos));
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  return s;
}

// "Z" or "+hh:mm" (Go's Z07:00).
std::string ZoneColon(int offset) {
  if (offset == 0) return "Z";
  char buf[16];
  int a = std::abs(offset);
  std::snprintf(buf, sizeof(buf), "%c%02d:%02d", offset < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  return buf;
}

// The layouts of Docker's GetTimestamp, as what they require.
struct Layout {
  int time_parts = -1;    // -1: date only; 0: T15; 1: T15:04; 2: T15:04:05
  bool zone = false;      // a Z07:00 zone follows
  bool fraction = false;  // the layout spells .999999999
  std::string name;       // the Go layout, for error messages
};

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool Digits(int n, int64_t& out) {
    if (s_.size() < static_cast<size_t>(n)) return false;
    int64_t v = 0;
    for (int i = 0; i < n; ++i) {
      char c = s_[static_cast<size_t>(i)];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    s_.remove_prefix(static_cast<size_t>(n));
    out = v;
    return true;
  }
  bool Char(char c) {
    if (s_.empty() || s_[0] != c) return false;
    s_.remove_prefix(1);
    return true;
  }
  bool Peek(char c) const { return !s_.empty() && s_[0] == c; }
  // [.,]digits: any number of digits, the first nine count.
  bool Fraction(int64_t& nanos) {
    if (s_.size() < 2 || (s_[0] != '.' && s_[0] != ',') || s_[1] < '0' || s_[1] > '9') {
      return false;
    }
    s_.remove_prefix(1);
    nanos = 0;
    int n = 0;
    while (!s_.empty() && s_[0] >= '0' && s_[0] <= '9') {
      if (n < 9) {
        nanos = nanos * 10 + (s_[0] - '0');
        ++n;
      }
      s_.remove_prefix(1);
    }
    for (; n < 9; ++n) nanos *= 10;
    return true;
  }
  bool Zone(int& offset) {
    if (Char('Z')) {
      offset = 0;
      return true;
    }
    if (s_.empty() || (s_[0] != '+' && s_[0] != '-')) return false;
    int sign = s_[0] == '-' ? -1 : 1;
    s_.remove_prefix(1);
    int64_t hh = 0, mm = 0;
    if (!Digits(2, hh) || !Char(':') || !Digits(2, mm) || hh > 24 || mm > 59) return false;
    offset = sign * static_cast<int>(hh * 3600 + mm * 60);
    return true;
  }
  bool Done() const { return s_.empty(); }

 private:
  std::string_view s_;
};

// Parses `text` against `layout`; `local_offset` is used when the layout
// has no zone. Returns nullopt when it does not match.
std::optional<ZonedTime> ParseLayout(std::string_view text, const Layout& layout,
                                     int local_offset) {
  Scanner sc(text);
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, nanos = 0;
  if (!sc.Digits(4, y) || !sc.Char('-') || !sc.Digits(2, mo) || !sc.Char('-') || !sc.Digits(2, d)) {
    return std::nullopt;
  }
  if (layout.time_parts >= 0) {
    if (!sc.Char('T') || !sc.Digits(2, h)) return std::nullopt;
    if (layout.time_parts >= 1 && (!sc.Char(':') || !sc.Digits(2, mi))) return std::nullopt;
    if (layout.time_parts >= 2) {
      if (!sc.Char(':') || !sc.Digits(2, s)) return std::nullopt;
      // Go accepts a fraction after the seconds even when the layout has none.
      if (sc.Peek('.') || sc.Peek(',')) {
        if (!sc.Fraction(nanos)) return std::nullopt;
      }
    }
  }
  int offset = local_offset;
  if (layout.zone && !sc.Zone(offset)) return std::nullopt;
  if (!sc.Done()) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > DaysIn(y, static_cast<unsigned>(mo)) || h > 23 || mi > 59 ||
      s > 59) {
    return std::nullopt;
  }
  int64_t secs = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                 h * 3600 + mi * 60 + s - offset;
  // Nanoseconds since 1970 fit in int64 only from 1677 to 2262 (Go's
  // UnixNano is undefined outside); such a time does not parse here.
  int64_t unix_nanos = 0;
  if (__builtin_mul_overflow(secs, kNanosPerSecond, &unix_nanos) ||
      __builtin_add_overflow(unix_nanos, nanos, &unix_nanos)) {
    return std::nullopt;
  }
  return ZonedTime{unix_nanos, offset};
}

// strconv.ParseInt(s, 10, 64) for the digits of a Unix timestamp.
std::optional<int64_t> ParseGoInt64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == s.size()) return std::nullopt;
  __int128 v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
    if (v > static_cast<__int128>(INT64_MAX) + 1) return std::nullopt;
  }
  if (neg) v = -v;
  if (v > INT64_MAX || v < INT64_MIN) return std::nullopt;
  return static_cast<int64_t>(v);
}

}  // namespace

std::string HumanDuration(std::chrono::nanoseconds d) {
  double secs_f = std::chrono::duration<double>(d).count();
  auto seconds = static_cast<int64_t>(secs_f);
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return StrCat(seconds, " seconds");
  auto minutes = static_cast<int64_t>(secs_f / 60);
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return StrCat(minutes, " minutes");
  auto hours = static_cast<int64_t>(std::llround(secs_f / 3600));
  if (hours == 1) return "About an hour";
  if (hours < 48) return StrCat(hours, " hours");
  if (hours < 24 * 7 * 2) return StrCat(hours / 24, " days");
  if (hours < 24 * 30 * 2) return StrCat(hours / 24 / 7, " weeks");
  if (hours < 24 * 365 * 2) return StrCat(hours / 24 / 30, " months");
  return StrCat(static_cast<int64_t>(secs_f / 3600) / 24 / 365, " years");
}

std::string GoTimeString(int64_t unix_nanos) {
  int64_t secs = FloorDiv(unix_nanos, kNanosPerSecond);
  int64_t nanos = unix_nanos - secs * kNanosPerSecond;
  auto [offset, abbrev] = LocalZone(secs);
  char zone[16];
  int a = std::abs(offset);
  std::snprintf(zone, sizeof(zone), "%c%02d%02d", offset < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  return StrCat(DateTime(CivilFromSeconds(secs + offset), ' '), TrimmedFraction(nanos), " ", zone,
                " ", abbrev);
}

std::string GoRfc3339Nano(int64_t unix_nanos) {
  int64_t secs = FloorDiv(unix_nanos, kNanosPerSecond);
  int64_t nanos = unix_nanos - secs * kNanosPerSecond;
  int offset = LocalZone(secs).first;
  return StrCat(DateTime(CivilFromSeconds(secs + offset), 'T'), TrimmedFraction(nanos),
                ZoneColon(offset));
}

std::string GoStdLogPrefix(std::chrono::system_clock::time_point now) {
  int64_t secs = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  Civil c = CivilFromSeconds(secs + LocalZone(secs).first);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld/%02u/%02u %02u:%02u:%02u ",
                static_cast<long long>(c.year), c.month, c.day, c.hour, c.minute, c.second);
  return buf;
}

StatusOr<ZonedTime> ParseRfc3339Nano(std::string_view text) {
  Layout layout{2, true, true, "2006-01-02T15:04:05.999999999Z07:00"};
  std::optional<ZonedTime> t = ParseLayout(text, layout, 0);
  if (!t) {
    return InvalidArgumentError(
        StrCat("parsing time ", GoQuote(text), " as ", GoQuote(layout.name), ": cannot parse"));
  }
  return *t;
}

std::string FormatRfc3339NanoFixed(const ZonedTime& t) {
  int64_t secs = FloorDiv(t.unix_nanos, kNanosPerSecond);
  int64_t nanos = t.unix_nanos - secs * kNanosPerSecond;
  char frac[16];
  std::snprintf(frac, sizeof(frac), ".%09lld", static_cast<long long>(nanos));
  return StrCat(DateTime(CivilFromSeconds(secs + t.offset_seconds), 'T'), frac,
                ZoneColon(t.offset_seconds));
}

StatusOr<int64_t> ParseSinceTime(std::string_view value,
                                 std::chrono::system_clock::time_point now) {
  int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  if (value != "0") {
    StatusOr<std::chrono::milliseconds> d = ParseGoDuration(value);
    if (d.ok()) {
      // Docker keeps whole seconds of the reference time minus the duration.
      int64_t t = now_ns - std::chrono::duration_cast<std::chrono::nanoseconds>(*d).count();
      return FloorDiv(t, kNanosPerSecond) * kNanosPerSecond;
    }
  }
  bool in_location = value.find_first_of("zZ+") == std::string_view::npos &&
                     std::count(value.begin(), value.end(), '-') != 3;
  Layout layout;
  layout.zone = !in_location;
  if (value.find('.') != std::string_view::npos) {
    layout.time_parts = 2;
    layout.fraction = true;
    layout.name =
        in_location ? "2006-01-02T15:04:05.999999999" : "2006-01-02T15:04:05.999999999Z07:00";
  } else if (value.find('T') != std::string_view::npos) {
    auto colons = std::count(value.begin(), value.end(), ':');
    if (!in_location && value.find_first_of("zZ") == std::string_view::npos && colons > 0) {
      --colons;
    }
    layout.time_parts = static_cast<int>(std::min<decltype(colons)>(colons, 2));
    static constexpr const char* kTimes[] = {"T15", "T15:04", "T15:04:05"};
    layout.name = StrCat("2006-01-02", kTimes[layout.time_parts], in_location ? "" : "Z07:00");
  } else {
    layout.name = in_location ? "2006-01-02" : "2006-01-02Z07:00";
  }
  int local_offset = LocalZone(FloorDiv(now_ns, kNanosPerSecond)).first;
  std::optional<ZonedTime> t = ParseLayout(value, layout, local_offset);
  if (t) return t->unix_nanos;
  if (value.find('-') != std::string_view::npos) {
    return InvalidArgumentError(
        StrCat("parsing time ", GoQuote(value), " as ", GoQuote(layout.name), ": cannot parse"));
  }
  // A Unix timestamp, seconds[.fraction].
  size_t dot = value.find('.');
  std::optional<int64_t> secs = ParseGoInt64(value.substr(0, dot));
  std::optional<int64_t> frac = 0;
  std::string_view frac_text;
  if (secs && dot != std::string_view::npos) {
    frac_text = value.substr(dot + 1);
    frac = ParseGoInt64(frac_text);
  }
  if (!secs || !frac) {
    return InvalidArgumentError(
        StrCat("failed to parse value as time or duration: ", GoQuote(value)));
  }
  // Docker scales the fraction to nanoseconds whatever its length.
  double scaled = static_cast<double>(*frac);
  for (size_t i = frac_text.size(); i < 9; ++i) scaled *= 10;
  for (size_t i = 9; i < frac_text.size(); ++i) scaled /= 10;
  int64_t nanos = 0;
  if (scaled <= -9e18 || scaled >= 9e18 || __builtin_mul_overflow(*secs, kNanosPerSecond, &nanos) ||
      __builtin_add_overflow(nanos, static_cast<int64_t>(scaled), &nanos)) {
    return InvalidArgumentError(StrCat("time out of range (years 1678 to 2262): ", GoQuote(value)));
  }
  return nanos;
}

}  // namespace berth::ctl
