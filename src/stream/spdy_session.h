// A SPDY/3.1 session over a transport, for both ends: streams opened by the
// peer (the server's side of kubectl exec) or by us (the client's side), data
// with per-stream and session flow control, PING answers, GOAWAY.
//
// Flow control: we advertise a receive window per stream (SETTINGS) and for
// the session (WINDOW_UPDATE on stream 0), buffer at most that much per
// stream, and send WINDOW_UPDATEs as the consumer reads. We obey the peer's
// windows once the peer shows it does flow control (sends SETTINGS
// INITIAL_WINDOW_SIZE or any WINDOW_UPDATE). Kubernetes' own SPDY code
// (moby/spdystream) does neither and ignores windows: with such a peer a full
// stream buffer stops the session's reader, so TCP's window throttles it, and
// our sends are throttled by TCP alone. Either way nothing buffers without
// bound: a session buffers at most its session window.
//
// Threads: Start() runs a reader and a writer thread (frame_writer.h). Each
// stream may be read by one thread and written by another. A stream must not
// be used after its session is destroyed.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "stream/byte_stream.h"
#include "stream/frame_writer.h"
#include "stream/spdy_frame.h"
#include "stream/transport.h"

namespace berth::stream {

class SpdySession;

class SpdyStream final : public ByteSource, public ByteSink {
 public:
  uint32_t id() const { return id_; }
  // The SYN_STREAM's headers (a peer's stream) or the SYN_REPLY's (ours).
  const spdy::HeaderBlock& headers() const { return headers_; }
  std::optional<std::string_view> header(std::string_view name) const;

  // Data from the peer; 0 after the peer's FIN. Errors after a reset or when
  // the session ended.
  StatusOr<size_t> Read(std::span<char> buf) override;
  // Sends data frames, waiting for flow-control window and queue space.
  Status Write(std::string_view data) override;
  // Sends FIN (idempotent).
  Status CloseWrite() override;
  // Sends RST_STREAM and drops buffered data (idempotent).
  void Reset(spdy::RstStatus status = spdy::RstStatus::kCancel);

  SpdyStream(SpdySession* session, uint32_t id, int64_t send_window);

 private:
  friend class SpdySession;

  SpdySession* const session_;
  const uint32_t id_;
  spdy::HeaderBlock headers_;
  // All below guarded by session_->mu_.
  std::deque<std::string> recv_;
  size_t recv_front_offset_ = 0;
  size_t recv_bytes_ = 0;
  bool counted_in_session_ = true;  // recv_bytes_ is part of session_recv_buffered_
  size_t recv_unacked_ = 0;         // consumed but not yet announced in a WINDOW_UPDATE
  bool remote_fin_ = false;
  bool local_fin_ = false;
  bool replied_ = false;
  Status reset_;
  int64_t send_window_;
};

class SpdySession {
 public:
  struct Options {
    bool server = true;
    // Per-stream receive window we advertise, and how much we buffer per stream.
    uint32_t stream_window = 256 * 1024;
    uint32_t session_window = 1024 * 1024;
    // Streams the peer may have open at once; more are refused.
    size_t max_peer_streams = 128;
    size_t max_queued_write_bytes = 256 * 1024;
    size_t max_data_frame = 32 * 1024;
    spdy::Limits limits;
  };
  using StreamHandler = std::function<void(std::shared_ptr<SpdyStream>)>;
  using ClosedHandler = std::function<void(const Status&)>;

  // `transport` must outlive the session.
  SpdySession(Transport& transport, Options options);
  ~SpdySession();  // Cancel() and join
  SpdySession(const SpdySession&) = delete;
  SpdySession& operator=(const SpdySession&) = delete;

  // Announces our windows and starts the threads. `on_stream` runs on the
  // reader thread for every stream the peer opens (after a server's automatic
  // SYN_REPLY was queued); it must not block. `on_closed` runs on the reader
  // thread once when the connection ends.
  void Start(StreamHandler on_stream, ClosedHandler on_closed);
  // Opens a stream and waits up to `timeout` for the peer's SYN_REPLY.
  StatusOr<std::shared_ptr<SpdyStream>> OpenStream(spdy::HeaderBlock headers,
                                                   std::chrono::milliseconds timeout);
  // Graceful end: GOAWAY, send what is queued, half-close, then wait up to
  // `linger` for the peer to close before cancelling.
  void Close(std::chrono::milliseconds linger);
  // Abrupt end; unblocks every stream operation. Thread-safe.
  void Cancel();
  // Waits until the reader ended (up to `timeout`); true if it did.
  bool WaitClosed(std::chrono::milliseconds timeout);
  // Why the connection ended (OK while it is open or after a clean EOF).
  Status close_status() const;
  // Bytes received and not yet read, over all streams (for tests and metrics).
  size_t buffered_bytes() const;
  Transport& transport() { return transport_; }

 private:
  friend class SpdyStream;

  void ReadLoop();
  Status HandleFrame(spdy::Frame& frame);
  Status HandleSynStream(spdy::SynStream& f);
  Status HandleData(spdy::Data& f);
  void EndSession(const Status& why);
  // With mu_ held: accounts `n` consumed bytes of `s` (null: of no stream)
  // and of the session, and queues WINDOW_UPDATEs when half a window was
  // consumed.
  void ConsumedLocked(SpdyStream* s, size_t n);
  void RemoveIfDoneLocked(SpdyStream* s);
  Status EnqueueControl(std::string frame);

  Transport& transport_;
  const Options options_;
  FrameWriter writer_;
  std::thread reader_;

  // Orders header compression with the control queue: both happen under it.
  std::mutex compress_mu_;
  spdy::HeaderCompressor compressor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, std::shared_ptr<SpdyStream>> streams_;
  size_t peer_streams_open_ = 0;
  uint32_t last_peer_stream_ = 0;
  uint32_t next_local_stream_;
  bool peer_stream_flow_control_ = false;
  bool peer_session_flow_control_ = false;
  int64_t initial_send_window_ = spdy::kDefaultWindow;
  int64_t session_send_window_ = spdy::kDefaultWindow;
  size_t session_recv_unacked_ = 0;
  // Bytes buffered in all streams: at most session_window (plus one frame),
  // whatever the peer does.
  size_t session_recv_buffered_ = 0;
  bool goaway_sent_ = false;
  bool goaway_received_ = false;
  bool reader_done_ = false;
  Status close_status_;
  StreamHandler on_stream_;
  ClosedHandler on_closed_;
};

}  // namespace berth::stream
