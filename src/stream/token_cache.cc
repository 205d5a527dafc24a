#include "stream/token_cache.h"

#include "common/fs.h"

namespace berth::stream {

TokenCache::TokenCache(size_t max_tokens, std::chrono::seconds ttl,
                       std::function<Clock::time_point()> now)
    : max_tokens_(max_tokens), ttl_(ttl), now_(std::move(now)) {}

void TokenCache::PurgeExpiredLocked(Clock::time_point now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    entries_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
}

StatusOr<std::string> TokenCache::Insert(CachedRequest request) {
  std::lock_guard lock(mu_);
  Clock::time_point now = now_();
  PurgeExpiredLocked(now);
  if (entries_.size() >= max_tokens_) {
    return ResourceExhaustedError(StrCat("too many streaming requests outstanding (", max_tokens_,
                                         " unused URLs issued in the last ", ttl_.count(),
                                         "s); try again later"));
  }
  std::string token;
  do {
    token = RandomHex(16);  // getrandom(2)
  } while (entries_.contains(token));
  Clock::time_point expires = now + ttl_;
  entries_.emplace(token, Entry{std::move(request), expires});
  by_expiry_.emplace(expires, token);
  return token;
}

std::optional<CachedRequest> TokenCache::Consume(const std::string& token) {
  std::lock_guard lock(mu_);
  Clock::time_point now = now_();
  PurgeExpiredLocked(now);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  CachedRequest request = std::move(it->second.request);
  auto [lo, hi] = by_expiry_.equal_range(it->second.expires);
  for (auto e = lo; e != hi; ++e) {
    if (e->second == token) {
      by_expiry_.erase(e);
      break;
    }
  }
  entries_.erase(it);
  return request;
}

size_t TokenCache::size() {
  std::lock_guard lock(mu_);
  PurgeExpiredLocked(now_());
  return entries_.size();
}

}  // namespace berth::stream
