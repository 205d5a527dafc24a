// Integration tests of lifecycle events (GetContainerEvents), PodSandboxStatus's container
// statuses, OOM kill reporting and the Prometheus metrics endpoint, against a real berthd with
// runc, berth-monitor and a busybox image served from a registry on 127.0.0.1.
//
// No timing assertions: a consumer that never reads is shown not to hold up the runtime by the
// lifecycles completing while it is stuck and by the dropped-events counter.
//
// Needs root. Traffic goes only to 127.0.0.1.
//
// clang-format off
#include "runtime_fixture.h"  // first: see support/berthd_process.h
// clang-format on

#include <google/protobuf/util/message_differencer.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <mutex>

#include "support/prom_text.h"

namespace berth::testing {
namespace {

using EventType = cri::ContainerEventType;

std::string Name(EventType t) { return cri::ContainerEventType_Name(t); }

// The events of one GetContainerEvents stream, read on a thread of its own (unless the test
// wants a consumer that does not read).
class EventStream {
 public:
  EventStream(cri::RuntimeService::Stub& stub, bool read) {
    reader_ = stub.GetContainerEvents(&ctx_, cri::GetEventsRequest());
    if (read) StartReading();
  }
  // A stream that waits for the server to be there (wait-for-ready).
  // (The call starts on the reading thread: a waiting call blocks until it is connected.)
  explicit EventStream(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(cri::RuntimeService::NewStub(channel)) {
    ctx_.set_wait_for_ready(true);
    StartReading();
  }
  ~EventStream() {
    ctx_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  void StartReading() {
    thread_ = std::thread([this] {
      if (reader_ == nullptr) reader_ = stub_->GetContainerEvents(&ctx_, cri::GetEventsRequest());
      cri::ContainerEventResponse e;
      while (reader_->Read(&e)) {
        std::lock_guard lock(mu_);
        events_.push_back(e);
        cv_.notify_all();
      }
      grpc::Status s = reader_->Finish();
      std::lock_guard lock(mu_);
      end_ = s;
      ended_ = true;
      cv_.notify_all();
    });
  }

  // Waits until at least `n` events arrived (or the timeout passed); returns what arrived.
  std::vector<cri::ContainerEventResponse> WaitForCount(size_t n, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return events_.size() >= n || ended_; });
    return events_;
  }
  // Waits until an event matching `pred` arrived; returns all events so far.
  std::vector<cri::ContainerEventResponse> WaitFor(
      const std::function<bool(const cri::ContainerEventResponse&)>& pred,
      std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout,
                 [&] { return ended_ || std::any_of(events_.begin(), events_.end(), pred); });
    return events_;
  }
  std::vector<cri::ContainerEventResponse> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::unique_ptr<cri::RuntimeService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<cri::ContainerEventResponse>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<cri::ContainerEventResponse> events_;
  bool ended_ = false;
  grpc::Status end_;
};

// "TYPE id" of each event, for readable comparisons.
std::vector<std::string> Summary(const std::vector<cri::ContainerEventResponse>& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    out.push_back(StrCat(Name(e.container_event_type()), " ", e.container_id()));
  return out;
}

const cri::ContainerStatus* FindStatus(const cri::ContainerEventResponse& e,
                                       const std::string& id) {
  for (const auto& s : e.containers_statuses()) {
    if (s.id() == id) return &s;
  }
  return nullptr;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class EventsIT : public RuntimeServiceIT {
 protected:
  std::vector<std::string> DaemonArgs() override {
    std::vector<std::string> args = DefaultArgs();
    args.insert(args.end(), {"--metrics-address", "127.0.0.1:0", "--events-queue-length", "64"});
    return args;
  }

  // Where berthd serves metrics (its log says, with the port it got; the last start counts).
  std::string MetricsAddress() {
    static const std::regex kListening(R"(event=metrics_listening address=(\S+))");
    std::string log = berthd_->Log();
    std::string last;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), kListening);
         it != std::sregex_iterator(); ++it) {
      last = (*it)[1];
    }
    return last;
  }

  // GET /metrics, parsed strictly. Records a failure when it is not well-formed.
  std::map<std::string, PromFamily> Scrape() {
    std::string address = MetricsAddress();
    EXPECT_FALSE(address.empty()) << "no event=metrics_listening in the log";
    size_t colon = address.rfind(':');
    StatusOr<std::string> resp =
        TcpExchange(address.substr(0, colon), std::stoi(address.substr(colon + 1)),
                    "GET /metrics HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n",
                    std::chrono::milliseconds(10000));
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    if (!resp.ok()) return {};
    EXPECT_THAT(*resp, ::testing::StartsWith("HTTP/1.1 200"));
    EXPECT_THAT(*resp, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    size_t body = resp->find("\r\n\r\n");
    EXPECT_NE(body, std::string::npos);
    if (body == std::string::npos) return {};
    StatusOr<std::map<std::string, PromFamily>> parsed = ParsePromText(resp->substr(body + 4));
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    return parsed.ok() ? *parsed : std::map<std::string, PromFamily>{};
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return PromValue(Scrape(), name, labels);
  }

  // Waits until `n` GetContainerEvents streams are subscribed, so no event is missed.
  void WaitForSubscribers(int n) {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    double got = -1;
    while (Clock::now() < deadline) {
      got = Metric("berth_event_subscribers");
      if (got == n) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "subscribers: " << got << ", want " << n;
  }

  // One whole lifecycle (pod run, container create/start/stop/remove, pod stop/remove); its
  // eight events. `annotation_bytes` pads the pod (and so every event) to fill buffers faster.
  void RunLifecycle(const std::string& name, size_t annotation_bytes, std::string* pod_id,
                    std::string* ctr_id) {
    cri::PodSandboxConfig pod = PodConfig(name, cri::NODE, cri::CONTAINER);
    if (annotation_bytes > 0)
      (*pod.mutable_annotations())["pad"] = std::string(annotation_bytes, 'x');
    IT_ASSERT_GRPC_OK(RunPod(pod, pod_id));
    IT_ASSERT_GRPC_OK(CreateCtr(*pod_id, pod, CtrConfig("c", {"sleep", "1000"}), ctr_id));
    IT_ASSERT_GRPC_OK(StartCtr(*ctr_id));
    IT_ASSERT_GRPC_OK(StopCtr(*ctr_id, 0));
    IT_ASSERT_GRPC_OK(RemoveCtr(*ctr_id));
    IT_ASSERT_GRPC_OK(StopPod(*pod_id));
    IT_ASSERT_GRPC_OK(RemovePod(*pod_id));
  }

  static std::vector<std::string> LifecycleSummary(const std::string& pod, const std::string& ctr) {
    return {"CONTAINER_CREATED_EVENT " + pod, "CONTAINER_STARTED_EVENT " + pod,
            "CONTAINER_CREATED_EVENT " + ctr, "CONTAINER_STARTED_EVENT " + ctr,
            "CONTAINER_STOPPED_EVENT " + ctr, "CONTAINER_DELETED_EVENT " + ctr,
            "CONTAINER_STOPPED_EVENT " + pod, "CONTAINER_DELETED_EVENT " + pod};
  }
};

// ---------------------------------------------------------------------------------------------
// 1. A whole lifecycle, seen by three consumers at once: every event in order, each carrying
//    the pod's status and its containers' statuses as they were right after it. One container
//    is stopped by the API, the other exits by itself with no call made.

TEST_F(EventsIT, WholeLifecycleInOrderWithStatusesForEveryConsumer) {
  EventStream a(berthd_->runtime(), true), b(berthd_->runtime(), true), c(berthd_->runtime(), true);
  ASSERT_NO_FATAL_FAILURE(WaitForSubscribers(3));
  const int64_t t0 = NowNs();

  cri::PodSandboxConfig pod = PodConfig("ev-life", cri::NODE, cri::CONTAINER);
  std::string pod_id, killed, exits;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("killed", {"sleep", "1000"}), &killed));
  IT_ASSERT_GRPC_OK(StartCtr(killed));

  // PodSandboxStatus carries the container statuses and when they were taken, verbose or not.
  for (bool verbose : {false, true}) {
    cri::PodSandboxStatusResponse resp;
    const int64_t before = NowNs();
    IT_ASSERT_GRPC_OK(PodStatus(pod_id, &resp, verbose));
    ASSERT_EQ(resp.containers_statuses_size(), 1);
    EXPECT_EQ(resp.containers_statuses(0).id(), killed);
    EXPECT_EQ(resp.containers_statuses(0).state(), cri::CONTAINER_RUNNING);
    EXPECT_EQ(resp.containers_statuses(0).metadata().name(), "killed");
    EXPECT_GE(resp.timestamp(), before);
    EXPECT_LE(resp.timestamp(), NowNs());
  }

  IT_ASSERT_GRPC_OK(StopCtr(killed, 0));
  IT_ASSERT_GRPC_OK(RemoveCtr(killed));

  IT_ASSERT_GRPC_OK(
      CreateCtr(pod_id, pod, CtrConfig("exits", {"sh", "-c", "sleep 0.3; exit 3"}), &exits));
  IT_ASSERT_GRPC_OK(StartCtr(exits));
  // No call from here until the exit is reported: the watcher must see it alone.
  auto seen = a.WaitFor(
      [&](const cri::ContainerEventResponse& e) {
        return e.container_id() == exits &&
               e.container_event_type() == cri::CONTAINER_STOPPED_EVENT;
      },
      std::chrono::seconds(60));
  ASSERT_EQ(Summary(seen).back(), "CONTAINER_STOPPED_EVENT " + exits)
      << "the container's own exit produced no event; got "
      << ::testing::PrintToString(Summary(seen));

  IT_ASSERT_GRPC_OK(StopPod(pod_id));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));

  const std::vector<std::string> want = {
      "CONTAINER_CREATED_EVENT " + pod_id, "CONTAINER_STARTED_EVENT " + pod_id,
      "CONTAINER_CREATED_EVENT " + killed, "CONTAINER_STARTED_EVENT " + killed,
      "CONTAINER_STOPPED_EVENT " + killed, "CONTAINER_DELETED_EVENT " + killed,
      "CONTAINER_CREATED_EVENT " + exits,  "CONTAINER_STARTED_EVENT " + exits,
      "CONTAINER_STOPPED_EVENT " + exits,  "CONTAINER_STOPPED_EVENT " + pod_id,
      "CONTAINER_DELETED_EVENT " + exits,  "CONTAINER_DELETED_EVENT " + pod_id};
  std::vector<cri::ContainerEventResponse> events =
      a.WaitForCount(want.size(), std::chrono::seconds(30));
  ASSERT_EQ(Summary(events), want);
  // The other consumers saw exactly the same events.
  for (EventStream* other : {&b, &c}) {
    std::vector<cri::ContainerEventResponse> theirs =
        other->WaitForCount(want.size(), std::chrono::seconds(30));
    ASSERT_EQ(theirs.size(), events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(theirs[i], events[i]))
          << "event " << i << ":\n"
          << theirs[i].DebugString() << "vs\n"
          << events[i].DebugString();
    }
  }

  int64_t last = t0;
  for (size_t i = 0; i < events.size(); ++i) {
    const cri::ContainerEventResponse& e = events[i];
    SCOPED_TRACE(StrCat("event ", i, ": ", want[i]));
    EXPECT_GE(e.created_at(), last);  // nanoseconds, in order
    last = e.created_at();
    ASSERT_TRUE(e.has_pod_sandbox_status());
    const cri::PodSandboxStatus& ps = e.pod_sandbox_status();
    EXPECT_EQ(ps.id(), pod_id);
    EXPECT_EQ(ps.metadata().name(), "ev-life");
    EXPECT_EQ(ps.metadata().uid(), pod.metadata().uid());
    EXPECT_EQ(ps.metadata().namespace_(), kPodNamespace);
    EXPECT_EQ(AsMap(ps.labels()), AsMap(pod.labels()));
    const bool pod_down = i >= 9;  // from the pod's STOPPED on
    EXPECT_EQ(ps.state(), pod_down ? cri::SANDBOX_NOTREADY : cri::SANDBOX_READY);
  }
  EXPECT_LE(last, NowNs());

  // What each event says about the containers.
  EXPECT_EQ(events[0].containers_statuses_size(), 0);  // the pod alone
  EXPECT_EQ(events[1].containers_statuses_size(), 0);
  const cri::ContainerStatus* s = FindStatus(events[2], killed);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state(), cri::CONTAINER_CREATED);
  EXPECT_EQ(s->started_at(), 0);
  s = FindStatus(events[3], killed);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state(), cri::CONTAINER_RUNNING);
  EXPECT_GT(s->started_at(), 0);
  s = FindStatus(events[4], killed);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(s->exit_code(), 137);
  EXPECT_GE(s->finished_at(), s->started_at());
  EXPECT_EQ(events[5].containers_statuses_size(), 0) << "the removed container is gone";
  s = FindStatus(events[7], exits);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state(), cri::CONTAINER_RUNNING);
  s = FindStatus(events[8], exits);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(s->exit_code(), 3);
  EXPECT_EQ(s->reason(), "Error");
  EXPECT_GT(s->finished_at(), s->started_at());
  ASSERT_EQ(events[9].containers_statuses_size(), 1);  // pod STOPPED: its exited container
  EXPECT_EQ(events[9].containers_statuses(0).state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(events[10].containers_statuses_size(), 0);
  EXPECT_EQ(events[11].containers_statuses_size(), 0);

  EXPECT_EQ(Metric("berth_events_dropped_total"), 0);
  ExpectNoLeaks("after the lifecycle");
}

