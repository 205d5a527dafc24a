#include "stream/spdy_session.h"

#include <algorithm>
#include <cstring>

namespace berth::stream {

using spdy::RstStatus;

SpdyStream::SpdyStream(SpdySession* session, uint32_t id, int64_t send_window)
    : session_(session), id_(id), send_window_(send_window) {}

std::optional<std::string_view> SpdyStream::header(std::string_view name) const {
  return spdy::FindHeader(headers_, name);
}

StatusOr<size_t> SpdyStream::Read(std::span<char> buf) {
  SpdySession& s = *session_;
  std::unique_lock lock(s.mu_);
  s.cv_.wait(lock,
             [&] { return !reset_.ok() || recv_bytes_ > 0 || remote_fin_ || s.reader_done_; });
  // What the peer sent before it reset the stream is read first (see
  // HandleFrame's RST_STREAM).
  if (!reset_.ok() && recv_bytes_ == 0) return reset_;
  if (recv_bytes_ == 0) {
    if (remote_fin_) return size_t{0};
    return s.close_status_.ok() ? UnavailableError("connection closed") : s.close_status_;
  }
  size_t copied = 0;
  while (copied < buf.size() && !recv_.empty()) {
    const std::string& front = recv_.front();
    size_t n = std::min(buf.size() - copied, front.size() - recv_front_offset_);
    std::memcpy(buf.data() + copied, front.data() + recv_front_offset_, n);
    copied += n;
    recv_front_offset_ += n;
    if (recv_front_offset_ == front.size()) {
      recv_.pop_front();
      recv_front_offset_ = 0;
    }
  }
  recv_bytes_ -= copied;
  if (counted_in_session_) s.session_recv_buffered_ -= copied;
  s.ConsumedLocked(this, copied);
  s.cv_.notify_all();  // the reader may wait for buffer space
  return copied;
}

Status SpdyStream::Write(std::string_view data) {
  SpdySession& s = *session_;
  while (!data.empty()) {
    size_t n;
    {
      std::unique_lock lock(s.mu_);
      s.cv_.wait(lock, [&] {
        if (!reset_.ok() || local_fin_ || s.reader_done_) return true;
        bool stream_ok = !s.peer_stream_flow_control_ || send_window_ > 0;
        bool session_ok = !s.peer_session_flow_control_ || s.session_send_window_ > 0;
        return stream_ok && session_ok;
      });
      if (!reset_.ok()) return reset_;
      if (local_fin_) return FailedPreconditionError("write after the stream was closed");
      if (s.reader_done_) {
        return s.close_status_.ok() ? UnavailableError("connection closed") : s.close_status_;
      }
      n = std::min(data.size(), s.options_.max_data_frame);
      if (s.peer_stream_flow_control_) n = std::min<size_t>(n, send_window_);
      if (s.peer_session_flow_control_) n = std::min<size_t>(n, s.session_send_window_);
      send_window_ -= static_cast<int64_t>(n);
      s.session_send_window_ -= static_cast<int64_t>(n);
    }
    RETURN_IF_ERROR(s.writer_.EnqueueData(spdy::EncodeData(id_, data.substr(0, n), false)));
    data.remove_prefix(n);
  }
  return OkStatus();
}

Status SpdyStream::CloseWrite() {
  SpdySession& s = *session_;
  {
    std::lock_guard lock(s.mu_);
    if (local_fin_) return OkStatus();
    if (!reset_.ok()) return reset_;
    local_fin_ = true;
    s.cv_.notify_all();
  }
  Status st = s.writer_.EnqueueData(spdy::EncodeData(id_, "", true));
  std::lock_guard lock(s.mu_);
  s.RemoveIfDoneLocked(this);
  return st;
}

void SpdyStream::Reset(RstStatus status) {
  SpdySession& s = *session_;
  {
    std::lock_guard lock(s.mu_);
    if (!reset_.ok()) return;
    reset_ = AbortedError(StrCat("stream ", id_, " was reset"));
    size_t dropped = recv_bytes_;
    recv_.clear();
    recv_front_offset_ = 0;
    recv_bytes_ = 0;
    if (counted_in_session_) s.session_recv_buffered_ -= dropped;
    counted_in_session_ = false;
    s.ConsumedLocked(this, dropped);
    s.RemoveIfDoneLocked(this);
    s.cv_.notify_all();
  }
  // Behind this stream's data: the peer reads what was sent, then the reset.
  (void)s.writer_.EnqueueAfterData(spdy::EncodeRstStream({id_, static_cast<uint32_t>(status)}));
}

SpdySession::SpdySession(Transport& transport, Options options)
    : transport_(transport),
      options_(options),
      writer_(transport_, options.max_queued_write_bytes),
      next_local_stream_(options.server ? 2 : 1) {}

SpdySession::~SpdySession() {
  Cancel();
  if (reader_.joinable()) reader_.join();
}

void SpdySession::Start(StreamHandler on_stream, ClosedHandler on_closed) {
  on_stream_ = std::move(on_stream);
  on_closed_ = std::move(on_closed);
  spdy::Settings settings;
  settings.entries.push_back({0, spdy::kSettingsInitialWindowSize, options_.stream_window});
  (void)writer_.EnqueueControl(spdy::EncodeSettings(settings));
  if (options_.session_window > spdy::kDefaultWindow) {
    (void)writer_.EnqueueControl(spdy::EncodeWindowUpdate(
        {0, static_cast<uint32_t>(options_.session_window - spdy::kDefaultWindow)}));
  }
  writer_.Start();
  reader_ = std::thread([this] { ReadLoop(); });
}

Status SpdySession::EnqueueControl(std::string frame) {
  return writer_.EnqueueControl(std::move(frame));
}

StatusOr<std::shared_ptr<SpdyStream>> SpdySession::OpenStream(spdy::HeaderBlock headers,
                                                              std::chrono::milliseconds timeout) {
  std::shared_ptr<SpdyStream> stream;
  {
    // Stream ids must reach the wire in increasing order, and header blocks
    // in the order they were compressed: both happen under compress_mu_.
    std::lock_guard clock(compress_mu_);
    {
      std::lock_guard lock(mu_);
      if (reader_done_) {
        return close_status_.ok() ? UnavailableError("connection closed") : close_status_;
      }
      if (goaway_received_ || goaway_sent_) {
        return UnavailableError("connection is going away");
      }
      if (next_local_stream_ > spdy::kMaxStreamId) {
        return ResourceExhaustedError("no stream ids left on this connection");
      }
      uint32_t id = next_local_stream_;
      next_local_stream_ += 2;
      stream = std::make_shared<SpdyStream>(this, id, initial_send_window_);
      streams_[id] = stream;
    }
    spdy::SynStream syn;
    syn.stream_id = stream->id_;
    syn.headers = std::move(headers);
    stream->headers_ = syn.headers;
    RETURN_IF_ERROR(writer_.EnqueueControl(spdy::EncodeSynStream(syn, compressor_)));
  }
  std::unique_lock lock(mu_);
  bool done = cv_.wait_for(
      lock, timeout, [&] { return stream->replied_ || !stream->reset_.ok() || reader_done_; });
  if (!stream->reset_.ok()) return stream->reset_;
  if (stream->replied_) return stream;
  if (reader_done_) {
    return close_status_.ok() ? UnavailableError("connection closed") : close_status_;
  }
  (void)done;
  return DeadlineExceededError(
      StrCat("no reply to stream ", stream->id_, " within ", timeout.count(), " ms"));
}

void SpdySession::Close(std::chrono::milliseconds linger) {
  auto deadline = Clock::now() + linger;
  uint32_t last;
  {
    std::lock_guard lock(mu_);
    goaway_sent_ = true;
    last = last_peer_stream_;
  }
  // Behind the data: a peer may stop reading at the GOAWAY (spdystream does).
  (void)writer_.EnqueueData(spdy::EncodeGoAway({last, 0}));
  writer_.Finish(/*shutdown_write=*/true, deadline);
  {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return reader_done_; });
  }
  Cancel();
}

