// Moves bytes between a client's streams (SPDY streams or WebSocket channels,
// seen as ByteSource/ByteSink) and an exec'd process or attach session
// (ProcessStreams): output on the caller's thread, stdin and resize events on
// two threads of their own. Output is read from the process only when the
// client took the previous piece, so a slow client throttles the process.
#pragma once

#include <mutex>
#include <optional>
#include <thread>

#include "stream/byte_stream.h"
#include "stream/runtime.h"

namespace berth::stream {

struct ProcessIo {
  ByteSource* stdin = nullptr;   // the client's stdin; its end closes the process's stdin
  ByteSink* stdout = nullptr;    // null: stdout is discarded
  ByteSink* stderr = nullptr;    // null: stderr is discarded (a TTY has none)
  ByteSource* resize = nullptr;  // TerminalSize JSON objects
};

class ProcessPump {
 public:
  // `process` and the endpoints in `io` must outlive the pump.
  ProcessPump(ProcessStreams& process, ProcessIo io);
  ~ProcessPump();  // joins; the owner must have unblocked the input sources
  ProcessPump(const ProcessPump&) = delete;
  ProcessPump& operator=(const ProcessPump&) = delete;

  // Starts the stdin and resize threads.
  void StartInput();
  // Copies output until the process's output ends, closes the output sinks,
  // and returns Wait()'s result. An error writing to the client cancels the
  // process and is returned.
  StatusOr<std::optional<int>> RunOutput();
  // Waits for the input threads; they end when their source ends or fails
  // (the owner closes or cancels the connection first).
  void JoinInput();

 private:
  void StdinLoop();
  void ResizeLoop();

  ProcessStreams& process_;
  ProcessIo io_;
  // ProcessStreams allows one caller at a time of WriteStdin, CloseStdin, Resize.
  std::mutex input_mu_;
  std::thread stdin_thread_;
  std::thread resize_thread_;
};

}  // namespace berth::stream
