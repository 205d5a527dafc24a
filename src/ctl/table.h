// Tables and sizes as crictl prints them. crictl aligns columns with Go's
// text/tabwriter (minwidth 20, tabwidth 1, padding 3, pad with spaces) and
// prints sizes with go-units' HumanSizeWithPrecision(size, 3).
//
// TableWriter is not thread-safe; the free functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace berth::ctl {

// Collects rows and aligns them like text/tabwriter. Cells are separated by
// tabs; the last cell of a line is not part of a column (it is printed as is).
// A column's width is computed over a block of consecutive lines that all
// have a cell in that column: max(min_width, widest cell + padding), widths
// counted in runes.
class TableWriter {
 public:
  TableWriter(int min_width = 20, int padding = 3) : min_width_(min_width), padding_(padding) {}

  // Adds one line: the cells joined by tabs.
  void AddRow(const std::vector<std::string>& cells);
  // Adds raw text that may hold tabs and newlines (what Go's Fprint would).
  void Write(std::string_view text);
  // Returns the aligned text of everything written so far and clears it.
  std::string Flush();

 private:
  void Format(size_t line0, size_t line1, std::vector<int>& widths, std::string& out) const;
  void WriteLines(size_t line0, size_t line1, const std::vector<int>& widths,
                  std::string& out) const;

  int min_width_;
  int padding_;
  std::string pending_;  // text not yet split into lines
  // Valid during Flush only.
  std::vector<std::vector<std::string>> lines_;
  bool has_tail_ = false;
};

// go-units HumanSizeWithPrecision(size, 3): decimal units (B, kB, MB, GB, TB,
// PB, EB, ZB, YB) and "%.3g", e.g. 4500000 -> "4.5MB", 999999 -> "1e+03kB".
std::string HumanSize(double size);
// go-units HumanSizeWithPrecision(size, precision); units.HumanSize is
// precision 4 (what `stats` prints).
std::string HumanSizeWithPrecision(double size, int precision);

// Strips `prefix` from `id` and keeps at most 13 characters (crictl's
// truncated ID length).
std::string TruncateId(std::string_view id, std::string_view prefix);

// Go's %q / strconv.Quote of a string (used for error messages that crictl
// formats with %q).
std::string GoQuote(std::string_view s);

}  // namespace berth::ctl