void SpdySession::Cancel() {
  writer_.Cancel();
  // Wake a reader waiting for buffer space and every stream operation.
  std::lock_guard lock(mu_);
  cv_.notify_all();
}

bool SpdySession::WaitClosed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return reader_done_; });
}

size_t SpdySession::buffered_bytes() const {
  std::lock_guard lock(mu_);
  return session_recv_buffered_;
}

Status SpdySession::close_status() const {
  std::lock_guard lock(mu_);
  return close_status_;
}

void SpdySession::ConsumedLocked(SpdyStream* s, size_t n) {
  if (n == 0) return;
  if (s != nullptr) {
    s->recv_unacked_ += n;
    if (s->recv_unacked_ >= options_.stream_window / 2 && !s->remote_fin_ && s->reset_.ok()) {
      (void)writer_.EnqueueControl(
          spdy::EncodeWindowUpdate({s->id_, static_cast<uint32_t>(s->recv_unacked_)}));
      s->recv_unacked_ = 0;
    }
  }
  session_recv_unacked_ += n;
  if (session_recv_unacked_ >= options_.session_window / 2) {
    (void)writer_.EnqueueControl(
        spdy::EncodeWindowUpdate({0, static_cast<uint32_t>(session_recv_unacked_)}));
    session_recv_unacked_ = 0;
  }
}

