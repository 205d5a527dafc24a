// berth-pause: the init (PID 1) of a pod whose containers share one PID
// namespace. It holds the namespace open, reaps orphaned processes, and exits
// on SIGTERM or SIGINT. It links nothing but libc.
#include <signal.h>
#include <string.h>
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

int main(int argc, char** argv) {
  // "-v" prints a name and exits: berthd runs it in a throwaway container to
  // find out whether an OCI runtime works on this host. Any other argument
  // (berthd passes the pod's directory) only labels the process.
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    static const char kName[] = "berth-pause\n";
    return write(1, kName, sizeof kName - 1) == static_cast<ssize_t>(sizeof kName - 1) ? 0 : 1;
  }
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