// ---------------------------------------------------------------------------------------------
// 1b. An exit that happened while berthd was down is published by its recovery: before any
//     call, the restarted berthd has published exactly that STOPPED event, and the container's
//     status has the exit. (Clients that subscribe while berthd recovers get it; when they
//     subscribe cannot be made deterministic here, since recovery takes milliseconds and
//     handler probes run after it, so the test counts what was published instead.)

TEST_F(EventsIT, ExitWhileDownIsPublishedDuringRecovery) {
  cri::PodSandboxConfig pod = PodConfig("ev-down", cri::NODE, cri::CONTAINER);
  std::string pod_id, ctr;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(
      CreateCtr(pod_id, pod, CtrConfig("short", {"sh", "-c", "sleep 1; exit 7"}), &ctr));
  IT_ASSERT_GRPC_OK(StartCtr(ctr));
  berthd_->Kill();
  const fs::path exit_file = berthd_->state() / "containers" / ctr / "exit";
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!Exists(exit_file) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(Exists(exit_file)) << "the container did not exit while berthd was down";

  IT_ASSERT_OK(berthd_->Start(DaemonArgs()));
  EXPECT_EQ(Metric("berth_events_published_total"), 1)
      << "recovery publishes the exit, and nothing else changed";
  // A subscriber from now on sees the lifecycle go on from there.
  EventStream stream(berthd_->runtime(), /*read=*/true);
  WaitForSubscribers(1);
  cri::ContainerStatusRequest req;
  req.set_container_id(ctr);
  cri::ContainerStatusResponse resp;
  grpc::ClientContext ctx;
  IT_ASSERT_GRPC_OK(berthd_->runtime().ContainerStatus(&ctx, req, &resp));
  EXPECT_EQ(resp.status().state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(resp.status().exit_code(), 7);
  EXPECT_EQ(resp.status().reason(), "Error");
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  auto got = stream.WaitFor(
      [&](const cri::ContainerEventResponse& e) {
        return e.container_id() == ctr && e.container_event_type() == cri::CONTAINER_DELETED_EVENT;
      },
      std::chrono::seconds(30));
  ASSERT_FALSE(got.empty());
  const std::vector<std::string> seen = Summary(got);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "CONTAINER_STOPPED_EVENT " + ctr), 0)
      << "the exit is not published twice";
  ExpectNoLeaks("after the restart");
}

