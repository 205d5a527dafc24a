// berth-pause: the init (PID 1) of a pod whose containers share one PID
// namespace. It holds the namespace open, reaps orphaned processes, and exits
// on SIGTERM or SIGINT. It links nothing but libc.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

void Exit(int) { _exit(0); }

void Reap(int) {
  // As PID 1 every orphan of the pod is ours; wait for all that have exited.
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace

int main() {
  struct sigaction exit_action = {};
  exit_action.sa_handler = Exit;
  sigaction(SIGTERM, &exit_action, nullptr);
  sigaction(SIGINT, &exit_action, nullptr);
  struct sigaction reap_action = {};
  reap_action.sa_handler = Reap;
  reap_action.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &reap_action, nullptr);
  for (;;) pause();
}
