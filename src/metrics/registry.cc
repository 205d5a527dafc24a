#include "metrics/registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/status.h"

namespace berth::metrics {

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "metrics registry: %s\n", what.c_str());
  std::abort();
}

std::vector<std::pair<std::string, std::string>> Zip(const std::vector<std::string>& names,
                                                     const LabelValues& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.emplace_back(names[i], i < values.size() ? values[i] : "");
  }
  return out;
}

}  // namespace

void Scalar::Add(const LabelValues& labels, double v) {
  std::lock_guard lock(mu_);
  values_[labels] += v;
}

void Scalar::Set(const LabelValues& labels, double v) {
  std::lock_guard lock(mu_);
  values_[labels] = v;
}

double Scalar::Value(const LabelValues& labels) const {
  std::lock_guard lock(mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

Family Scalar::Snapshot() const {
  Family f = meta_;
  std::lock_guard lock(mu_);
  // A family without labels always shows its one sample, even before the
  // first increment, so that rate() has a starting point.
  if (label_names_.empty() && values_.empty()) f.samples.push_back({"", {}, 0});
  for (const auto& [labels, v] : values_) f.samples.push_back({"", Zip(label_names_, labels), v});
  return f;
}

void Histogram::Observe(const LabelValues& labels, double v) {
  std::lock_guard lock(mu_);
  Cell& c = cells_[labels];
  if (c.buckets.empty()) c.buckets.assign(bounds_.size(), 0);
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v: le
  if (it != bounds_.end()) ++c.buckets[static_cast<size_t>(it - bounds_.begin())];
  ++c.count;
  c.sum += v;
}

uint64_t Histogram::Count(const LabelValues& labels) const {
  std::lock_guard lock(mu_);
  auto it = cells_.find(labels);
  return it == cells_.end() ? 0 : it->second.count;
}

Family Histogram::Snapshot() const {
  Family f = meta_;
  std::lock_guard lock(mu_);
  for (const auto& [labels, c] : cells_) {
    auto base = Zip(label_names_, labels);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
      cumulative += c.buckets[i];
      auto l = base;
      l.emplace_back("le", FormatValue(bounds_[i]));
      f.samples.push_back({"_bucket", std::move(l), static_cast<double>(cumulative)});
    }
    auto inf = base;
    inf.emplace_back("le", "+Inf");
    f.samples.push_back({"_bucket", std::move(inf), static_cast<double>(c.count)});
    f.samples.push_back({"_sum", base, c.sum});
    f.samples.push_back({"_count", base, static_cast<double>(c.count)});
  }
  return f;
}

void Registry::CheckNew(const std::string& name, const std::vector<std::string>& label_names) {
  if (!IsValidMetricName(name)) Die("invalid metric name " + name);
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    Die("metric " + name + " registered twice");
  }
  for (const auto& l : label_names) {
    if (!IsValidLabelName(l) || l == "le") Die(StrCat("invalid label name ", l, " of ", name));
  }
  names_.push_back(name);
}

Counter& Registry::AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names) {
  CheckNew(name, label_names);
  if (!name.ends_with("_total")) Die("counter " + name + " must end in _total");
  Family meta{std::move(name), std::move(help), MetricType::kCounter, {}};
  scalars_.emplace_back(new Scalar(std::move(meta), std::move(label_names)));
  order_.emplace_back(false, scalars_.size() - 1);
  return *scalars_.back();
}

Gauge& Registry::AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names) {
  CheckNew(name, label_names);
  Family meta{std::move(name), std::move(help), MetricType::kGauge, {}};
  scalars_.emplace_back(new Scalar(std::move(meta), std::move(label_names)));
  order_.emplace_back(false, scalars_.size() - 1);
  return *scalars_.back();
}

Histogram& Registry::AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds) {
  CheckNew(name, label_names);
  if (!std::is_sorted(bounds.begin(), bounds.end()) ||
      std::adjacent_find(bounds.begin(), bounds.end()) != bounds.end()) {
    Die("histogram " + name + " needs strictly ascending bounds");
  }
  Family meta{std::move(name), std::move(help), MetricType::kHistogram, {}};
  histograms_.emplace_back(
      new Histogram(std::move(meta), std::move(label_names), std::move(bounds)));
  order_.emplace_back(true, histograms_.size() - 1);
  return *histograms_.back();
}

void Registry::AddCollector(std::function<void(std::vector<Family>&)> collect) {
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() const {
  std::vector<Family> families;
  for (const auto& [is_histogram, i] : order_) {
    families.push_back(is_histogram ? histograms_[i]->Snapshot() : scalars_[i]->Snapshot());
  }
  for (const auto& c : collectors_) c(families);
  return WriteExposition(families);
}

std::vector<double> RpcLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};
}

}  // namespace berth::metrics