// ---------------------------------------------------------------------------------------------
// 2. A consumer that stops reading: lifecycles complete regardless, the events it cannot take
//    are dropped and counted, a reading consumer misses nothing, and the stuck stream works
//    again once its client reads.

TEST_F(EventsIT, StuckConsumerDoesNotHoldUpTheRuntime) {
  EventStream stuck(berthd_->runtime(), /*read=*/false);
  EventStream healthy(berthd_->runtime(), /*read=*/true);
  ASSERT_NO_FATAL_FAILURE(WaitForSubscribers(2));
  const double dropped_before = Metric("berth_events_dropped_total");
  EXPECT_EQ(dropped_before, 0);

  // Enough lifecycles to overflow the stuck stream's transport buffers and its queue of 64.
  std::vector<std::pair<std::string, std::string>> done;  // (pod, container)
  double dropped = dropped_before;
  for (int i = 0; i < 100 && dropped == dropped_before; ++i) {
    std::string pod_id, ctr_id;
    ASSERT_NO_FATAL_FAILURE(RunLifecycle(StrCat("stuck-", i), 16 << 10, &pod_id, &ctr_id));
    done.emplace_back(pod_id, ctr_id);
    dropped = Metric("berth_events_dropped_total");
  }
  EXPECT_GT(dropped, dropped_before) << "after " << done.size() << " lifecycles";
  std::cout << "[ report   ] " << done.size() << " lifecycles (" << done.size() * 8
            << " events) with a stuck consumer until it dropped " << dropped - dropped_before
            << "\n";
  // Each dropped event is logged once per streak.
  EXPECT_THAT(berthd_->Log(), HasSubstr("event=events_dropped"));

  // The reading consumer got every event of every lifecycle, in order.
  std::vector<std::string> want;
  for (const auto& [p, c] : done) {
    auto one = LifecycleSummary(p, c);
    want.insert(want.end(), one.begin(), one.end());
  }
  EXPECT_EQ(Summary(healthy.WaitForCount(want.size(), std::chrono::seconds(60))), want);

  // The stuck client reads again: what it gets is in order, ends with the newest events, and a
  // new lifecycle reaches it whole.
  stuck.StartReading();
  std::string pod_id, ctr_id;
  ASSERT_NO_FATAL_FAILURE(RunLifecycle("stuck-last", 0, &pod_id, &ctr_id));
  auto last = LifecycleSummary(pod_id, ctr_id);
  auto got = stuck.WaitFor(
      [&](const cri::ContainerEventResponse& e) {
        return e.container_id() == pod_id &&
               e.container_event_type() == cri::CONTAINER_DELETED_EVENT;
      },
      std::chrono::seconds(60));
  std::vector<std::string> summary = Summary(got);
  ASSERT_GE(summary.size(), last.size());
  EXPECT_EQ(std::vector<std::string>(summary.end() - static_cast<long>(last.size()), summary.end()),
            last);
  EXPECT_LT(summary.size(), want.size() + last.size()) << "it cannot have got everything";
  int64_t prev = 0;
  for (const auto& e : got) {
    EXPECT_GE(e.created_at(), prev);
    prev = e.created_at();
  }
  ExpectNoLeaks("after the lifecycles");
}

