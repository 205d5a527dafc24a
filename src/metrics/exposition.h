// The Prometheus text exposition format (version 0.0.4): metric families as
// data, and the pure function that writes them. See
// https://prometheus.io/docs/instrumenting/exposition_formats/.
//
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// One line of a family: `<family name><suffix>{labels} value`.
struct Sample {
  std::string suffix;  // "" for counters and gauges; "_bucket", "_sum", "_count" for histograms
  std::vector<std::pair<std::string, std::string>> labels;  // name, value; in output order
  double value = 0;
};

struct Family {
  std::string name;  // counters include their "_total"
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<Sample> samples;
};

// The text of `families`, one block per family (HELP, TYPE, samples), in the
// order given. The caller keeps names unique.
std::string WriteExposition(const std::vector<Family>& families);

// Escapes a label value: backslash, double quote and line feed.
std::string EscapeLabelValue(std::string_view value);
// Escapes HELP text: backslash and line feed.
std::string EscapeHelp(std::string_view help);
// A sample value as Prometheus parses it: integers without exponent,
// otherwise the shortest text that reads back to the same double; "+Inf",
// "-Inf", "NaN".
std::string FormatValue(double v);

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved).
bool IsValidLabelName(std::string_view name);

// The Content-Type of WriteExposition's output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace berth::metrics
