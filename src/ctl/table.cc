#include "ctl/table.h"

#include <cstdio>

#include "ctl/go_json.h"

namespace berth::ctl {
namespace {

std::vector<std::string> SplitCells(std::string_view line) {
  std::vector<std::string> cells;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '\t') {
      cells.emplace_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  return cells;
}

}  // namespace

void TableWriter::AddRow(const std::vector<std::string>& cells) {
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) pending_.push_back('\t');
    pending_ += cells[i];
  }
  pending_.push_back('\n');
}

void TableWriter::Write(std::string_view text) { pending_.append(text); }

std::string TableWriter::Flush() {
  // Complete lines end with '\n'; a trailing partial line has no newline and
  // no cells unless it holds text.
  std::vector<std::vector<std::string>> lines;
  size_t start = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i] == '\n') {
      lines.push_back(SplitCells(std::string_view(pending_).substr(start, i - start)));
      start = i + 1;
    }
  }
  std::string tail = pending_.substr(start);
  lines_ = std::move(lines);
  has_tail_ = !tail.empty();
  if (has_tail_) lines_.push_back(SplitCells(tail));
  std::string out;
  std::vector<int> widths;
  Format(0, lines_.size(), widths, out);
  pending_.clear();
  lines_.clear();
  return out;
}

void TableWriter::Format(size_t line0, size_t line1, std::vector<int>& widths,
                         std::string& out) const {
  size_t column = widths.size();
  for (size_t this_line = line0; this_line < line1; ++this_line) {
    if (column + 1 >= lines_[this_line].size()) continue;
    // A block of lines with a cell in this column starts here.
    WriteLines(line0, this_line, widths, out);
    line0 = this_line;
    int width = min_width_;
    for (; this_line < line1; ++this_line) {
      const std::vector<std::string>& line = lines_[this_line];
      if (column + 1 >= line.size()) break;
      int w = static_cast<int>(RuneCount(line[column])) + padding_;
      if (w > width) width = w;
    }
    widths.push_back(width);
    Format(line0, this_line, widths, out);
    widths.pop_back();
    line0 = this_line;
  }
  WriteLines(line0, line1, widths, out);
}

void TableWriter::WriteLines(size_t line0, size_t line1, const std::vector<int>& widths,
                             std::string& out) const {
  for (size_t i = line0; i < line1; ++i) {
    const std::vector<std::string>& line = lines_[i];
    for (size_t j = 0; j < line.size(); ++j) {
      out += line[j];
      if (j < widths.size()) {
        int pad = widths[j] - static_cast<int>(RuneCount(line[j]));
        if (pad > 0) out.append(static_cast<size_t>(pad), ' ');
      }
    }
    bool last = i + 1 == lines_.size();
    if (!(last && has_tail_)) out.push_back('\n');
  }
}

std::string HumanSize(double size) { return HumanSizeWithPrecision(size, 3); }

std::string HumanSizeWithPrecision(double size, int precision) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  size_t i = 0;
  while (size >= 1000.0 && i + 1 < std::size(kUnits)) {
    size /= 1000.0;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g%s", precision, size, kUnits[i]);
  return buf;
}

std::string TruncateId(std::string_view id, std::string_view prefix) {
  if (id.substr(0, prefix.size()) == prefix) id.remove_prefix(prefix.size());
  if (id.size() > 13) id = id.substr(0, 13);
  return std::string(id);
}

std::string GoQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto [r, n] = DecodeUtf8(s, i);
    if (r == 0xFFFD && n == 1) {
      auto b = static_cast<uint8_t>(s[i]);
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
      ++i;
      continue;
    }
    switch (r) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (r < 0x20 || r == 0x7F) {
          out += "\\x";
          out.push_back(kHex[r >> 4]);
          out.push_back(kHex[r & 0xF]);
        } else if (r >= 0x80 && r < 0xA0) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(r));
          out += buf;
        } else {
          out.append(s.substr(i, n));
        }
    }
    i += n;
  }
  out.push_back('"');
  return out;
}

}  // namespace berth::ctl