// ---------------------------------------------------------------------------------------------
// 3. An OOM kill is reported as reason OOMKilled with exit code 137, by event and by status,
//    and counted.

TEST_F(EventsIT, OomKillIsReportedAsOomKilledWith137) {
  EventStream events(berthd_->runtime(), true);
  ASSERT_NO_FATAL_FAILURE(WaitForSubscribers(1));
  EXPECT_EQ(Metric("berth_container_oom_events_total"), 0);

  cri::PodSandboxConfig pod = PodConfig("ev-oom", cri::NODE, cri::CONTAINER);
  std::string pod_id, ctr;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  // busybox dd allocates its block (64 MiB) and fills it from /dev/zero: in a 32 MiB memory
  // cgroup without swap the kernel OOM-kills it, the container's init.
  cri::ContainerConfig cc =
      CtrConfig("hog", {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"});
  cc.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, cc, &ctr));
  IT_ASSERT_GRPC_OK(StartCtr(ctr));
  auto got = events.WaitFor(
      [&](const cri::ContainerEventResponse& e) {
        return e.container_id() == ctr && e.container_event_type() == cri::CONTAINER_STOPPED_EVENT;
      },
      std::chrono::seconds(60));
  ASSERT_FALSE(got.empty());
  ASSERT_EQ(Summary(got).back(), "CONTAINER_STOPPED_EVENT " + ctr);
  const cri::ContainerStatus* s = FindStatus(got.back(), ctr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(s->reason(), "OOMKilled");
  EXPECT_EQ(s->exit_code(), 137);

  std::optional<cri::ContainerStatus> st = CtrStatusOf(ctr);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->reason(), "OOMKilled");
  EXPECT_EQ(st->exit_code(), 137);
  EXPECT_EQ(Metric("berth_container_oom_events_total"), 1);

  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the OOM kill");
}

