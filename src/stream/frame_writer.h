// The write side of a multiplexed connection (SPDY or WebSocket): one thread
// owns the transport's writes and sends queued frames, control frames first.
// Producers never touch the socket, so the connection's reader, which must
// answer PINGs and send replies, is never stuck behind a data write that waits
// for a slow peer (a deadlock when both ends do it at once).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "stream/transport.h"

namespace berth::stream {

class FrameWriter {
 public:
  // `transport` must outlive the writer. Data frames wait while more than
  // `max_queued_data` bytes are queued (back-pressure towards producers).
  FrameWriter(Transport& transport, size_t max_queued_data);
  ~FrameWriter();  // Cancel() and join
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  void Start();
  // Queues encoded bytes ahead of all data. Never blocks; fails once the
  // writer stopped, or when the peer lets more than a few thousand control
  // frames pile up (a PING flood from a peer that does not read).
  Status EnqueueControl(std::string bytes);
  // Queues encoded bytes behind earlier data; blocks for queue space.
  Status EnqueueData(std::string bytes);
  // Queues a small frame behind earlier data without waiting for space (a
  // RST_STREAM must not overtake the data before it, and may be sent from a
  // thread that must not block).
  Status EnqueueAfterData(std::string bytes);
  // Sends everything queued, then (when `shutdown_write`) half-closes the
  // transport, and stops. Later enqueues fail. Returns once done; at
  // `deadline` (a peer that does not read) it cancels instead.
  void Finish(bool shutdown_write, Clock::time_point deadline);
  // Drops the queue, fails blocked producers, cancels the transport (a write
  // in progress fails) and stops.
  void Cancel();
  // The first write error, or OK.
  Status status() const;

 private:
  void Run();

  Transport& transport_;
  const size_t max_queued_data_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> control_;
  std::deque<std::string> data_;
  size_t queued_data_ = 0;
  bool finishing_ = false;
  bool shutdown_write_ = false;
  bool stopped_ = false;  // the thread has exited (or never will send again)
  Status error_;
  std::thread thread_;
};

}  // namespace berth::stream
