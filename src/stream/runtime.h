// What the streaming server needs from the rest of berthd: running a command
// in a container (exec), joining a container's stdio (attach) and opening a
// TCP connection inside a pod's network namespace (port-forward). The
// streaming server (stream/) speaks the protocols; an implementation of
// Runtime (in server/, over the container and sandbox managers) does the work.
// Keeping this boundary lets the protocol code be tested with a fake runtime
// and the runtime side be tested without any protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs.h"  // UniqueFd
#include "common/status.h"

namespace berth::stream {

struct TerminalSize {
  uint16_t width = 0;   // columns
  uint16_t height = 0;  // rows
};

// The request a streaming URL was issued for (from the CRI ExecRequest).
struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

// From the CRI AttachRequest.
struct AttachRequest {
  std::string container_id;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

// From the CRI PortForwardRequest. `ports` may be empty: each stream names its
// port (SPDY "port" header, WebSocket "ports" query parameter).
struct PortForwardRequest {
  std::string pod_sandbox_id;
  std::vector<int32_t> ports;
};

// The stdio of one exec'd process or one attach session, as the streaming
// server drives it. Thread-safety: ReadOutput is called by one thread;
// WriteStdin, CloseStdin and Resize by another (one at a time); Cancel from
// any thread, any number of times. Destroying the object releases everything
// (an exec'd process still running is killed and reaped first).
class ProcessStreams {
 public:
  enum class Source { kStdout, kStderr };
  struct Output {
    Source source;
    std::string data;
  };

  virtual ~ProcessStreams() = default;

  // Blocks until output is available and returns it (at most 32 KiB at a
  // time). Returns std::nullopt once every output stream reached EOF (exec:
  // the process closed its stdout/stderr; attach: the container exited or the
  // session was cancelled). Output is only read when the client can take it,
  // which is how a slow client throttles the process instead of making berthd
  // buffer without bound.
  virtual StatusOr<std::optional<Output>> ReadOutput() = 0;
  // Blocks while the process does not read (back-pressure).
  virtual Status WriteStdin(std::string_view data) = 0;
  // The client's stdin ended: close the process's stdin (exec), or end this
  // session's stdin (attach; the container's stdin closes with stdin_once).
  virtual Status CloseStdin() = 0;
  // Terminal window size; a no-op without a terminal.
  virtual Status Resize(TerminalSize size) = 0;
  // After ReadOutput returned std::nullopt: exec waits for the process and
  // returns its exit code (128+signal when killed). Attach returns the
  // container's exit code if it exited during the session, else std::nullopt.
  virtual StatusOr<std::optional<int>> Wait() = 0;
  // The client went away or the server is stopping: exec kills the process
  // (SIGKILL), attach detaches. Unblocks ReadOutput and WriteStdin.
  virtual void Cancel() = 0;
};

// Implemented by berthd over its managers; must be thread-safe. Errors are
// reported to the client on the protocol's error stream, so their messages
// must make sense to a person.
class Runtime {
 public:
  virtual ~Runtime() = default;
  // Starts `req.cmd` in the running container `req.container_id`.
  virtual StatusOr<std::unique_ptr<ProcessStreams>> Exec(const ExecRequest& req) = 0;
  virtual StatusOr<std::unique_ptr<ProcessStreams>> Attach(const AttachRequest& req) = 0;
  // A connected TCP socket to 127.0.0.1:`port` inside the pod's network
  // namespace (the host's for host-network pods).
  virtual StatusOr<UniqueFd> PortForward(const std::string& pod_sandbox_id, uint16_t port) = 0;
};

}  // namespace berth::stream
