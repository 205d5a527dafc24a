// Shutdown signals, kept apart from code that includes the CRI protobuf
// headers: the CRI's Signal enum has constants named like <signal.h>'s macros.
#pragma once

namespace berth::server {

// Blocks SIGTERM/SIGINT in the calling thread; threads started later inherit it.
void BlockShutdownSignals();
// Waits for SIGTERM or SIGINT (blocked beforehand); returns its name.
const char* WaitForShutdownSignal();

}  // namespace berth::server
