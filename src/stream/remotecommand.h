// The Kubernetes remote command and port-forward conventions on top of SPDY
// and WebSocket (names from k8s.io/apimachinery's remotecommand and
// httpstream packages, and k8s.io/api core/v1): subprotocol names, stream
// type headers, WebSocket channel numbers, the error stream's metav1.Status
// JSON and the resize stream's TerminalSize JSON. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "stream/runtime.h"

namespace berth::stream::remotecommand {

// SPDY remote command protocols, newest first (X-Stream-Protocol-Version).
inline constexpr std::string_view kV4 = "v4.channel.k8s.io";
inline constexpr std::string_view kV3 = "v3.channel.k8s.io";
inline constexpr std::string_view kV2 = "v2.channel.k8s.io";
inline constexpr std::string_view kV1 = "channel.k8s.io";
// WebSocket-only ones (Sec-WebSocket-Protocol).
inline constexpr std::string_view kV5 = "v5.channel.k8s.io";
inline constexpr std::string_view kBase64V1 = "base64.channel.k8s.io";
inline constexpr std::string_view kBase64V4 = "v4.base64.channel.k8s.io";
// Port-forward.
inline constexpr std::string_view kPortForwardV1 = "portforward.k8s.io";

inline constexpr std::string_view kProtocolHeader = "X-Stream-Protocol-Version";
inline constexpr std::string_view kAcceptedProtocolsHeader = "X-Accepted-Stream-Protocol-Versions";

// SPDY stream headers (SPDY lowercases names on the wire).
inline constexpr std::string_view kStreamTypeHeader = "streamtype";
inline constexpr std::string_view kPortHeader = "port";
inline constexpr std::string_view kRequestIdHeader = "requestid";
inline constexpr std::string_view kStreamTypeError = "error";
inline constexpr std::string_view kStreamTypeStdin = "stdin";
inline constexpr std::string_view kStreamTypeStdout = "stdout";
inline constexpr std::string_view kStreamTypeStderr = "stderr";
inline constexpr std::string_view kStreamTypeResize = "resize";
inline constexpr std::string_view kStreamTypeData = "data";

// WebSocket channels of exec and attach.
inline constexpr uint8_t kStdinChannel = 0;
inline constexpr uint8_t kStdoutChannel = 1;
inline constexpr uint8_t kStderrChannel = 2;
inline constexpr uint8_t kErrorChannel = 3;
inline constexpr uint8_t kResizeChannel = 4;

// How the error stream is written, by protocol version: v1 to v3 carry a
// failure's message as text (nothing on success); v4 and v5 a metav1.Status.
enum class ErrorFormat { kText, kStatus };

// Protocol families. `version` orders the SPDY ones (1..4); WebSocket ones
// also say whether data is base64 text.
struct Protocol {
  std::string_view name;
  int version = 0;
  bool base64 = false;
  ErrorFormat error_format() const {
    return version >= 4 ? ErrorFormat::kStatus : ErrorFormat::kText;
  }
  bool resize() const { return version >= 3; }
  bool close_signal() const { return version >= 5; }
};
// Those the server speaks, in its order of preference.
const std::vector<Protocol>& SpdyRemoteCommandProtocols();
const std::vector<Protocol>& WebSocketRemoteCommandProtocols();
const std::vector<Protocol>& WebSocketPortForwardProtocols();
// The first of `offered` (the client's order) that is in `supported`; the
// empty name when `offered` is empty and `empty_ok` (a WebSocket client that
// names no subprotocol gets the original binary channel protocol).
std::optional<Protocol> Negotiate(const std::vector<std::string>& offered,
                                  const std::vector<Protocol>& supported, bool empty_ok);

// metav1.Status JSON for the error stream.
std::string SuccessStatus();
// {"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"<code>"}]}...}
std::string NonZeroExitStatus(int exit_code, std::string_view message);
// apierrors.NewInternalError: "Internal error occurred: <message>", code 500.
std::string InternalErrorStatus(std::string_view message);
// The text a v1-v3 client gets for the same failures.
std::string InternalErrorText(std::string_view message);

// What a client makes of the whole error stream: the exit code (0 for
// success), or the failure as an error. Text formats cannot carry an exit
// code: any text is a failure (UNKNOWN with the text).
StatusOr<int> DecodeErrorStream(ErrorFormat format, std::string_view message);

// The resize stream: a sequence of JSON objects {"Width":w,"Height":h}
// (Go's json.Encoder output: one per line). Field names match
// case-insensitively, as Go's decoder does; unknown fields are ignored.
std::string EncodeTerminalSize(TerminalSize size);
class TerminalSizeDecoder {
 public:
  // Consumes bytes; returns the sizes completed by them. Errors (not JSON,
  // not an object, numbers out of range, more than 4 KiB without a complete
  // object) end the resize stream.
  StatusOr<std::vector<TerminalSize>> Feed(std::string_view bytes);

 private:
  std::string buf_;
};

// Port numbers from the port-forward "port" query parameters ("80",
// "80,443", repeated); each must be 1..65535.
StatusOr<std::vector<uint16_t>> ParsePortList(const std::vector<std::string>& values);

}  // namespace berth::stream::remotecommand
