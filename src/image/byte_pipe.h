// A bounded in-memory pipe between one writer thread and one reader thread:
// the download of a layer writes into it while the unpacker reads from it, so
// a layer is unpacked while it streams. Either side can close it with an
// error, which the other side then sees, so a failure on one side stops both.
#pragma once

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>

#include "common/status.h"

namespace berth::image {

class BytePipe {
 public:
  explicit BytePipe(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  // Blocks while the pipe is full. Fails with the reader's error once the
  // reader has closed.
  Status Write(const char* data, size_t len) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return buffered_ < capacity_ || reader_closed_; });
    if (reader_closed_) return reader_status_;
    chunks_.emplace_back(data, len);
    buffered_ += len;
    cv_.notify_all();
    return OkStatus();
  }

  // End of stream for the reader: OK means a clean EOF, else the error.
  void CloseWrite(Status status) {
    std::lock_guard lock(mu_);
    writer_closed_ = true;
    writer_status_ = std::move(status);
    cv_.notify_all();
  }

  // Returns bytes read, 0 at a clean end of stream, or the writer's error.
  StatusOr<size_t> Read(char* buf, size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !chunks_.empty() || writer_closed_; });
    if (chunks_.empty()) {
      if (!writer_status_.ok()) return writer_status_;
      return size_t{0};
    }
    std::string& front = chunks_.front();
    size_t take = std::min(n, front.size() - front_offset_);
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes, not a string
    std::memcpy(buf, front.data() + front_offset_, take);
    front_offset_ += take;
    if (front_offset_ == front.size()) {
      buffered_ -= front.size();
      chunks_.pop_front();
      front_offset_ = 0;
      cv_.notify_all();
    }
    return take;
  }

  // The reader stops reading; pending and future writes fail with `status`.
  void CloseRead(Status status) {
    std::lock_guard lock(mu_);
    reader_closed_ = true;
    reader_status_ = status.ok() ? CancelledError("layer reader closed") : std::move(status);
    chunks_.clear();
    buffered_ = 0;
    cv_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  size_t front_offset_ = 0;
  size_t buffered_ = 0;
  bool writer_closed_ = false, reader_closed_ = false;
  Status writer_status_, reader_status_;
};

}  // namespace berth::image