// ---------------------------------------------------------------------------------------------
// 4. The metrics endpoint serves well-formed exposition text whose figures follow real calls.

TEST_F(EventsIT, MetricsFollowRealCalls) {
  std::map<std::string, PromFamily> m0 = Scrape();
  ASSERT_FALSE(m0.empty());
  for (const char* family :
       {"berth_grpc_requests_total", "berth_grpc_request_duration_seconds",
        "berth_image_pull_bytes_total", "berth_image_pull_throughput_bytes_per_second",
        "berth_events_published_total", "berth_events_dropped_total", "berth_event_subscribers",
        "berth_pods", "berth_containers", "berth_monitor_processes",
        "berth_container_oom_events_total", "process_cpu_seconds_total",
        "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"}) {
    EXPECT_TRUE(m0.contains(family)) << family;
  }
  EXPECT_EQ(m0["berth_grpc_requests_total"].type, "counter");
  EXPECT_EQ(m0["berth_grpc_request_duration_seconds"].type, "histogram");
  EXPECT_GT(PromValue(m0, "process_resident_memory_bytes"), 1 << 20);

  // The fixture's pull downloaded the manifest and every blob once.
  uint64_t image_bytes = busybox_->top.size();
  for (const BuiltBlob& b : busybox_->blobs) image_bytes += b.size();
  EXPECT_EQ(PromValue(m0, "berth_image_pull_bytes_total"), static_cast<double>(image_bytes));
  EXPECT_EQ(PromValue(m0, "berth_image_pull_throughput_bytes_per_second_count"), 1);
  EXPECT_EQ(PromValue(m0, "berth_grpc_requests_total", {{"method", "PullImage"}, {"code", "OK"}}),
            1);

  // Counters move with calls, by method and code; the histogram counts the same calls.
  const std::map<std::string, std::string> version_ok = {{"method", "Version"}, {"code", "OK"}};
  const double v0 = PromValue(m0, "berth_grpc_requests_total", version_ok);
  const double h0 =
      PromValue(m0, "berth_grpc_request_duration_seconds_count", {{"method", "Version"}});
  EXPECT_GE(v0, 1);  // the fixture waited for Version
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    cri::VersionResponse resp;
    IT_ASSERT_GRPC_OK(berthd_->runtime().Version(&ctx, cri::VersionRequest(), &resp));
  }
  cri::ContainerStatusResponse missing;
  EXPECT_EQ(CtrStatus(std::string(64, 'e'), &missing).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CtrStatus("", &missing).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  cri::PodSandboxConfig pod = PodConfig("ev-metrics", cri::NODE, cri::CONTAINER);
  std::string pod_id, ctr;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(CreateCtr(pod_id, pod, CtrConfig("c", {"sleep", "1000"}), &ctr));
  IT_ASSERT_GRPC_OK(StartCtr(ctr));

  std::map<std::string, PromFamily> m1 = Scrape();
  EXPECT_EQ(PromValue(m1, "berth_grpc_requests_total", version_ok), v0 + 3);
  EXPECT_EQ(PromValue(m1, "berth_grpc_request_duration_seconds_count", {{"method", "Version"}}),
            h0 + 3);
  EXPECT_EQ(PromValue(m1, "berth_grpc_requests_total",
                      {{"method", "ContainerStatus"}, {"code", "NOT_FOUND"}}),
            1);
  EXPECT_EQ(PromValue(m1, "berth_grpc_requests_total",
                      {{"method", "ContainerStatus"}, {"code", "INVALID_ARGUMENT"}}),
            1);
  EXPECT_EQ(
      PromValue(m1, "berth_grpc_requests_total", {{"method", "StartContainer"}, {"code", "OK"}}),
      1);
  EXPECT_EQ(PromValue(m1, "berth_pods", {{"state", "ready"}}), 1);
  EXPECT_EQ(PromValue(m1, "berth_containers", {{"state", "running"}}), 1);
  EXPECT_EQ(PromValue(m1, "berth_monitor_processes"), 1);
  EXPECT_EQ(PromValue(m1, "berth_events_published_total"),
            4);  // pod created+started, ctr created+started

  IT_ASSERT_GRPC_OK(StopPod(pod_id));
  std::map<std::string, PromFamily> m2 = Scrape();
  EXPECT_EQ(PromValue(m2, "berth_pods", {{"state", "notready"}}), 1);
  EXPECT_EQ(PromValue(m2, "berth_containers", {{"state", "exited"}}), 1);
  EXPECT_EQ(PromValue(m2, "berth_monitor_processes"), 0);
  EXPECT_GE(PromValue(m2, "process_cpu_seconds_total"), PromValue(m0, "process_cpu_seconds_total"));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  ExpectNoLeaks("after the metrics test");
}

