#include "stats/cgroup_parse.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace berth::stats {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(line) for each '\n'-separated line (the last one may lack it).
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    fn(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

// Splits off the next whitespace-separated field of `s` (empty at the end).
std::string_view NextField(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  size_t j = i;
  while (j < s.size() && !IsSpace(s[j])) ++j;
  std::string_view field = s.substr(i, j - i);
  s.remove_prefix(j);
  return field;
}

std::optional<double> ParseDouble(std::string_view s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// "major:minor"
bool ParseDevice(std::string_view s, uint32_t& major, uint32_t& minor) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  std::optional<uint64_t> ma = ParseU64(s.substr(0, colon));
  std::optional<uint64_t> mi = ParseU64(s.substr(colon + 1));
  if (!ma || !mi || *ma > UINT32_MAX || *mi > UINT32_MAX) return false;
  major = static_cast<uint32_t>(*ma);
  minor = static_cast<uint32_t>(*mi);
  return true;
}

IoDeviceStats& DeviceEntry(std::vector<IoDeviceStats>& devices, uint32_t major, uint32_t minor) {
  for (auto& d : devices) {
    if (d.major == major && d.minor == minor) return d;
  }
  IoDeviceStats d;
  d.major = major;
  d.minor = minor;
  devices.push_back(d);
  return devices.back();
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(std::string_view s) {
  auto oct = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && oct(s[i + 1]) && oct(s[i + 2]) && oct(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += s[i];
  }
  return out;
}

constexpr std::array<std::string_view, 14> kV1Controllers = {
    "cpu",        "cpuacct",  "cpuset",  "memory", "devices", "freezer", "net_cls",
    "perf_event", "net_prio", "hugetlb", "pids",   "rdma",    "misc",    "blkio"};

}  // namespace

std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> ParseSingleValue(std::string_view text) {
  text = Trim(text);
  if (text == "max") return kUnlimited;
  return ParseU64(text);
}

void ForEachFlatKeyed(std::string_view text,
                      const std::function<void(std::string_view key, uint64_t value)>& fn) {
  ForEachLine(text, [&](std::string_view line) {
    std::string_view key = NextField(line);
    std::string_view value = NextField(line);
    if (key.empty() || !Trim(line).empty()) return;
    if (std::optional<uint64_t> v = ParseU64(value)) fn(key, *v);
  });
}

Psi ParsePressure(std::string_view text) {
  Psi psi;
  ForEachLine(text, [&](std::string_view line) {
    std::string_view kind = NextField(line);
    if (kind != "some" && kind != "full") return;
    PsiLine p;
    int seen = 0;
    for (std::string_view f = NextField(line); !f.empty(); f = NextField(line)) {
      size_t eq = f.find('=');
      if (eq == std::string_view::npos) return;
      std::string_view k = f.substr(0, eq), v = f.substr(eq + 1);
      if (k == "total") {
        std::optional<uint64_t> t = ParseU64(v);
        if (!t) return;
        p.total_us = *t;
        seen |= 8;
        continue;
      }
      std::optional<double> d = ParseDouble(v);
      if (!d) return;
      if (k == "avg10") {
        p.avg10 = *d;
        seen |= 1;
      } else if (k == "avg60") {
        p.avg60 = *d;
        seen |= 2;
      } else if (k == "avg300") {
        p.avg300 = *d;
        seen |= 4;
      }
    }
    if (seen != 15) return;
    (kind == "some" ? psi.some : psi.full) = p;
  });
  return psi;
}

std::vector<IoDeviceStats> ParseIoStat(std::string_view text) {
  std::vector<IoDeviceStats> out;
  ForEachLine(text, [&](std::string_view line) {
    uint32_t major = 0, minor = 0;
    if (!ParseDevice(NextField(line), major, minor)) return;
    IoDeviceStats d;
    d.major = major;
    d.minor = minor;
    for (std::string_view f = NextField(line); !f.empty(); f = NextField(line)) {
      size_t eq = f.find('=');
      if (eq == std::string_view::npos) continue;
      std::optional<uint64_t> v = ParseU64(f.substr(eq + 1));
      if (!v) continue;
      std::string_view k = f.substr(0, eq);
      if (k == "rbytes") d.read_bytes = *v;
      if (k == "wbytes") d.write_bytes = *v;
      if (k == "rios") d.reads = *v;
      if (k == "wios") d.writes = *v;
    }
    // A device listed twice (the kernel never does) is merged, not repeated.
    IoDeviceStats& e = DeviceEntry(out, major, minor);
    e.read_bytes += d.read_bytes;
    e.write_bytes += d.write_bytes;
    e.reads += d.reads;
    e.writes += d.writes;
  });
  return out;
}

void MergeBlkioV1(std::string_view text, bool bytes, std::vector<IoDeviceStats>& devices) {
  ForEachLine(text, [&](std::string_view line) {
    uint32_t major = 0, minor = 0;
    if (!ParseDevice(NextField(line), major, minor)) return;  // also skips "Total N"
    std::string_view op = NextField(line);
    std::optional<uint64_t> v = ParseU64(NextField(line));
    if (!v || !Trim(line).empty()) return;
    if (op != "Read" && op != "Write") return;
    IoDeviceStats& d = DeviceEntry(devices, major, minor);
    uint64_t& slot =
        op == "Read" ? (bytes ? d.read_bytes : d.reads) : (bytes ? d.write_bytes : d.writes);
    slot += *v;
  });
}

std::vector<InterfaceCounters> ParseNetDev(std::string_view text) {
  std::vector<InterfaceCounters> out;
  ForEachLine(text, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view name = Trim(line.substr(0, colon));
    // Header lines have '|' and no ':'; a valid name has no space or '|'.
    if (name.empty() || name.size() > 15) return;
    if (std::any_of(name.begin(), name.end(), [](char c) { return IsSpace(c) || c == '|'; })) {
      return;
    }
    std::string_view rest = line.substr(colon + 1);
    std::array<uint64_t, 16> v{};
    for (auto& slot : v) {
      std::optional<uint64_t> n = ParseU64(NextField(rest));
      if (!n) return;
      slot = *n;
    }
    if (!Trim(rest).empty()) return;
    InterfaceCounters c;
    c.name = std::string(name);
    c.rx_bytes = v[0];
    c.rx_packets = v[1];
    c.rx_errors = v[2];
    c.rx_dropped = v[3];
    c.tx_bytes = v[8];
    c.tx_packets = v[9];
    c.tx_errors = v[10];
    c.tx_dropped = v[11];
    out.push_back(std::move(c));
  });
  return out;
}

