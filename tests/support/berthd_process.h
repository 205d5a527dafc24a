// Runs a real berthd for integration tests: a fresh short temp dir (/tmp/bt-XXXXXX, so the
// socket path stays far below the 108-byte sun_path limit) holding
//
//   berthd.sock   the CRI socket         root/     --root          state/   --state
//   certs.d/      --registry-config-dir  cni/      --cni-conf-dir  berthd.log  stdout+stderr
//   config.toml, berth.d/   an explicit config with no registry auth files, so nothing on the
//                          host (/etc/berth, ~/.docker/config.json) leaks into a test
//
// and gRPC stubs for runtime.v1 over the socket.
//
// Include this header before any header that may pull in <signal.h>: the generated CRI header
// declares enum constants named SIGKILL, SIGTERM, ... that the <signal.h> macros would break.
//
// Not thread-safe: start, stop, restart and kill from one thread (the test's main thread: the
// daemon is spawned with PR_SET_PDEATHSIG, tied to the thread that started it). The stubs may
// be used from any thread while the daemon runs.
#pragma once

// clang-format off
#include "runtime/v1/api.grpc.pb.h"  // first: see above
// clang-format on

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::testing {

class BerthdProcess {
 public:
  // `binary`: path of the berthd executable. Test targets get it as a compile definition,
  // `target_compile_definitions(<test> PRIVATE BERTHD_PATH="$<TARGET_FILE:berthd>")`, and
  // pass BERTHD_PATH here (the header does not read the macro, so every translation unit
  // sees the same class).
  explicit BerthdProcess(std::string binary);
  // Stops the daemon (SIGTERM, SIGKILL if it lingers) and removes the temp dir.
  ~BerthdProcess();
  BerthdProcess(const BerthdProcess&) = delete;
  BerthdProcess& operator=(const BerthdProcess&) = delete;

  // Creates the temp dir and its layout; Start() calls it too. Idempotent.
  Status Prepare();

  // Routes pulls from `registry_host` ("127.0.0.1:5000", "docker.io", ...) to the plain-http
  // endpoint `endpoint_url` ("http://127.0.0.1:5000") by writing
  // certs.d/<registry_host>/hosts.toml with `server` and one [host] entry having the pull and
  // resolve capabilities. berthd re-reads these files on every pull, so this may be called
  // while it runs. Prepare()s if needed.
  Status AddRegistryHost(std::string_view registry_host, std::string_view endpoint_url);

  // Spawns berthd with --socket, --root, --state, --registry-config-dir, --cni-conf-dir,
  // --log-level debug, --config and --config-dropin-dir, then `extra_args` (remembered for
  // Restart), and waits at most `ready_timeout` until Version answers OK and, unless
  // set_wait_for_handler_probes(false), until the verbose Status shows no runtime handler
  // still being probed (berthd serves before its probes finish; most tests want the settled
  // state). On failure the daemon is killed and the message carries the tail of its log.
  Status Start(std::vector<std::string> extra_args = {},
               std::chrono::seconds ready_timeout = std::chrono::seconds(20));
  // Closes the stubs' channel, sends SIGTERM and waits up to 20s; OK only if berthd exited
  // with code 0. Idempotent. (The channel goes first so that no call of the test races the
  // shutdown; berthd itself stops at once even while clients keep connections open.)
  Status Stop();
  // Whether Start and Restart wait for the runtime handler probes (default true).
  void set_wait_for_handler_probes(bool wait) { wait_for_probes_ = wait; }
  // SIGKILL, reaped. No-op when not running.
  void Kill();
  // Stop() (or, if `kill`, Kill()), then Start() with the same dirs and arguments.
  Status Restart(bool kill = false);

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Stubs on the daemon's socket, valid while it runs: Stop, Kill, Restart and Start destroy
  // them. A thread that may outlive them (a pull racing a Kill) must make its own stub from
  // channel(), which it then co-owns.
  runtime::v1::RuntimeService::Stub& runtime() { return *runtime_; }
  runtime::v1::ImageService::Stub& images() { return *images_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path socket_path() const { return dir_ / "berthd.sock"; }
  std::filesystem::path root() const { return dir_ / "root"; }
  std::filesystem::path state() const { return dir_ / "state"; }
  std::filesystem::path certs_dir() const { return dir_ / "certs.d"; }
  std::filesystem::path cni_dir() const { return dir_ / "cni"; }
  std::filesystem::path log_path() const { return dir_ / "berthd.log"; }
  // Everything berthd wrote to stdout/stderr so far, across restarts.
  std::string Log() const;
  // The last `max_bytes` of Log(), for failure messages.
  std::string LogTail(size_t max_bytes = 4000) const;

  // Sanitizer builds (docs/testing.md): berthd gets the test's ASAN_OPTIONS, UBSAN_OPTIONS,
  // LSAN_OPTIONS and TSAN_OPTIONS with log_path moved to a directory of its own, which its
  // monitors inherit (their stderr is /dev/null, and berthd's is only a log). That directory
  // is <dir of the test's log_path>/<name of dir()>, kept after this object is gone so that
  // scripts/test.sh still sees reports written late, or <dir()>/sanitizer without a log_path.
  // Without sanitizer options in the environment nothing ever writes there.
  const std::filesystem::path& sanitizer_dir() const { return sanitizer_dir_; }
  // Every report written there so far, concatenated; "" when there is none. Fixtures check
  // it after stopping the daemon, so that a report fails the test that caused it.
  std::string SanitizerReports() const;

 private:
  Status WaitReady(std::chrono::seconds timeout);
  Status WaitForHandlerProbes(std::chrono::steady_clock::time_point deadline);
  void ResetStubs();

  std::string binary_;
  std::filesystem::path dir_;
  std::vector<std::string> extra_args_;
  std::filesystem::path sanitizer_dir_;
  bool wait_for_probes_ = true;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

}  // namespace berth::testing
