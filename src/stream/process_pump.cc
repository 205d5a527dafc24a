#include "stream/process_pump.h"

#include <string>

#include "stream/remotecommand.h"

namespace berth::stream {
namespace {

// Reads `source` to its end, dropping the bytes: once the process stopped
// taking input, the client's further input must not stall the connection.
void Drain(ByteSource& source) {
  char buf[16 * 1024];
  while (true) {
    StatusOr<size_t> n = source.Read(buf);
    if (!n.ok() || *n == 0) return;
  }
}

}  // namespace

ProcessPump::ProcessPump(ProcessStreams& process, ProcessIo io) : process_(process), io_(io) {}

ProcessPump::~ProcessPump() { JoinInput(); }

void ProcessPump::StartInput() {
  if (io_.stdin != nullptr) stdin_thread_ = std::thread([this] { StdinLoop(); });
  if (io_.resize != nullptr) resize_thread_ = std::thread([this] { ResizeLoop(); });
}

void ProcessPump::JoinInput() {
  if (stdin_thread_.joinable()) stdin_thread_.join();
  if (resize_thread_.joinable()) resize_thread_.join();
}

void ProcessPump::StdinLoop() {
  std::string buf(32 * 1024, '\0');
  while (true) {
    StatusOr<size_t> n = io_.stdin->Read(buf);
    if (!n.ok()) return;  // the connection is gone; the owner cancels the process
    if (*n == 0) {
      std::lock_guard lock(input_mu_);
      (void)process_.CloseStdin();
      return;
    }
    Status s;
    {
      std::lock_guard lock(input_mu_);
      s = process_.WriteStdin(std::string_view(buf.data(), *n));
    }
    if (!s.ok()) {
      Drain(*io_.stdin);
      return;
    }
  }
}

void ProcessPump::ResizeLoop() {
  remotecommand::TerminalSizeDecoder decoder;
  char buf[4096];
  while (true) {
    StatusOr<size_t> n = io_.resize->Read(buf);
    if (!n.ok() || *n == 0) return;
    StatusOr<std::vector<TerminalSize>> sizes = decoder.Feed(std::string_view(buf, *n));
    if (!sizes.ok()) {
      Drain(*io_.resize);
      return;
    }
    for (const TerminalSize& size : *sizes) {
      std::lock_guard lock(input_mu_);
      (void)process_.Resize(size);
    }
  }
}

StatusOr<std::optional<int>> ProcessPump::RunOutput() {
  while (true) {
    StatusOr<std::optional<ProcessStreams::Output>> out = process_.ReadOutput();
    if (!out.ok()) {
      process_.Cancel();
      return out.status();
    }
    if (!out->has_value()) break;
    ProcessStreams::Output& o = **out;
    ByteSink* sink = o.source == ProcessStreams::Source::kStdout ? io_.stdout : io_.stderr;
    if (sink == nullptr || o.data.empty()) continue;
    Status s = sink->Write(o.data);
    if (!s.ok()) {
      process_.Cancel();
      return s;
    }
  }
  if (io_.stdout != nullptr) (void)io_.stdout->CloseWrite();
  if (io_.stderr != nullptr) (void)io_.stderr->CloseWrite();
  return process_.Wait();
}

}  // namespace berth::stream
