// Decimal numbers read from text that comes from outside the program (files in
// /proc and /sys, pid files, protocol frames): the whole text must be the
// number, unlike atoi/sscanf, which read a prefix and turn garbage into 0.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>

namespace berth {

// The integer that `text` spells in decimal, ignoring ASCII whitespace around
// it (files end in a newline); nullopt when it is empty, not a number, has
// anything after the number, or does not fit in T.
template <typename T>
std::optional<T> ParseDecimal(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return std::nullopt;
  text = text.substr(first, text.find_last_not_of(kSpace) - first + 1);
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace berth
