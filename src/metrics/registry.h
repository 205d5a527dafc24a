// berthd's own metrics: counters, gauges and histograms with labels that the
// code records into, plus collectors that compute values when the endpoint
// is scraped (running pods, process RSS...). Render() gives the exposition
// text.
//
// The registry owns its metrics; the references Add* return stay valid as
// long as it lives. Metrics are registered at start-up (not thread-safe
// against recording); recording, collectors and Render() are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metrics/exposition.h"

namespace berth::metrics {

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

// A counter or gauge family with fixed label names.
class Scalar {
 public:
  void Add(const LabelValues& labels, double v = 1);
  void Set(const LabelValues& labels, double v);
  double Value(const LabelValues& labels) const;

 private:
  friend class Registry;
  Scalar(Family meta, std::vector<std::string> label_names)
      : meta_(std::move(meta)), label_names_(std::move(label_names)) {}
  Family Snapshot() const;

  Family meta_;  // name, help, type; samples unused
  std::vector<std::string> label_names_;
  mutable std::mutex mu_;
  std::map<LabelValues, double> values_;
};
using Counter = Scalar;
using Gauge = Scalar;

class Histogram {
 public:
  void Observe(const LabelValues& labels, double v);
  // Observations so far for `labels` (0 when none).
  uint64_t Count(const LabelValues& labels) const;

 private:
  friend class Registry;
  Histogram(Family meta, std::vector<std::string> label_names, std::vector<double> bounds)
      : meta_(std::move(meta)), label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}
  Family Snapshot() const;

  struct Cell {
    std::vector<uint64_t> buckets;  // per bound, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  Family meta_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // ascending upper bounds, without +Inf
  mutable std::mutex mu_;
  std::map<LabelValues, Cell> cells_;
};

class Registry {
 public:
  // Names must be valid and unique (checked: a bad name is a programming
  // error and aborts at start-up). Counter names end in "_total".
  Counter& AddCounter(std::string name, std::string help, std::vector<std::string> label_names);
  Gauge& AddGauge(std::string name, std::string help, std::vector<std::string> label_names);
  // `bounds`: ascending bucket upper bounds; +Inf is implied.
  Histogram& AddHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                          std::vector<double> bounds);
  // Called on every Render(), on the scraping thread, to append families
  // whose values are read when asked for.
  void AddCollector(std::function<void(std::vector<Family>&)> collect);

  // Registered metrics first (in registration order), then collectors'.
  std::string Render() const;

 private:
  void CheckNew(const std::string& name, const std::vector<std::string>& label_names);

  std::vector<std::unique_ptr<Scalar>> scalars_;
  std::vector<std::unique_ptr<Histogram>> histograms_;
  std::vector<std::pair<bool, size_t>> order_;  // (is histogram, index)
  std::vector<std::function<void(std::vector<Family>&)>> collectors_;
  std::vector<std::string> names_;
};

// Latency buckets in seconds for RPCs: 0.5 ms to 2 minutes.
std::vector<double> RpcLatencyBuckets();

}  // namespace berth::metrics
