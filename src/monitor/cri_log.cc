#include "monitor/cri_log.h"

namespace berth::monitor {

namespace {

void PutDigits(char* p, long value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

// Hand-rolled instead of gmtime_r + snprintf: it runs for every chunk of
// output, and the printf and time zone machinery would otherwise be linked
// into (and paged into) the static monitor binary.
std::string FormatRfc3339Nano(const struct timespec& ts) {
  long long secs = ts.tv_sec;
  long long days = secs / 86400;
  long long rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
  long long z = days + 719468;
  long long era = (z >= 0 ? z : z - 146096) / 146097;
  long long doe = z - era * 146097;
  long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long long mp = (5 * doy + 2) / 153;
  long long day = doy - (153 * mp + 2) / 5 + 1;
  long long month = mp < 10 ? mp + 3 : mp - 9;
  long long year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  char buf[] = "0000-00-00T00:00:00.000000000Z";
  PutDigits(buf, static_cast<long>(year), 4);
  PutDigits(buf + 5, static_cast<long>(month), 2);
  PutDigits(buf + 8, static_cast<long>(day), 2);
  PutDigits(buf + 11, static_cast<long>(rem / 3600), 2);
  PutDigits(buf + 14, static_cast<long>(rem / 60 % 60), 2);
  PutDigits(buf + 17, static_cast<long>(rem % 60), 2);
  PutDigits(buf + 20, static_cast<long>(ts.tv_nsec), 9);
  return std::string(buf, sizeof(buf) - 1);
}

CriLogSplitter::CriLogSplitter(std::string_view stream, size_t max_line)
    : stream_(stream), max_line_(max_line == 0 ? 1 : max_line) {}

void CriLogSplitter::Emit(char tag, std::string_view timestamp, std::string* out) {
  out->append(timestamp);
  out->push_back(' ');
  out->append(stream_);
  out->push_back(' ');
  out->push_back(tag);
  out->push_back(' ');
  out->append(pending_);
  out->push_back('\n');
  pending_.clear();
}

void CriLogSplitter::Feed(std::string_view data, std::string_view timestamp, std::string* out) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    std::string_view piece = nl == std::string_view::npos ? data : data.substr(0, nl);
    // A P record is only written once more than max_line bytes are known to
    // belong to the line, so a line of exactly max_line bytes stays one F.
    while (pending_.size() + piece.size() > max_line_) {
      size_t take = max_line_ - pending_.size();
      pending_.append(piece.substr(0, take));
      piece.remove_prefix(take);
      Emit('P', timestamp, out);
    }
    pending_.append(piece);
    if (nl == std::string_view::npos) return;
    if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
    Emit('F', timestamp, out);
    data.remove_prefix(nl + 1);
  }
}

void CriLogSplitter::Flush(std::string_view timestamp, std::string* out) {
  if (!pending_.empty()) Emit('P', timestamp, out);
}

}  // namespace berth::monitor
