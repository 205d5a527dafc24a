// Mutual exclusion per key (a pod id, a container name, ...): a mutex is made
// when a key is first locked and dropped when nobody holds or waits for it,
// so keys that come and go do not accumulate.
#pragma once

#include <map>
#include <mutex>
#include <string>

namespace berth {

// Thread-safe. Must outlive every Held it hands out.
class KeyedMutex {
  struct Entry {
    std::mutex mutex;
    int users = 0;  // holders and waiters; guarded by mu_
  };
  using Entries = std::map<std::string, Entry>;  // node-based: iterators stay valid

 public:
  // Holds the lock of one key until destroyed.
  class Held {
   public:
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    Held(Held&& other) noexcept : owner_(other.owner_), it_(other.it_) { other.owner_ = nullptr; }
    ~Held() {
      if (owner_ != nullptr) owner_->Release(it_);
    }

   private:
    friend class KeyedMutex;
    Held(KeyedMutex* owner, Entries::iterator it) : owner_(owner), it_(it) {}
    KeyedMutex* owner_;
    Entries::iterator it_;
  };

  // Blocks until `key` is free and takes it. `waited`, when given, tells
  // whether another holder had to finish first (a retry of a call in flight).
  Held Acquire(const std::string& key, bool* waited = nullptr) {
    Entries::iterator it;
    {
      std::lock_guard lock(mu_);
      it = entries_.try_emplace(key).first;
      ++it->second.users;
    }
    const bool free = it->second.mutex.try_lock();
    if (!free) it->second.mutex.lock();
    if (waited != nullptr) *waited = !free;
    return Held(this, it);
  }

 private:
  void Release(Entries::iterator it) {
    it->second.mutex.unlock();
    std::lock_guard lock(mu_);
    if (--it->second.users == 0) entries_.erase(it);
  }

  std::mutex mu_;
  Entries entries_;
};

}  // namespace berth
