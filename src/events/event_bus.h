// A publish/subscribe bus for lifecycle events (GetContainerEvents). Each
// subscriber gets a bounded queue of its own; publishing never waits for a
// subscriber. When a subscriber's queue is full, its oldest queued event is
// dropped to make room (the newest events carry the most recent pod state,
// which is what a consumer that mirrors state needs), and the drop is counted
// for that subscriber and for the bus. A slow or stuck consumer therefore
// costs the runtime at most one short mutex per publish.
//
// Every subscriber sees the events it keeps in the one global publish order.
//
// Thread-safe: Publish, Subscribe and Close may be called from any thread; a
// Subscription is used by one consumer thread (its destructor unsubscribes).
// Subscriptions may outlive the bus.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace berth::events {

// What the bus reports about a drop, for logging. The callback runs on the
// publishing thread with the bus's lock held: it must be short and must not
// call back into the bus.
struct DropNotice {
  uint64_t subscriber = 0;       // subscription number (1, 2, ...)
  uint64_t dropped_so_far = 0;   // by this subscriber
  bool first_of_streak = false;  // the first drop since the consumer last caught up
};

template <typename Event>
class EventBus {
 public:
  using EventPtr = std::shared_ptr<const Event>;

  class Subscription;

  // `queue_capacity`: events a subscriber may have waiting (at least 1).
  // `on_drop` (may be empty) is told of each drop.
  explicit EventBus(size_t queue_capacity, std::function<void(const DropNotice&)> on_drop = {})
      : state_(std::make_shared<State>()) {
    state_->capacity = queue_capacity == 0 ? 1 : queue_capacity;
    state_->on_drop = std::move(on_drop);
  }
  ~EventBus() { Close(); }
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // A new subscriber; it receives the events published after this call. On
  // a closed bus the subscription is closed at once.
  std::unique_ptr<Subscription> Subscribe() {
    auto q = std::make_shared<Queue>();
    std::lock_guard lock(state_->mu);
    q->number = ++state_->next_number;
    q->closed = state_->closed;
    if (!state_->closed) state_->queues.push_back(q);
    return std::unique_ptr<Subscription>(new Subscription(state_, q));
  }

  // Hands `event` to every subscriber. Never blocks on a consumer.
  void Publish(const EventPtr& event) {
    std::lock_guard lock(state_->mu);
    ++state_->published;
    for (const auto& q : state_->queues) {
      DropNotice notice;
      bool dropped = false;
      {
        std::lock_guard ql(q->mu);
        if (q->events.size() >= state_->capacity) {
          q->events.pop_front();
          ++q->dropped;
          dropped = true;
          notice = {q->number, q->dropped, q->streak == 0};
          ++q->streak;
        }
        q->events.push_back(event);
      }
      q->cv.notify_one();
      if (dropped) {
        ++state_->dropped;
        if (state_->on_drop) state_->on_drop(notice);
      }
    }
  }

  // Wakes every subscriber; their Next() returns what is queued, then
  // nothing. Later subscriptions are closed from the start. Idempotent.
  void Close() {
    std::vector<std::shared_ptr<Queue>> queues;
    {
      std::lock_guard lock(state_->mu);
      state_->closed = true;
      queues.swap(state_->queues);
    }
    for (const auto& q : queues) {
      {
        std::lock_guard ql(q->mu);
        q->closed = true;
      }
      q->cv.notify_all();
    }
  }

  uint64_t published_total() const {
    std::lock_guard lock(state_->mu);
    return state_->published;
  }
  // Events dropped for any subscriber since the bus was made.
  uint64_t dropped_total() const {
    std::lock_guard lock(state_->mu);
    return state_->dropped;
  }
  size_t subscribers() const {
    std::lock_guard lock(state_->mu);
    return state_->queues.size();
  }
  size_t queue_capacity() const { return state_->capacity; }

 private:
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<EventPtr> events;
    uint64_t number = 0;
    uint64_t dropped = 0;
    uint64_t streak = 0;  // drops since the consumer last took an event
    bool closed = false;
  };
  struct State {
    mutable std::mutex mu;
    std::vector<std::shared_ptr<Queue>> queues;  // in subscription order
    size_t capacity = 1;
    uint64_t next_number = 0;
    uint64_t published = 0;
    uint64_t dropped = 0;
    bool closed = false;
    std::function<void(const DropNotice&)> on_drop;
  };

 public:
  class Subscription {
   public:
    ~Subscription() {
      std::lock_guard lock(state_->mu);
      auto& qs = state_->queues;
      for (auto it = qs.begin(); it != qs.end(); ++it) {
        if (*it == queue_) {
          qs.erase(it);
          break;
        }
      }
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

    // The next event, waiting up to `timeout`. Null on timeout, and once the
    // bus is closed and the queue is empty (then closed() is true).
    // `dropped_before`, if given, receives how many events were dropped
    // right before this one (the streak the consumer fell behind by).
    EventPtr Next(std::chrono::milliseconds timeout, uint64_t* dropped_before = nullptr) {
      std::unique_lock lock(queue_->mu);
      queue_->cv.wait_for(lock, timeout, [&] { return !queue_->events.empty() || queue_->closed; });
      if (queue_->events.empty()) return nullptr;
      EventPtr e = std::move(queue_->events.front());
      queue_->events.pop_front();
      if (dropped_before) *dropped_before = queue_->streak;
      queue_->streak = 0;
      return e;
    }
    // The next event if one is queued, without waiting.
    EventPtr TryNext() { return Next(std::chrono::milliseconds(0)); }

    bool closed() const {
      std::lock_guard lock(queue_->mu);
      return queue_->closed && queue_->events.empty();
    }
    uint64_t dropped() const {
      std::lock_guard lock(queue_->mu);
      return queue_->dropped;
    }
    size_t queued() const {
      std::lock_guard lock(queue_->mu);
      return queue_->events.size();
    }
    uint64_t number() const { return queue_->number; }

   private:
    friend class EventBus;
    Subscription(std::shared_ptr<State> state, std::shared_ptr<Queue> queue)
        : state_(std::move(state)), queue_(std::move(queue)) {}
    std::shared_ptr<State> state_;
    std::shared_ptr<Queue> queue_;
  };

 private:
  std::shared_ptr<State> state_;
};

}  // namespace berth::events
