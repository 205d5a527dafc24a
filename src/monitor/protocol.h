// Wire contract between berthd and berth-monitor; docs/monitor.md is the
// prose version of this file. Plain constants only: the monitor binary links
// nothing but libc and libstdc++, and this header is shared by both sides.
#pragma once

#include <cstddef>
#include <cstdint>

namespace berth::monitor {

// --- Sync pipe (--sync-fd) --------------------------------------------------
// The monitor writes text lines to the sync fd and then closes it:
//   "monitor <pid>\n"             first, as soon as the long-lived monitor runs
//   "created <container pid>\n"   the runtime's create succeeded, or
//   "error <message>\n"           it failed (the message may span lines; it
//                                 runs to EOF); the monitor then exits 1.
inline constexpr char kSyncMonitor[] = "monitor";
inline constexpr char kSyncCreated[] = "created";
inline constexpr char kSyncError[] = "error";

// --- Attach socket (SOCK_SEQPACKET) -------------------------------------------
// One message is one frame: a type byte followed by at most kMaxFramePayload
// bytes of payload. SEQPACKET keeps message boundaries, so no length prefix.
inline constexpr size_t kMaxFramePayload = 32 * 1024;

enum class FrameType : uint8_t {
  // Client -> monitor.
  kAttach = 'a',      // payload: 1 byte of AttachFlags; answered by kOk or kError
  kStdin = 'i',       // payload: bytes for the container's stdin
  kCloseStdin = 'c',  // this session's stdin reached EOF (see stdin-once)
  kResize = 'r',      // payload: rows, cols as big-endian uint16 (terminal only)
  kReopenLog = 'l',   // reopen the log file; answered by kOk or kError
  // Monitor -> client.
  kStdout = 'o',  // payload: raw container output (all terminal output is stdout)
  kStderr = 'e',
  kExit = 'x',   // payload: exit code in ASCII decimal; the monitor closes after it
  kOk = 'k',     // empty payload
  kError = 'f',  // payload: a human-readable message
};

enum AttachFlags : uint8_t {
  kAttachStdin = 1,
  kAttachStdout = 2,
  kAttachStderr = 4,
};

// --- Exit file ------------------------------------------------------------------
// "key=value\n" lines, written atomically (temp file, fsync, rename) after the
// container's output has been flushed to the log. Unknown keys are ignored by
// readers so fields can be added.
inline constexpr char kExitKeyCode[] = "exit_code";  // 0-255; 128+signal if killed
inline constexpr char kExitKeySignal[] = "signal";   // 0 unless killed by a signal
inline constexpr char kExitKeyTime[] = "exit_time";  // RFC 3339, UTC, nanoseconds
inline constexpr char kExitKeyOom[] = "oom_killed";  // "true" / "false"
inline constexpr char kExitKeyPid[] = "pid";         // host pid of the container init
// "true" when the monitor (--delete-on-exit) had the runtime delete its state
// of the container (cgroups, state directory) before writing the file; absent
// or "false" otherwise, so the reader must delete it.
inline constexpr char kExitKeyRuntimeDeleted[] = "runtime_deleted";

// --- OOM file -------------------------------------------------------------------
// Rewritten atomically (like the exit file) whenever the container's memory
// cgroup counts a new OOM kill, so berthd learns of OOM kills of any process
// of the container while it runs. "key=value\n" lines.
inline constexpr char kOomKeyKills[] = "oom_kills";     // OOM kills since the container was created
inline constexpr char kOomKeyTime[] = "last_oom_time";  // RFC 3339, UTC: when the monitor noticed

// --- CRI log --------------------------------------------------------------------
// Longest content of one log record; longer lines are split into 'P' records.
inline constexpr size_t kDefaultLogLineMax = 16 * 1024;

// Default file names inside the bundle directory.
inline constexpr char kDefaultExitFile[] = "exit";
inline constexpr char kDefaultOomFile[] = "oom";
inline constexpr char kDefaultAttachSocket[] = "attach";
inline constexpr char kDefaultPidFile[] = "pid";
inline constexpr char kConsoleSocketName[] = "console.sock";
// flock(2)ed by berthd around `<runtime> start` and by the monitor around its
// `<runtime> delete` at the exit (--delete-on-exit): a container that exits at
// once must not lose its runtime state while the runtime's start still reads it.
inline constexpr char kRuntimeLockFile[] = "runtime.lock";

}  // namespace berth::monitor
