// Byte-stream endpoints shared by the SPDY and WebSocket code: a SPDY stream,
// a WebSocket channel and an in-memory pipe all look the same to the exec and
// port-forward logic, which is how that logic is written once for both
// protocols.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::stream {

// Something to read bytes from. Read blocks until at least one byte is
// available and returns how many it copied, or 0 at end of stream.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual StatusOr<size_t> Read(std::span<char> buf) = 0;
};

// Something to write bytes to. Write blocks while the receiver cannot take
// more (back-pressure); CloseWrite signals end of stream to the receiver.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Write(std::string_view data) = 0;
  virtual Status CloseWrite() = 0;
};

// A bounded in-memory byte queue: one writer, one reader. Write blocks while
// `capacity` or more bytes are queued, so the pipe holds at most `capacity`
// plus one Write's bytes. Abort() fails both sides at once. Thread-safe.
class BoundedPipe final : public ByteSource, public ByteSink {
 public:
  explicit BoundedPipe(size_t capacity) : capacity_(capacity) {}

  StatusOr<size_t> Read(std::span<char> buf) override;
  Status Write(std::string_view data) override;
  // The reader sees end of stream after the queued bytes.
  Status CloseWrite() override;
  // Both sides fail from now on with `why`; queued bytes are dropped.
  void Abort(Status why);
  size_t queued() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  size_t front_offset_ = 0;  // bytes of chunks_.front() already read
  size_t queued_ = 0;
  bool closed_ = false;
  Status aborted_;
};

}  // namespace berth::stream
