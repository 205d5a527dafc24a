// What a container record's change means as lifecycle events, and the bundle
// watcher that notices the monitor's exit and OOM files (real inotify on a
// temp dir).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "container/bundle_watcher.h"
#include "container/container_manager.h"

namespace berth::container {
namespace {

namespace fs = std::filesystem;
using T = LifecycleEventType;
using S = ContainerState;

ContainerRecord Rec(S state, int64_t started_at = 0, std::string reason = "") {
  ContainerRecord r;
  r.id = "c1";
  r.state = state;
  r.started_at_ns = started_at;
  r.reason = std::move(reason);
  return r;
}

std::vector<T> Events(const std::optional<ContainerRecord>& before,
                      const std::optional<ContainerRecord>& after) {
  return ContainerTransitionEvents(before ? &*before : nullptr, after ? &*after : nullptr);
}

TEST(ContainerTransitionTest, EachLifecycleStepIsOneEvent) {
  EXPECT_EQ(Events(std::nullopt, Rec(S::kCreated)), std::vector<T>{T::kCreated});
  EXPECT_EQ(Events(Rec(S::kCreated), Rec(S::kRunning, 5)), std::vector<T>{T::kStarted});
  EXPECT_EQ(Events(Rec(S::kRunning, 5), Rec(S::kExited, 5, "Completed")),
            std::vector<T>{T::kStopped});
  EXPECT_EQ(Events(Rec(S::kExited, 5), std::nullopt), std::vector<T>{T::kDeleted});
}

TEST(ContainerTransitionTest, NoChangeNoEvent) {
  EXPECT_TRUE(Events(Rec(S::kCreated), Rec(S::kCreated, 5)).empty());  // start stamped
  EXPECT_TRUE(Events(Rec(S::kRunning, 5), Rec(S::kRunning, 5)).empty());
  EXPECT_TRUE(Events(Rec(S::kExited, 5), Rec(S::kExited, 5)).empty());
  EXPECT_TRUE(Events(std::nullopt, std::nullopt).empty());
}

TEST(ContainerTransitionTest, ExitSeenBeforeTheStartIsBothEvents) {
  EXPECT_EQ(Events(Rec(S::kCreated, 5), Rec(S::kExited, 5, "Completed")),
            (std::vector<T>{T::kStarted, T::kStopped}));
}

TEST(ContainerTransitionTest, NeverStartedOrFailedStartIsOnlyStopped) {
  EXPECT_EQ(Events(Rec(S::kCreated), Rec(S::kExited, 0, "Error")), std::vector<T>{T::kStopped});
  EXPECT_EQ(Events(Rec(S::kCreated), Rec(S::kExited, 0, "StartError")),
            std::vector<T>{T::kStopped});
  EXPECT_EQ(Events(Rec(S::kCreated, 5), Rec(S::kExited, 5, "StartError")),
            std::vector<T>{T::kStopped});
}

TEST(ContainerTransitionTest, UnknownStates) {
  // A create whose rollback failed is listed (UNKNOWN): it appears, and goes.
  EXPECT_EQ(Events(std::nullopt, Rec(S::kUnknown)), std::vector<T>{T::kCreated});
  EXPECT_EQ(Events(Rec(S::kUnknown), std::nullopt), std::vector<T>{T::kDeleted});
  EXPECT_EQ(Events(Rec(S::kUnknown), Rec(S::kExited)), std::vector<T>{T::kStopped});
}

TEST(ContainerRecordTest, OomKillsRoundTripAndDefaultToZero) {
  ContainerRecord r = Rec(S::kRunning, 5);
  r.oom_kills = 3;
  auto back = ContainerRecord::FromJson(r.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->oom_kills, 3);
  std::string old = r.ToJson();
  old.erase(old.find(",\"oom_kills\":3"), std::string(",\"oom_kills\":3").size());
  auto legacy = ContainerRecord::FromJson(old);
  ASSERT_TRUE(legacy.ok()) << legacy.status().ToString() << " " << old;
  EXPECT_EQ(legacy->oom_kills, 0);
}

class BundleWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berth-bw-" + RandomHex(4));
    fs::create_directories(dir_ / "a");
    fs::create_directories(dir_ / "b");
    BundleWatcher::Callbacks cb;
    cb.on_file = [this](const std::string& id, const std::string& file) {
      std::lock_guard lock(mu_);
      seen_.push_back(id + "/" + file);
      cv_.notify_all();
    };
    auto w = BundleWatcher::Start(std::move(cb));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    watcher_ = std::move(*w);
  }
  void TearDown() override {
    watcher_.reset();
    fs::remove_all(dir_);
  }
  // Writes `name` the way the monitor does: a temp file renamed into place.
  void Drop(const std::string& sub, const std::string& name) {
    ASSERT_TRUE(WriteFileAtomic(dir_ / sub / name, "x\n").ok());
  }
  std::vector<std::string> WaitSeen(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return seen_.size() >= n; });
    return seen_;
  }

  fs::path dir_;
  std::unique_ptr<BundleWatcher> watcher_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
};

TEST_F(BundleWatcherTest, ReportsExitAndOomFilesOfWatchedBundles) {
  ASSERT_TRUE(watcher_->Watch("ca", dir_ / "a").ok());
  ASSERT_TRUE(watcher_->Watch("cb", dir_ / "b").ok());
  EXPECT_EQ(watcher_->watched(), 2u);
  Drop("a", "config.json");  // not the monitor's: ignored
  Drop("a", "oom");
  Drop("b", "exit");
  Drop("a", "exit");
  EXPECT_EQ(WaitSeen(3), (std::vector<std::string>{"ca/oom", "cb/exit", "ca/exit"}));
}

TEST_F(BundleWatcherTest, UnwatchedAndRemovedBundlesAreForgotten) {
  ASSERT_TRUE(watcher_->Watch("ca", dir_ / "a").ok());
  ASSERT_TRUE(watcher_->Watch("cb", dir_ / "b").ok());
  watcher_->Unwatch("ca");
  watcher_->Unwatch("nobody");  // no-op
  Drop("a", "exit");
  fs::remove_all(dir_ / "b");  // the kernel drops the watch (IN_IGNORED)
  fs::create_directories(dir_ / "c");
  ASSERT_TRUE(watcher_->Watch("cc", dir_ / "c").ok());
  Drop("c", "exit");
  EXPECT_EQ(WaitSeen(1), std::vector<std::string>{"cc/exit"});
  for (int i = 0; i < 100 && watcher_->watched() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(watcher_->watched(), 1u);
}

TEST_F(BundleWatcherTest, WatchOfAMissingDirectoryFails) {
  Status s = watcher_->Watch("cx", dir_ / "missing");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace berth::container
