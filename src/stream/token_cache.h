// Single-use tokens for streaming URLs. The Exec, Attach and PortForward RPCs
// store their request under a fresh random token and return a URL naming it;
// the streaming server consumes the token when the client connects. A token
// that is unknown, already used or older than the TTL finds nothing, so a
// leaked URL is worth at most one connection within its TTL. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

#include "common/status.h"
#include "stream/runtime.h"

namespace berth::stream {

using CachedRequest = std::variant<ExecRequest, AttachRequest, PortForwardRequest>;

class TokenCache {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` is injectable for tests of expiry.
  TokenCache(size_t max_tokens, std::chrono::seconds ttl,
             std::function<Clock::time_point()> now = Clock::now);

  // A new token (128 random bits from the kernel's CSPRNG, as 32 lowercase hex
  // digits) for `request`. RESOURCE_EXHAUSTED when `max_tokens` unexpired
  // tokens are outstanding.
  StatusOr<std::string> Insert(CachedRequest request);
  // Removes and returns the request of `token`; std::nullopt when it is
  // unknown, already consumed or expired.
  std::optional<CachedRequest> Consume(const std::string& token);
  // Outstanding unexpired tokens.
  size_t size();

 private:
  struct Entry {
    CachedRequest request;
    Clock::time_point expires;
  };
  void PurgeExpiredLocked(Clock::time_point now);

  const size_t max_tokens_;
  const std::chrono::seconds ttl_;
  const std::function<Clock::time_point()> now_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::multimap<Clock::time_point, std::string> by_expiry_;
};

}  // namespace berth::stream
