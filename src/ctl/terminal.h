// The local side of berthctl's interactive streaming verbs: the terminal in
// raw mode, its size (now and after every SIGWINCH), crictl's detach keys,
// and waiting for ctrl-c. Kept apart from the CRI headers, whose Signal enum
// collides with <signal.h>'s macros.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/fs.h"
#include "stream/client.h"

namespace berth::ctl {

// Ends the input at crictl's detach sequence ctrl-p,ctrl-q (docker's): the
// bytes before it are passed on, the sequence itself is not. One reader.
class DetachKeysInput final : public stream::InputSource {
 public:
  explicit DetachKeysInput(stream::InputSource& in) : in_(in) {}
  StatusOr<size_t> Read(std::span<char> buf) override;
  void Interrupt() override { in_.Interrupt(); }

 private:
  stream::InputSource& in_;
  std::string pending_;
  bool held_ctrl_p_ = false;
  bool ended_ = false;
};

// Raw mode on the terminal `fd` for the lifetime of the object (keys,
// including ctrl-c, go to the remote terminal), as kubectl's term.TTY does.
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  struct Saved;
  int fd_;
  std::unique_ptr<Saved> saved_;
};

// The size of terminal `fd` now, then after every SIGWINCH. One at a time
// per process (it owns the SIGWINCH handler while it lives).
class WindowSizeQueue final : public stream::TerminalSizeQueue {
 public:
  explicit WindowSizeQueue(int fd);
  ~WindowSizeQueue() override;
  std::optional<stream::TerminalSize> Next() override;
  void Close() override;

 private:
  struct Handler;
  int fd_;
  bool first_ = true;
  UniqueFd read_end_, write_end_, close_;
  std::unique_ptr<Handler> handler_;
};

// Blocks SIGINT and SIGTERM in the calling thread (threads it starts later
// inherit that) for its lifetime, so that Wait can collect them.
class InterruptWaiter {
 public:
  InterruptWaiter();
  ~InterruptWaiter();
  // True when SIGINT or SIGTERM came; false once `done` returned true first.
  bool Wait(const std::function<bool()>& done);

 private:
  struct Mask;
  std::unique_ptr<Mask> old_;
};

}  // namespace berth::ctl
