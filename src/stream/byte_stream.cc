#include "stream/byte_stream.h"

#include <algorithm>
#include <cstring>

namespace berth::stream {

StatusOr<size_t> BoundedPipe::Read(std::span<char> buf) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !aborted_.ok() || queued_ > 0 || closed_; });
  if (!aborted_.ok()) return aborted_;
  if (queued_ == 0) return size_t{0};
  size_t copied = 0;
  while (copied < buf.size() && !chunks_.empty()) {
    const std::string& front = chunks_.front();
    size_t n = std::min(buf.size() - copied, front.size() - front_offset_);
    std::memcpy(buf.data() + copied, front.data() + front_offset_, n);
    copied += n;
    front_offset_ += n;
    if (front_offset_ == front.size()) {
      chunks_.pop_front();
      front_offset_ = 0;
    }
  }
  queued_ -= copied;
  cv_.notify_all();
  return copied;
}

Status BoundedPipe::Write(std::string_view data) {
  if (data.empty()) return OkStatus();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !aborted_.ok() || closed_ || queued_ < capacity_; });
  if (!aborted_.ok()) return aborted_;
  if (closed_) return FailedPreconditionError("write to a closed pipe");
  chunks_.emplace_back(data);
  queued_ += data.size();
  cv_.notify_all();
  return OkStatus();
}

Status BoundedPipe::CloseWrite() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
  return OkStatus();
}

void BoundedPipe::Abort(Status why) {
  std::lock_guard lock(mu_);
  if (!aborted_.ok()) return;
  aborted_ = why.ok() ? CancelledError("pipe aborted") : std::move(why);
  chunks_.clear();
  queued_ = 0;
  front_offset_ = 0;
  cv_.notify_all();
}

size_t BoundedPipe::queued() const {
  std::lock_guard lock(mu_);
  return queued_;
}

}  // namespace berth::stream