uint64_t CountProcs(std::string_view text) {
  uint64_t n = 0;
  ForEachLine(text, [&](std::string_view line) {
    if (ParseU64(Trim(line))) ++n;
  });
  return n;
}

std::vector<CgroupMount> ParseCgroupMounts(std::string_view mountinfo) {
  std::vector<CgroupMount> out;
  ForEachLine(mountinfo, [&](std::string_view line) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    std::string_view rest = line;
    std::string_view fields[5];
    for (auto& f : fields) {
      f = NextField(rest);
      if (f.empty()) return;
    }
    std::string_view f;
    do {
      f = NextField(rest);
    } while (!f.empty() && f != "-");
    if (f.empty()) return;
    std::string_view fstype = NextField(rest);
    NextField(rest);  // source
    std::string_view super = NextField(rest);
    if (fstype != "cgroup" && fstype != "cgroup2") return;
    CgroupMount m;
    m.mount_point = UnescapeMountField(fields[4]);
    m.v2 = fstype == "cgroup2";
    if (!m.v2) {
      while (!super.empty()) {
        size_t comma = super.find(',');
        std::string_view opt = super.substr(0, comma);
        super.remove_prefix(comma == std::string_view::npos ? super.size() : comma + 1);
        if (opt.starts_with("name=") ||
            std::find(kV1Controllers.begin(), kV1Controllers.end(), opt) != kV1Controllers.end()) {
          m.controllers.emplace_back(opt);
        }
      }
    }
    out.push_back(std::move(m));
  });
  return out;
}

}  // namespace berth::stats
