// berthd's life: validate the configuration, listen on the CRI socket at once
// (answering UNAVAILABLE), recover state, serve, and shut down cleanly on
// SIGTERM or SIGINT.
#pragma once

#include "common/status.h"
#include "config/config.h"
#include "server/signals.h"

namespace berth::server {

// Blocks until a shutdown signal arrives. The caller must have blocked
// SIGTERM and SIGINT in every thread (see BlockShutdownSignals) so that this
// function can wait for them.
Status RunDaemon(const config::Config& config);

// Structured one-line-per-event logging at `level`.
void SetupLogging(const std::string& level);

}  // namespace berth::server
