// A strict reader of the Prometheus text exposition format (0.0.4), for tests
// that check what berthd's metrics endpoint serves: it rejects anything the
// format does not allow (bad names, bad escapes, samples outside their
// family, duplicate series, histograms whose buckets do not add up) rather
// than guessing.
//
// Pure functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::testing {

struct PromSample {
  std::string name;  // the full sample name (with _bucket, _sum, ...)
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string name, help, type;
  std::vector<PromSample> samples;
};

// Families by name. INVALID_ARGUMENT naming the line on any format error.
StatusOr<std::map<std::string, PromFamily>> ParsePromText(std::string_view text);

// The value of the sample `name` with exactly `labels` in `families`; NaN if
// there is none.
double PromValue(const std::map<std::string, PromFamily>& families, const std::string& name,
                 const std::map<std::string, std::string>& labels = {});

}  // namespace berth::testing
