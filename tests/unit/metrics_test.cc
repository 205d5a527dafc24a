// berthd's metrics: the exposition writer, the registry, the process
// metrics and the HTTP endpoint (on a real loopback socket).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <thread>

#include "common/fs.h"
#include "metrics/exposition.h"
#include "metrics/http_endpoint.h"
#include "metrics/process_metrics.h"
#include "metrics/registry.h"
#include "support/prom_text.h"

namespace berth::metrics {
namespace {

using ::testing::HasSubstr;
using testing::ParsePromText;
using testing::PromValue;

TEST(ExpositionTest, EscapesLabelValuesPerTheSpec) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(EscapeLabelValue("two\nlines"), "two\\nlines");
  EXPECT_EQ(EscapeLabelValue("tab\tand ü stay"), "tab\tand ü stay");
}

TEST(ExpositionTest, EscapesHelpButNotQuotes) {
  EXPECT_EQ(EscapeHelp("a \"quoted\" \\ word\nnext"), "a \"quoted\" \\\\ word\\nnext");
}

TEST(ExpositionTest, FormatsValues) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.0005), "0.0005");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
  EXPECT_EQ(std::stod(FormatValue(0.1 + 0.2)), 0.1 + 0.2);  // round-trips
}

TEST(ExpositionTest, ChecksNames) {
  EXPECT_TRUE(IsValidMetricName("berth_grpc_requests_total"));
  EXPECT_TRUE(IsValidMetricName("a:b_c"));
  EXPECT_FALSE(IsValidMetricName("9lives"));
  EXPECT_FALSE(IsValidMetricName("with-dash"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("method"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(ExpositionTest, WritesFamiliesInTheTextFormat) {
  std::vector<Family> fams;
  fams.push_back({"x_total",
                  "Things \\ done.\nTwice.",
                  MetricType::kCounter,
                  {{"", {{"kind", "a\"b"}, {"code", "OK"}}, 3}}});
  fams.push_back({"y", "A gauge.", MetricType::kGauge, {{"", {}, 1.5}}});
  EXPECT_EQ(WriteExposition(fams),
            "# HELP x_total Things \\\\ done.\\nTwice.\n"
            "# TYPE x_total counter\n"
            "x_total{kind=\"a\\\"b\",code=\"OK\"} 3\n"
            "# HELP y A gauge.\n"
            "# TYPE y gauge\n"
            "y 1.5\n");
}

TEST(RegistryTest, RendersCountersGaugesAndCumulativeHistograms) {
  Registry reg;
  Counter& calls = reg.AddCounter("calls_total", "Calls.", {"method", "code"});
  Gauge& up = reg.AddGauge("up", "Up.", {});
  Histogram& lat = reg.AddHistogram("latency_seconds", "Latency.", {"method"}, {0.1, 1, 10});
  reg.AddCollector([](std::vector<Family>& out) {
    out.push_back({"collected", "From a collector.", MetricType::kGauge, {{"", {{"k", "v"}}, 7}}});
  });
  calls.Add({"Version", "OK"});
  calls.Add({"Version", "OK"});
  calls.Add({"Stop", "NotFound"}, 1);
  up.Set({}, 1);
  for (double v : {0.05, 0.1, 0.5, 5.0, 50.0}) lat.Observe({"Version"}, v);
  EXPECT_EQ(calls.Value({"Version", "OK"}), 2);
  EXPECT_EQ(lat.Count({"Version"}), 5u);

  const std::string text = reg.Render();
  auto parsed = ParsePromText(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << text;
  EXPECT_EQ(PromValue(*parsed, "calls_total", {{"method", "Version"}, {"code", "OK"}}), 2);
  EXPECT_EQ(PromValue(*parsed, "calls_total", {{"method", "Stop"}, {"code", "NotFound"}}), 1);
  EXPECT_EQ(PromValue(*parsed, "up"), 1);
  EXPECT_EQ(PromValue(*parsed, "collected", {{"k", "v"}}), 7);
  // 0.1 falls in le="0.1" (upper bounds are inclusive).
  EXPECT_EQ(PromValue(*parsed, "latency_seconds_bucket", {{"method", "Version"}, {"le", "0.1"}}),
            2);
  EXPECT_EQ(PromValue(*parsed, "latency_seconds_bucket", {{"method", "Version"}, {"le", "1"}}), 3);
  EXPECT_EQ(PromValue(*parsed, "latency_seconds_bucket", {{"method", "Version"}, {"le", "10"}}), 4);
  EXPECT_EQ(PromValue(*parsed, "latency_seconds_bucket", {{"method", "Version"}, {"le", "+Inf"}}),
            5);
  EXPECT_EQ(PromValue(*parsed, "latency_seconds_count", {{"method", "Version"}}), 5);
  EXPECT_DOUBLE_EQ(PromValue(*parsed, "latency_seconds_sum", {{"method", "Version"}}), 55.65);
  EXPECT_EQ(parsed->at("calls_total").type, "counter");
  EXPECT_EQ(parsed->at("latency_seconds").type, "histogram");
}

TEST(RegistryTest, UnlabelledCounterShowsZeroBeforeFirstUse) {
  Registry reg;
  reg.AddCounter("dropped_total", "Dropped.", {});
  EXPECT_THAT(reg.Render(), HasSubstr("\ndropped_total 0\n"));
}

TEST(RegistryTest, LabelValuesWithSpecialCharactersRoundTrip) {
  Registry reg;
  Counter& c = reg.AddCounter("odd_total", "Odd.", {"v"});
  const std::string nasty = "quote\" backslash\\ newline\n brace} comma,=";
  c.Add({nasty}, 2);
  auto parsed = ParsePromText(reg.Render());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(PromValue(*parsed, "odd_total", {{"v", nasty}}), 2);
}

TEST(RegistryDeathTest, RejectsBadAndDuplicateNames) {
  EXPECT_DEATH(
      {
        Registry r;
        r.AddCounter("no_suffix", "x", {});
      },
      "must end in _total");
  EXPECT_DEATH(
      {
        Registry r;
        r.AddGauge("g", "x", {});
        r.AddGauge("g", "x", {});
      },
      "registered twice");
  EXPECT_DEATH(
      {
        Registry r;
        r.AddGauge("bad-name", "x", {});
      },
      "invalid metric name");
}

TEST(ProcessMetricsTest, ParsesProcStatWithAwkwardCommandName) {
  // Fields from a real /proc/<pid>/stat; the command name holds ") (" and spaces.
  std::string line =
      "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 125 0 0 20 0 7 0 "
      "123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto st = ParseProcStat(line);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->utime_ticks, 250u);
  EXPECT_EQ(st->stime_ticks, 125u);
  EXPECT_EQ(st->threads, 7u);
  EXPECT_EQ(st->start_ticks, 123456u);
  EXPECT_EQ(st->vsize_bytes, 104857600u);
  EXPECT_EQ(st->rss_pages, 2560u);
  EXPECT_FALSE(ParseProcStat("garbage").has_value());
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 2 3").has_value());
}

TEST(ProcessMetricsTest, ReportsThisProcess) {
  std::vector<Family> fams;
  CollectProcessMetrics(fams);
  auto parsed = ParsePromText(WriteExposition(fams));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_GT(PromValue(*parsed, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(PromValue(*parsed, "process_cpu_seconds_total"), 0);
  EXPECT_GE(PromValue(*parsed, "process_threads"), 1);
  EXPECT_GT(PromValue(*parsed, "process_open_fds"), 2);
  EXPECT_GT(PromValue(*parsed, "process_start_time_seconds"), 1.6e9);
}

// One HTTP/1.1 exchange over TCP; the whole response.
std::string HttpExchange(const std::string& address, const std::string& request) {
  size_t colon = address.rfind(':');
  int port = std::stoi(address.substr(colon + 1));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
  (void)!::write(fd.get(), request.data(), request.size());
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(HttpEndpointTest, ServesMetricsAndRefusesTheRest) {
  Registry reg;
  Counter& scrapes = reg.AddCounter("scrapes_total", "Scrapes.", {});
  auto ep = HttpEndpoint::Start("127.0.0.1", 0, [&] {
    scrapes.Add({});
    return reg.Render();
  });
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  ASSERT_THAT((*ep)->address(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_NE((*ep)->address(), "127.0.0.1:0");

  std::string ok = HttpExchange((*ep)->address(),
                                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(ok, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(ok, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
  size_t body = ok.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  auto parsed = ParsePromText(ok.substr(body + 4));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(PromValue(*parsed, "scrapes_total"), 1);

  EXPECT_THAT(
      HttpExchange((*ep)->address(), "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      ::testing::StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(HttpExchange((*ep)->address(),
                           "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: "
                           "3\r\nConnection: close\r\n\r\nabc"),
              ::testing::StartsWith("HTTP/1.1 405"));
  // A request that is not HTTP gets an error or a closed connection, and the endpoint serves on.
  std::string garbage = HttpExchange((*ep)->address(), "BLAH\r\n\r\n");
  EXPECT_THAT(garbage, ::testing::AnyOf(::testing::IsEmpty(), ::testing::StartsWith("HTTP/1.1 4")));
  EXPECT_THAT(HttpExchange((*ep)->address(), "GET /metrics HTTP/1.0\r\n\r\n"),
              ::testing::StartsWith("HTTP/1.1 200"));
}

TEST(HttpEndpointTest, ReleasesItsPortWhenStopped) {
  std::string address;
  {
    auto ep = HttpEndpoint::Start("127.0.0.1", 0, [] { return std::string(); });
    ASSERT_TRUE(ep.ok());
    address = (*ep)->address();
  }
  int port = std::stoi(address.substr(address.rfind(':') + 1));
  auto again = HttpEndpoint::Start("127.0.0.1", port, [] { return std::string(); });
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_THAT(HttpExchange(address, "GET /metrics HTTP/1.0\r\n\r\n"),
              ::testing::StartsWith("HTTP/1.1 200"));
}

TEST(HttpEndpointTest, RejectsBadAddresses) {
  EXPECT_FALSE(HttpEndpoint::Start("not-an-ip", 0, [] { return std::string(); }).ok());
  EXPECT_FALSE(HttpEndpoint::Start("127.0.0.1", 70000, [] { return std::string(); }).ok());
}

}  // namespace
}  // namespace berth::metrics