// The endpoint refuses addresses beyond loopback unless explicitly allowed.
TEST_F(EventsIT, MetricsAddressBeyondLoopbackNeedsConsent) {
  auto config = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {BERTHD_PATH, "--config",
                                     (berthd_->dir() / "config.toml").string(),
                                     "--config-dropin-dir", (berthd_->dir() / "berth.d").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("config");
    StatusOr<ProcessResult> r = RunProcess(argv);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ProcessResult{};
  };
  ProcessResult refused = config({"--metrics-address", "0.0.0.0:9153"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("metrics.allow_non_loopback"));
  EXPECT_EQ(config({"--metrics-address", ":9153"}).exit_code, 2);
  EXPECT_EQ(config({"--metrics-address", "metrics.example:9153"}).exit_code, 2);  // no lookups
  ProcessResult allowed =
      config({"--metrics-address", "0.0.0.0:9153", "--metrics-allow-non-loopback"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_THAT(allowed.out, HasSubstr("allow_non_loopback = true"));
  EXPECT_EQ(config({"--metrics-address", "[::1]:0"}).exit_code, 0);
  EXPECT_EQ(config({"--metrics-address", "localhost:9153"}).exit_code, 0);
}

// ---------------------------------------------------------------------------------------------
// 5. berthctl events follows the stream and prints each event as crictl's `events -o json`.

TEST_F(EventsIT, BerthctlEventsPrintsEachEventAsJson) {
  const fs::path berthctl = fs::path(BERTHD_PATH).parent_path() / "berthctl";
  const fs::path out = berthd_->dir() / "events.json";
  std::vector<std::string> args = {berthctl.string(), "-r",
                                   StrCat("unix://", berthd_->socket_path().string()), "events"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ScopeGuard reap([&] {
    ::kill(pid, SIGTERM);
    int st = 0;
    ::waitpid(pid, &st, 0);
  });
  ASSERT_NO_FATAL_FAILURE(WaitForSubscribers(1));

  cri::PodSandboxConfig pod = PodConfig("ev-ctl", cri::NODE, cri::CONTAINER);
  std::string pod_id;
  IT_ASSERT_GRPC_OK(RunPod(pod, &pod_id));
  IT_ASSERT_GRPC_OK(RemovePod(pod_id));
  // CREATED, STARTED, STOPPED, DELETED of the pod: four indented JSON objects.
  std::string text = WaitForLog(
      out, [](const std::string& t) { return CountOf(t, "\n}\n") >= 4; }, std::chrono::seconds(30));
  std::vector<nlohmann::json> objs;
  size_t start = 0;
  for (size_t end = text.find("\n}\n"); end != std::string::npos; end = text.find("\n}\n", start)) {
    objs.push_back(nlohmann::json::parse(text.substr(start, end + 2 - start), nullptr, false));
    start = end + 3;
  }
  ASSERT_EQ(objs.size(), 4u) << text;
  const char* types[] = {"CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT",
                         "CONTAINER_STOPPED_EVENT", "CONTAINER_DELETED_EVENT"};
  for (size_t i = 0; i < objs.size(); ++i) {
    ASSERT_FALSE(objs[i].is_discarded()) << text;
    EXPECT_EQ(objs[i]["containerId"], pod_id);
    EXPECT_EQ(objs[i]["containerEventType"], types[i]);
    EXPECT_TRUE(objs[i]["createdAt"].is_string());  // jsonpb writes int64 as a string
    EXPECT_EQ(objs[i]["podSandboxStatus"]["metadata"]["name"], "ev-ctl");
    EXPECT_TRUE(objs[i]["containersStatuses"].is_array());  // empty lists are written too
  }
  EXPECT_THAT(text, ::testing::StartsWith("{\n  \""));  // indented by two, as crictl
}

}  // namespace
}  // namespace berth::testing
