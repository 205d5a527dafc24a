// The lifecycle event bus: order, bounded queues, drop accounting, close.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "events/event_bus.h"

namespace berth::events {
namespace {

using Bus = EventBus<int>;
using std::chrono::milliseconds;

std::shared_ptr<const int> E(int v) { return std::make_shared<const int>(v); }

std::vector<int> Drain(Bus::Subscription& s) {
  std::vector<int> out;
  while (auto e = s.TryNext()) out.push_back(*e);
  return out;
}

TEST(EventBusTest, EverySubscriberGetsEventsInPublishOrder) {
  Bus bus(16);
  auto a = bus.Subscribe();
  auto b = bus.Subscribe();
  for (int i = 0; i < 5; ++i) bus.Publish(E(i));
  EXPECT_EQ(Drain(*a), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Drain(*b), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(bus.published_total(), 5u);
  EXPECT_EQ(bus.dropped_total(), 0u);
}

TEST(EventBusTest, SubscriberSeesOnlyEventsAfterSubscribing) {
  Bus bus(16);
  bus.Publish(E(1));
  auto s = bus.Subscribe();
  bus.Publish(E(2));
  EXPECT_EQ(Drain(*s), (std::vector<int>{2}));
}

TEST(EventBusTest, PublishingWithoutSubscribersKeepsNothing) {
  Bus bus(2);
  for (int i = 0; i < 10; ++i) bus.Publish(E(i));
  EXPECT_EQ(bus.published_total(), 10u);
  EXPECT_EQ(bus.dropped_total(), 0u);
  EXPECT_EQ(bus.subscribers(), 0u);
}

TEST(EventBusTest, FullQueueDropsOldestAndCountsPerSubscriber) {
  std::vector<DropNotice> notices;
  Bus bus(3, [&](const DropNotice& n) { notices.push_back(n); });
  auto slow = bus.Subscribe();
  auto fast = bus.Subscribe();
  for (int i = 0; i < 10; ++i) {
    bus.Publish(E(i));
    ASSERT_NE(fast->TryNext(), nullptr);  // keeps up
  }
  // The slow one keeps the newest three.
  uint64_t before = 0;
  auto first = slow->Next(milliseconds(0), &before);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first, 7);
  EXPECT_EQ(before, 7u);  // it fell behind by seven events
  EXPECT_EQ(Drain(*slow), (std::vector<int>{8, 9}));
  EXPECT_EQ(slow->dropped(), 7u);
  EXPECT_EQ(fast->dropped(), 0u);
  EXPECT_EQ(bus.dropped_total(), 7u);
  ASSERT_EQ(notices.size(), 7u);
  EXPECT_TRUE(notices[0].first_of_streak);
  EXPECT_EQ(notices[0].subscriber, slow->number());
  EXPECT_FALSE(notices[6].first_of_streak);
  EXPECT_EQ(notices[6].dropped_so_far, 7u);

  // Caught up: the next overflow starts a new streak.
  for (int i = 10; i < 14; ++i) {
    bus.Publish(E(i));
    ASSERT_NE(fast->TryNext(), nullptr);
  }
  ASSERT_EQ(notices.size(), 8u);
  EXPECT_TRUE(notices[7].first_of_streak);
  EXPECT_EQ(notices[7].dropped_so_far, 8u);
  EXPECT_EQ(Drain(*slow), (std::vector<int>{11, 12, 13}));
}

TEST(EventBusTest, StuckConsumerNeverBlocksPublisher) {
  Bus bus(4);
  auto stuck = bus.Subscribe();  // never reads
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    for (int i = 0; i < 100000; ++i) bus.Publish(E(i));
    done = true;
  });
  publisher.join();  // would hang if Publish waited for the consumer
  EXPECT_TRUE(done);
  EXPECT_EQ(stuck->queued(), 4u);
  EXPECT_EQ(stuck->dropped(), 100000u - 4u);
  EXPECT_EQ(Drain(*stuck), (std::vector<int>{99996, 99997, 99998, 99999}));
}

TEST(EventBusTest, NextWaitsForAPublish) {
  Bus bus(8);
  auto s = bus.Subscribe();
  std::thread later([&] {
    std::this_thread::sleep_for(milliseconds(20));
    bus.Publish(E(42));
  });
  auto e = s->Next(std::chrono::seconds(30));
  later.join();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, 42);
}

TEST(EventBusTest, NextTimesOutWithNothing) {
  Bus bus(8);
  auto s = bus.Subscribe();
  EXPECT_EQ(s->Next(milliseconds(1)), nullptr);
  EXPECT_FALSE(s->closed());
}

TEST(EventBusTest, CloseWakesWaitersAfterTheyDrainTheirQueue) {
  Bus bus(8);
  auto s = bus.Subscribe();
  bus.Publish(E(1));
  std::thread closer([&] {
    std::this_thread::sleep_for(milliseconds(20));
    bus.Close();
  });
  auto first = s->Next(std::chrono::seconds(30));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first, 1);
  EXPECT_EQ(s->Next(std::chrono::seconds(30)), nullptr);  // woken by Close, not the timeout
  closer.join();
  EXPECT_TRUE(s->closed());
  auto late = bus.Subscribe();
  EXPECT_TRUE(late->closed());
  bus.Publish(E(2));
  EXPECT_EQ(late->TryNext(), nullptr);
}

TEST(EventBusTest, DroppedSubscriptionUnsubscribes) {
  Bus bus(8);
  {
    auto s = bus.Subscribe();
    EXPECT_EQ(bus.subscribers(), 1u);
  }
  EXPECT_EQ(bus.subscribers(), 0u);
}

TEST(EventBusTest, SubscriptionOutlivesBus) {
  std::unique_ptr<Bus::Subscription> s;
  {
    Bus bus(8);
    s = bus.Subscribe();
    bus.Publish(E(5));
  }
  auto e = s->TryNext();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, 5);
  EXPECT_TRUE(s->closed());
}

TEST(EventBusTest, ConcurrentPublishersKeepOneOrderForAllSubscribers) {
  Bus bus(100000);
  auto a = bus.Subscribe();
  auto b = bus.Subscribe();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) bus.Publish(E(t * 1000 + i));
    });
  }
  for (auto& t : threads) t.join();
  std::vector<int> got_a = Drain(*a), got_b = Drain(*b);
  ASSERT_EQ(got_a.size(), 4000u);
  EXPECT_EQ(got_a, got_b);
  // Each publisher's own events stay in its order.
  std::vector<int> last(4, -1);
  for (int v : got_a) {
    EXPECT_GT(v % 1000, last[v / 1000]);
    last[v / 1000] = v % 1000;
  }
}

}  // namespace
}  // namespace berth::events
