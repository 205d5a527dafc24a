// What every gRPC server of berthd shares: its Unix socket and the transport
// settings a kubelet expects of a CRI runtime.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "common/status.h"

namespace berth::server {

// Makes the socket's directory and replaces a stale socket file, but refuses
// to steal the socket of a live daemon (ALREADY_EXISTS) or to replace a file
// that is not a socket (FAILED_PRECONDITION). `what` names the setting in
// messages ("--socket", "--image-socket").
Status PrepareSocket(const std::filesystem::path& path, std::string_view what);

// Message limits (receive 16 MiB like containerd, send 32 MiB) and
// keepalive: clients may ping every 10 s, also between calls (a kubelet's
// GetContainerEvents stream is idle for long stretches and must not be cut
// off with "too many pings"); the server pings a connection idle for 5
// minutes and drops it when no answer comes within 20 s.
void ApplyServerSettings(grpc::ServerBuilder& builder);

inline constexpr int kMaxReceiveMessageBytes = 16 << 20;
inline constexpr int kMaxSendMessageBytes = 32 << 20;

}  // namespace berth::server