void SpdySession::RemoveIfDoneLocked(SpdyStream* s) {
  bool done = !s->reset_.ok() || (s->local_fin_ && s->remote_fin_);
  if (!done) return;
  auto it = streams_.find(s->id_);
  if (it == streams_.end() || it->second.get() != s) return;
  if ((s->id_ % 2 == 1) == options_.server) --peer_streams_open_;
  streams_.erase(it);
}

void SpdySession::ReadLoop() {
  spdy::FrameDecoder decoder(options_.limits);
  std::string buf(32 * 1024, '\0');
  Status why;
  while (true) {
    StatusOr<size_t> n = transport_.Read(buf);
    if (!n.ok()) {
      why = n.status();
      break;
    }
    if (*n == 0) break;
    decoder.Feed(std::string_view(buf.data(), *n));
    bool stop = false;
    while (!stop) {
      StatusOr<std::optional<spdy::Frame>> f = decoder.Next();
      if (!f.ok()) {
        why = f.status();
        (void)writer_.EnqueueControl(spdy::EncodeGoAway(
            {last_peer_stream_, static_cast<uint32_t>(spdy::GoAwayStatus::kProtocolError)}));
        writer_.Finish(true, Clock::now() + std::chrono::seconds(1));
        stop = true;
        break;
      }
      if (!f->has_value()) break;
      Status s = HandleFrame(**f);
      if (!s.ok()) {
        why = s;
        stop = true;
      }
    }
    if (stop) break;
  }
  EndSession(why);
}

void SpdySession::EndSession(const Status& why) {
  ClosedHandler on_closed;
  {
    std::lock_guard lock(mu_);
    reader_done_ = true;
    close_status_ = why;
    on_closed = std::move(on_closed_);
    // Streams stay with their users; the map would otherwise keep them alive.
    streams_.clear();
    cv_.notify_all();
  }
  if (on_closed) on_closed(why);
}

Status SpdySession::HandleFrame(spdy::Frame& frame) {
  if (auto* f = std::get_if<spdy::Data>(&frame)) return HandleData(*f);
  if (auto* f = std::get_if<spdy::SynStream>(&frame)) return HandleSynStream(*f);
  if (auto* f = std::get_if<spdy::SynReply>(&frame)) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(f->stream_id);
    if (it != streams_.end() && (f->stream_id % 2 == 1) != options_.server) {
      SpdyStream& s = *it->second;
      if (!s.replied_) {
        s.replied_ = true;
        s.headers_ = std::move(f->headers);
      }
      if (f->flags & spdy::kFlagFin) s.remote_fin_ = true;
      RemoveIfDoneLocked(&s);
      cv_.notify_all();
    }
    return OkStatus();
  }
  if (auto* f = std::get_if<spdy::Headers>(&frame)) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(f->stream_id);
    if (it != streams_.end() && (f->flags & spdy::kFlagFin)) {
      it->second->remote_fin_ = true;
      RemoveIfDoneLocked(it->second.get());
      cv_.notify_all();
    }
    return OkStatus();
  }
  if (auto* f = std::get_if<spdy::RstStream>(&frame)) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(f->stream_id);
    if (it != streams_.end()) {
      SpdyStream& s = *it->second;
      s.reset_ =
          AbortedError(StrCat("stream ", s.id_, " was reset by the peer (status ", f->status, ")"));
      // The data that arrived before the reset stays readable: servers built
      // on moby/spdystream (the kubelet's streaming library, containerd's)
      // write the exit status and then close the connection, which resets
      // every stream the client has not closed yet. It no longer counts
      // against the session's buffer (nobody may read it), only its own.
      if (s.counted_in_session_) {
        session_recv_buffered_ -= s.recv_bytes_;
        s.counted_in_session_ = false;
      }
      RemoveIfDoneLocked(&s);
      cv_.notify_all();
    }
    return OkStatus();
  }
  if (auto* f = std::get_if<spdy::Settings>(&frame)) {
    std::lock_guard lock(mu_);
    for (const spdy::Setting& e : f->entries) {
      if (e.id != spdy::kSettingsInitialWindowSize) continue;
      int64_t value = std::min<int64_t>(e.value, spdy::kMaxWindow);
      int64_t delta = value - initial_send_window_;
      initial_send_window_ = value;
      for (auto& [id, s] : streams_) s->send_window_ += delta;
      peer_stream_flow_control_ = true;
    }
    cv_.notify_all();
    return OkStatus();
  }
  if (auto* f = std::get_if<spdy::Ping>(&frame)) {
    // Our pings would carry our parity (client odd, server even); echo the peer's.
    bool ours = (f->id % 2 == 0) == options_.server;
    if (!ours) RETURN_IF_ERROR(EnqueueControl(spdy::EncodePing(*f)));
    return OkStatus();
  }
  if (std::holds_alternative<spdy::GoAway>(frame)) {
    std::lock_guard lock(mu_);
    goaway_received_ = true;
    cv_.notify_all();
    return OkStatus();
  }
  if (auto* f = std::get_if<spdy::WindowUpdate>(&frame)) {
    std::lock_guard lock(mu_);
    if (f->stream_id == 0) {
      session_send_window_ = std::min<int64_t>(session_send_window_ + f->delta, spdy::kMaxWindow);
      peer_session_flow_control_ = true;
    } else {
      auto it = streams_.find(f->stream_id);
      if (it != streams_.end()) {
        it->second->send_window_ =
            std::min<int64_t>(it->second->send_window_ + f->delta, spdy::kMaxWindow);
      }
      peer_stream_flow_control_ = true;
    }
    cv_.notify_all();
    return OkStatus();
  }
  return OkStatus();  // unknown control frames are ignored, as SPDY requires
}

