#include "support/prom_text.h"

#include <cmath>
#include <cstdlib>
#include <set>

namespace berth::testing {

namespace {

bool NameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool NameChar(char c) { return NameStart(c) || (c >= '0' && c <= '9'); }

bool ValidMetricName(std::string_view n) {
  if (n.empty() || (!NameStart(n[0]) && n[0] != ':')) return false;
  for (char c : n) {
    if (!NameChar(c) && c != ':') return false;
  }
  return true;
}

bool ValidLabelName(std::string_view n) {
  if (n.empty() || !NameStart(n[0])) return false;
  for (char c : n) {
    if (!NameChar(c)) return false;
  }
  return true;
}

bool ParseValue(std::string_view s, double* out) {
  if (s == "+Inf") {
    *out = INFINITY;
    return true;
  }
  if (s == "-Inf") {
    *out = -INFINITY;
    return true;
  }
  if (s == "NaN") {
    *out = NAN;
    return true;
  }
  if (s.empty()) return false;
  std::string copy(s);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && copy.find_first_of("nNiI") == std::string::npos;
}

Status LineError(size_t line_no, std::string_view line, std::string_view why) {
  return InvalidArgumentError(StrCat("line ", line_no, " \"", line, "\": ", why));
}

}  // namespace

StatusOr<std::map<std::string, PromFamily>> ParsePromText(std::string_view text) {
  std::map<std::string, PromFamily> families;
  if (!text.empty() && text.back() != '\n') return InvalidArgumentError("text does not end in \\n");
  PromFamily* current = nullptr;
  std::set<std::string> series;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# HELP name text" / "# TYPE name type"; other comments are allowed.
      bool help = line.starts_with("# HELP "), type = line.starts_with("# TYPE ");
      if (!help && !type) continue;
      std::string_view rest = line.substr(7);
      size_t sp = rest.find(' ');
      if (sp == std::string_view::npos) return LineError(line_no, line, "no text after the name");
      std::string name(rest.substr(0, sp));
      std::string_view arg = rest.substr(sp + 1);
      if (!ValidMetricName(name)) return LineError(line_no, line, "bad metric name");
      PromFamily& f = families[name];
      if (!f.name.empty() && current != &f) {
        return LineError(line_no, line, "family appears in two places");
      }
      f.name = name;
      current = &f;
      if (help) {
        if (!f.help.empty()) return LineError(line_no, line, "second HELP");
        for (size_t i = 0; i < arg.size(); ++i) {
          if (arg[i] == '\\') {
            if (i + 1 >= arg.size() || (arg[i + 1] != '\\' && arg[i + 1] != 'n')) {
              return LineError(line_no, line, "bad escape in HELP");
            }
            f.help += arg[i + 1] == 'n' ? '\n' : '\\';
            ++i;
          } else {
            f.help += arg[i];
          }
        }
      } else {
        if (!f.type.empty()) return LineError(line_no, line, "second TYPE");
        if (!f.samples.empty()) return LineError(line_no, line, "TYPE after samples");
        static const std::set<std::string, std::less<>> kTypes = {"counter", "gauge", "histogram",
                                                                  "summary", "untyped"};
        if (!kTypes.contains(arg)) return LineError(line_no, line, "unknown type");
        f.type = std::string(arg);
      }
      continue;
    }
    // name{label="value",...} value [timestamp]
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    PromSample s;
    s.name = std::string(line.substr(0, i));
    if (!ValidMetricName(s.name)) return LineError(line_no, line, "bad sample name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string_view::npos) return LineError(line_no, line, "label without =");
        std::string lname(line.substr(i, eq - i));
        if (!ValidLabelName(lname)) return LineError(line_no, line, "bad label name");
        if (eq + 1 >= line.size() || line[eq + 1] != '"') {
          return LineError(line_no, line, "label value not quoted");
        }
        std::string value;
        size_t j = eq + 2;
        bool closed = false;
        for (; j < line.size(); ++j) {
          char c = line[j];
          if (c == '\\') {
            if (j + 1 >= line.size()) return LineError(line_no, line, "dangling backslash");
            char n = line[j + 1];
            if (n == '\\') {
              value += '\\';
            } else if (n == '"') {
              value += '"';
            } else if (n == 'n') {
              value += '\n';
            } else {
              return LineError(line_no, line, "bad escape in a label value");
            }
            ++j;
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            value += c;
          }
        }
        if (!closed) return LineError(line_no, line, "unterminated label value");
        if (s.labels.contains(lname)) return LineError(line_no, line, "label given twice");
        s.labels[lname] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return LineError(line_no, line, "labels not closed");
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') return LineError(line_no, line, "no value");
    std::string_view rest = line.substr(i + 1);
    size_t sp = rest.find(' ');
    if (!ParseValue(rest.substr(0, sp), &s.value)) return LineError(line_no, line, "bad value");
    if (sp != std::string_view::npos) {
      double ts = 0;
      if (!ParseValue(rest.substr(sp + 1), &ts)) return LineError(line_no, line, "bad timestamp");
    }
    if (current == nullptr) return LineError(line_no, line, "sample before any TYPE");
    const std::string& fam = current->name;
    bool belongs = s.name == fam;
    if (current->type == "histogram" || current->type == "summary") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) belongs |= s.name == fam + suffix;
    }
    if (!belongs) return LineError(line_no, line, StrCat("sample outside family ", fam));
    if (s.name == fam + "_bucket" && !s.labels.contains("le")) {
      return LineError(line_no, line, "bucket without le");
    }
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += StrCat("\x01", k, "\x02", v);
    if (!series.insert(key).second) return LineError(line_no, line, "duplicate series");
    current->samples.push_back(std::move(s));
  }
  // Histograms: cumulative buckets, +Inf equal to _count, per label set.
  for (const auto& [name, f] : families) {
    if (f.type.empty()) return InvalidArgumentError(StrCat("family ", name, " has no TYPE"));
    if (f.type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    std::map<std::map<std::string, std::string>, double> counts;
    for (const auto& s : f.samples) {
      auto labels = s.labels;
      if (s.name == name + "_bucket") {
        double le = 0;
        if (!ParseValue(labels["le"], &le)) return InvalidArgumentError(StrCat(name, ": bad le"));
        labels.erase("le");
        buckets[labels].emplace_back(le, s.value);
      } else if (s.name == name + "_count") {
        counts[labels] = s.value;
      }
    }
    for (auto& [labels, b] : buckets) {
      double last_le = -INFINITY, last = 0;
      for (const auto& [le, v] : b) {
        if (le <= last_le || v < last) {
          return InvalidArgumentError(StrCat(name, ": buckets not ascending and cumulative"));
        }
        last_le = le;
        last = v;
      }
      if (!std::isinf(last_le) || !counts.contains(labels) || counts[labels] != last) {
        return InvalidArgumentError(StrCat(name, ": +Inf bucket missing or not equal to _count"));
      }
    }
  }
  return families;
}

double PromValue(const std::map<std::string, PromFamily>& families, const std::string& name,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [fname, f] : families) {
    if (!name.starts_with(fname)) continue;
    for (const auto& s : f.samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
  }
  return NAN;
}

}  // namespace berth::testing
