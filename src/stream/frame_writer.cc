#include "stream/frame_writer.h"

namespace berth::stream {
namespace {
constexpr size_t kMaxQueuedControlFrames = 4096;
// Frames are gathered into writes of about this size.
constexpr size_t kBatchBytes = 64 * 1024;
}  // namespace

FrameWriter::FrameWriter(Transport& transport, size_t max_queued_data)
    : transport_(transport), max_queued_data_(max_queued_data) {}

FrameWriter::~FrameWriter() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

void FrameWriter::Start() {
  thread_ = std::thread([this] { Run(); });
}

Status FrameWriter::EnqueueControl(std::string bytes) {
  std::lock_guard lock(mu_);
  if (!error_.ok()) return error_;
  if (finishing_ || stopped_) return FailedPreconditionError("connection is closing");
  if (control_.size() >= kMaxQueuedControlFrames) {
    error_ = ResourceExhaustedError("peer does not read its control frames");
    control_.clear();
    data_.clear();
    queued_data_ = 0;
    cv_.notify_all();
    transport_.Cancel();
    return error_;
  }
  control_.push_back(std::move(bytes));
  cv_.notify_all();
  return OkStatus();
}

Status FrameWriter::EnqueueData(std::string bytes) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    return !error_.ok() || finishing_ || stopped_ || queued_data_ < max_queued_data_;
  });
  if (!error_.ok()) return error_;
  if (finishing_ || stopped_) return FailedPreconditionError("connection is closing");
  queued_data_ += bytes.size();
  data_.push_back(std::move(bytes));
  cv_.notify_all();
  return OkStatus();
}

Status FrameWriter::EnqueueAfterData(std::string bytes) {
  std::lock_guard lock(mu_);
  if (!error_.ok()) return error_;
  if (finishing_ || stopped_) return FailedPreconditionError("connection is closing");
  queued_data_ += bytes.size();
  data_.push_back(std::move(bytes));
  cv_.notify_all();
  return OkStatus();
}

void FrameWriter::Finish(bool shutdown_write, Clock::time_point deadline) {
  {
    std::unique_lock lock(mu_);
    if (!finishing_) {
      finishing_ = true;
      shutdown_write_ = shutdown_write;
      cv_.notify_all();
    }
    if (!thread_.joinable()) return;
    if (cv_.wait_until(lock, deadline, [&] { return stopped_; })) return;
  }
  Cancel();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stopped_; });
}

void FrameWriter::Cancel() {
  {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = CancelledError("connection cancelled");
    control_.clear();
    data_.clear();
    queued_data_ = 0;
    cv_.notify_all();
  }
  transport_.Cancel();
}

Status FrameWriter::status() const {
  std::lock_guard lock(mu_);
  return error_;
}

void FrameWriter::Run() {
  std::string batch;
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock,
             [&] { return !error_.ok() || !control_.empty() || !data_.empty() || finishing_; });
    if (!error_.ok()) break;
    if (control_.empty() && data_.empty()) {
      // finishing_ and nothing left.
      if (shutdown_write_) {
        lock.unlock();
        transport_.ShutdownWrite();
        lock.lock();
      }
      break;
    }
    batch.clear();
    while (batch.size() < kBatchBytes && !control_.empty()) {
      batch += control_.front();
      control_.pop_front();
    }
    while (batch.size() < kBatchBytes && !data_.empty()) {
      queued_data_ -= data_.front().size();
      if (batch.empty()) {
        batch = std::move(data_.front());
      } else {
        batch += data_.front();
      }
      data_.pop_front();
    }
    cv_.notify_all();  // queue space for producers
    lock.unlock();
    Status s = transport_.Write(batch);
    lock.lock();
    if (!s.ok()) {
      if (error_.ok()) error_ = s;
      control_.clear();
      data_.clear();
      queued_data_ = 0;
      break;
    }
  }
  stopped_ = true;
  cv_.notify_all();
}

}  // namespace berth::stream