Status SpdySession::HandleSynStream(spdy::SynStream& f) {
  bool peer_parity_ok = (f.stream_id % 2 == 1) == options_.server;
  std::shared_ptr<SpdyStream> stream;
  {
    std::lock_guard lock(mu_);
    if (!peer_parity_ok || f.stream_id <= last_peer_stream_) {
      (void)writer_.EnqueueControl(spdy::EncodeGoAway(
          {last_peer_stream_, static_cast<uint32_t>(spdy::GoAwayStatus::kProtocolError)}));
      return InvalidArgumentError(
          StrCat("SPDY protocol error: SYN_STREAM with unexpected stream id ", f.stream_id));
    }
    last_peer_stream_ = f.stream_id;
    if (goaway_sent_ || peer_streams_open_ >= options_.max_peer_streams) {
      (void)writer_.EnqueueControl(
          spdy::EncodeRstStream({f.stream_id, static_cast<uint32_t>(RstStatus::kRefusedStream)}));
      return OkStatus();
    }
    stream = std::make_shared<SpdyStream>(this, f.stream_id, initial_send_window_);
    stream->headers_ = std::move(f.headers);
    stream->remote_fin_ = (f.flags & spdy::kFlagFin) != 0;
    stream->local_fin_ = (f.flags & spdy::kFlagUnidirectional) != 0;
    stream->replied_ = true;
    streams_[f.stream_id] = stream;
    ++peer_streams_open_;
  }
  if (options_.server) {
    std::lock_guard clock(compress_mu_);
    RETURN_IF_ERROR(
        writer_.EnqueueControl(spdy::EncodeSynReply({f.stream_id, 0, {}}, compressor_)));
  }
  if (on_stream_) on_stream_(stream);
  return OkStatus();
}

Status SpdySession::HandleData(spdy::Data& f) {
  std::unique_lock lock(mu_);
  auto it = streams_.find(f.stream_id);
  if (it == streams_.end()) {
    // The session window still counts the bytes.
    ConsumedLocked(nullptr, f.data.size());
    bool ever_opened = (f.stream_id % 2 == 1) == options_.server ? f.stream_id <= last_peer_stream_
                                                                 : f.stream_id < next_local_stream_;
    if (!ever_opened && f.frame_start) {
      lock.unlock();
      (void)EnqueueControl(
          spdy::EncodeRstStream({f.stream_id, static_cast<uint32_t>(RstStatus::kInvalidStream)}));
    }
    return OkStatus();
  }
  std::shared_ptr<SpdyStream> s = it->second;
  if (s->remote_fin_) {
    lock.unlock();
    s->Reset(RstStatus::kStreamAlreadyClosed);
    return OkStatus();
  }
  if (!f.data.empty()) {
    // A peer that ignores our window (spdystream) is throttled here: the
    // reader stops until the consumer catches up, and TCP does the rest.
    cv_.wait(lock, [&] {
      return !s->reset_.ok() || transport_.cancelled() ||
             (s->recv_bytes_ < options_.stream_window &&
              session_recv_buffered_ < options_.session_window);
    });
    if (!s->reset_.ok()) {
      ConsumedLocked(s.get(), f.data.size());
      return OkStatus();
    }
    if (transport_.cancelled()) return CancelledError("connection cancelled");
    s->recv_bytes_ += f.data.size();
    session_recv_buffered_ += f.data.size();
    s->recv_.push_back(std::move(f.data));
  }
  if (f.fin) {
    s->remote_fin_ = true;
    RemoveIfDoneLocked(s.get());
  }
  cv_.notify_all();
  return OkStatus();
}

}  // namespace berth::stream
