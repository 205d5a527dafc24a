// The streaming protocols' pure parts: HTTP heads, WebSocket and SPDY framing,
// SPDY header compression, Kubernetes' status and resize JSON, tokens.
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <string>
#include <vector>

#include "stream/http.h"
#include "stream/remotecommand.h"
#include "stream/spdy_frame.h"
#include "stream/token_cache.h"
#include "stream/websocket.h"

namespace berth::stream {
namespace {

namespace rc = remotecommand;

// --- HTTP -------------------------------------------------------------------

TEST(HttpTest, ParsesUpgradeRequest) {
  std::string head =
      "POST /exec/abc?x=1&y=%41 HTTP/1.1\r\n"
      "Host: 127.0.0.1:1234\r\n"
      "Connection: Upgrade\r\n"
      "Upgrade: SPDY/3.1\r\n"
      "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
      "X-Stream-Protocol-Version: v3.channel.k8s.io, v2.channel.k8s.io\r\n"
      "\r\n";
  ASSERT_EQ(FindHeadEnd(head + "extra"), head.size());
  auto req = ParseRequestHead(head, HttpLimits{});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(req->path, "/exec/abc");
  EXPECT_EQ(req->query, "x=1&y=%41");
  EXPECT_TRUE(req->headers.HasToken("connection", "upgrade"));
  EXPECT_EQ(
      req->headers.Tokens("x-stream-protocol-version"),
      (std::vector<std::string>{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"}));
  auto q = ParseQuery(req->query);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, (std::vector<std::pair<std::string, std::string>>{{"x", "1"}, {"y", "A"}}));
}

TEST(HttpTest, RejectsMalformedHeads) {
  HttpLimits limits;
  for (std::string bad : {
           "GET /x HTTP/1.1\r\n",                         // no empty line
           "GET /x\r\n\r\n",                              // no version
           "GET x HTTP/1.1\r\n\r\n",                      // not a path
           "GET /x HTTP/2.0\r\n\r\n",                     // version
           "G(T /x HTTP/1.1\r\n\r\n",                     // method not a token
           "GET /x HTTP/1.1\r\nNoColon\r\n\r\n",          // header without colon
           "GET /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",  // obs-fold
           "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",      // space in name
           "GET /x HTTP/1.1\r\nA: b\x01\r\n\r\n",         // control character
           "GET /x HTTP/1.1\r\nA: b\nC: d\r\n\r\n",       // bare LF
           "GET /x y HTTP/1.1\r\n\r\n",                   // space in target
       }) {
    auto r = ParseRequestHead(bad, limits);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(HttpTest, EnforcesLimits) {
  HttpLimits limits;
  limits.max_headers = 3;
  std::string head = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 4; ++i) head += "A: b\r\n";
  head += "\r\n";
  EXPECT_EQ(ParseRequestHead(head, limits).status().code(), StatusCode::kResourceExhausted);
  limits = HttpLimits{};
  limits.max_head_bytes = 64;
  head = "GET / HTTP/1.1\r\nA: " + std::string(100, 'x') + "\r\n\r\n";
  EXPECT_EQ(ParseRequestHead(head, limits).status().code(), StatusCode::kResourceExhausted);
}

TEST(HttpTest, ParsesResponseAndFormats) {
  std::string out = FormatResponse(404, "Not Found", {{"X-A", "1"}}, "404 page not found\n");
  size_t end = FindHeadEnd(out);
  ASSERT_GT(end, 0u);
  auto r = ParseResponseHead(out.substr(0, end), HttpLimits{});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->reason, "Not Found");
  EXPECT_EQ(r->headers.Get("content-length").value_or(""), "19");
  EXPECT_EQ(out.substr(end), "404 page not found\n");
  std::string sw = FormatResponse(101, "Switching Protocols", {{"Upgrade", "SPDY/3.1"}});
  EXPECT_EQ(sw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\n\r\n");
}

TEST(HttpTest, ParsesUrls) {
  auto u = ParseUrl("https://[::1]:8443/exec/t?a=b");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/exec/t?a=b");
  u = ParseUrl("http://localhost");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  EXPECT_FALSE(ParseUrl("ftp://x/").ok());
  EXPECT_FALSE(ParseUrl("http://h:99999/").ok());
  EXPECT_FALSE(ParseUrl("http://u@h/").ok());
  EXPECT_FALSE(PercentDecode("%4", false).ok());
  EXPECT_FALSE(PercentDecode("%zz", false).ok());
}

// --- WebSocket --------------------------------------------------------------

TEST(WebSocketTest, AcceptKeyOfRfc6455Example) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(ws::AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(ws::IsValidKey("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(ws::IsValidKey(ws::NewKey()));
  EXPECT_FALSE(ws::IsValidKey("short"));
}

TEST(WebSocketTest, FrameHeaderRoundTripsAllLengthForms) {
  for (uint64_t len : {uint64_t{0}, uint64_t{125}, uint64_t{126}, uint64_t{65535}, uint64_t{65536},
                       uint64_t{1} << 33}) {
    for (bool masked : {false, true}) {
      uint8_t mask[4] = {1, 2, 3, 4};
      std::string h =
          ws::EncodeFrameHeader(ws::Opcode::kBinary, true, len, masked ? mask : nullptr);
      // Every prefix is "need more".
      for (size_t i = 0; i < h.size(); ++i) {
        auto p = ws::ParseFrameHeader(h.substr(0, i), ws::FrameLimits{});
        ASSERT_TRUE(p.ok());
        EXPECT_FALSE(p->has_value());
      }
      auto p = ws::ParseFrameHeader(h, ws::FrameLimits{});
      ASSERT_TRUE(p.ok()) << p.status();
      ASSERT_TRUE(p->has_value());
      EXPECT_EQ((*p)->payload_length, len);
      EXPECT_EQ((*p)->header_size, h.size());
      EXPECT_EQ((*p)->masked, masked);
      EXPECT_EQ((*p)->opcode, ws::Opcode::kBinary);
    }
  }
}

TEST(WebSocketTest, RfcMaskedHelloExample) {
  // RFC 6455 section 5.7: a masked "Hello".
  const unsigned char frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  std::string f(reinterpret_cast<const char*>(frame), sizeof(frame));
  auto h = ws::ParseFrameHeader(f, ws::FrameLimits{});
  ASSERT_TRUE(h.ok() && h->has_value());
  EXPECT_EQ((*h)->opcode, ws::Opcode::kText);
  std::string payload = f.substr((*h)->header_size);
  // Unmasking in two pieces gives the same result.
  ws::ApplyMask(payload.data(), 2, (*h)->mask, 0);
  ws::ApplyMask(payload.data() + 2, 3, (*h)->mask, 2);
  EXPECT_EQ(payload, "Hello");
}

TEST(WebSocketTest, RejectsProtocolViolations) {
  ws::FrameLimits limits;
  auto bad = [&](const std::string& bytes) { return !ws::ParseFrameHeader(bytes, limits).ok(); };
  EXPECT_TRUE(bad(std::string("\xC2\x00", 2)));          // RSV1
  EXPECT_TRUE(bad(std::string("\x83\x00", 2)));          // opcode 3
  EXPECT_TRUE(bad(std::string("\x09\x00", 2)));          // fragmented ping
  EXPECT_TRUE(bad(std::string("\x89\x7e\x00\x80", 4)));  // ping of 128 bytes
  EXPECT_TRUE(bad(std::string("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10)));  // top bit
  limits.max_payload = 10;
  EXPECT_TRUE(bad(std::string("\x82\x0b", 2)));
}

TEST(WebSocketTest, ClosePayload) {
  auto c = ws::ParseClosePayload(ws::EncodeClosePayload(1000, "bye"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->code, 1000);
  EXPECT_EQ(c->reason, "bye");
  EXPECT_FALSE(c->reason.empty());
  EXPECT_FALSE(ws::ParseClosePayload("x").ok());
  EXPECT_FALSE(ws::ParseClosePayload("").value().code.has_value());
}

struct Collected {
  std::vector<std::pair<int, std::string>> data;
  std::vector<int> closed;
};

ws::ChannelDecoder Decoder(bool base64, Collected& c) {
  return ws::ChannelDecoder(
      base64,
      [&c](uint8_t ch, std::string_view d) {
        if (!c.data.empty() && c.data.back().first == ch) {
          c.data.back().second += d;
        } else {
          c.data.emplace_back(ch, std::string(d));
        }
        return OkStatus();
      },
      [&c](uint8_t ch) {
        c.closed.push_back(ch);
        return OkStatus();
      });
}

TEST(WebSocketTest, ChannelMessagesBinaryAndBase64InPieces) {
  for (bool base64 : {false, true}) {
    Collected c;
    ws::ChannelDecoder d = Decoder(base64, c);
    std::string msg = ws::EncodeChannelMessage(base64, 1, "hello, world");
    if (base64) {
      EXPECT_EQ(msg, "1aGVsbG8sIHdvcmxk");
    }
    // Fed one byte at a time, as a fragmented message would arrive.
    d.Begin();
    for (char ch : msg) ASSERT_TRUE(d.Data(std::string_view(&ch, 1)).ok());
    ASSERT_TRUE(d.End().ok());
    ASSERT_EQ(c.data.size(), 1u);
    EXPECT_EQ(c.data[0].first, 1);
    EXPECT_EQ(c.data[0].second, "hello, world");
  }
}

TEST(WebSocketTest, CloseSignalAndBadBase64) {
  Collected c;
  ws::ChannelDecoder d = Decoder(false, c);
  d.Begin();
  ASSERT_TRUE(d.Data(std::string("\xff\x00", 2)).ok());
  ASSERT_TRUE(d.End().ok());
  EXPECT_EQ(c.closed, std::vector<int>{0});
  d.Begin();
  ASSERT_TRUE(d.Data(std::string("\xff\x00\x01", 3)).ok());
  EXPECT_FALSE(d.End().ok());  // a close signal names one channel

  ws::ChannelDecoder b = Decoder(true, c);
  b.Begin();
  EXPECT_FALSE(b.Data("0!!!!").ok());
  b.Begin();
  ASSERT_TRUE(b.Data("0aGk=").ok());
  EXPECT_TRUE(b.End().ok());
  b.Begin();
  ASSERT_TRUE(b.Data("0aG").ok());
  EXPECT_FALSE(b.End().ok());  // truncated group
  b.Begin();
  EXPECT_FALSE(b.Data("0aA==aGk=").ok());  // data after padding
}

// --- SPDY -------------------------------------------------------------------

TEST(SpdyTest, DictionaryIsTheSpdy3One) {
  const std::string& d = spdy::HeaderDictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
            0xe3c6a7c2u);
}

// Decodes every frame in `bytes`, feeding them in pieces of `step` bytes.
std::vector<spdy::Frame> DecodeAll(const std::string& bytes, size_t step,
                                   spdy::FrameDecoder& decoder) {
  std::vector<spdy::Frame> frames;
  for (size_t i = 0; i < bytes.size(); i += step) {
    decoder.Feed(std::string_view(bytes).substr(i, step));
    while (true) {
      auto f = decoder.Next();
      EXPECT_TRUE(f.ok()) << f.status();
      if (!f.ok() || !f->has_value()) break;
      frames.push_back(std::move(**f));
    }
  }
  return frames;
}

TEST(SpdyTest, EveryFrameTypeRoundTrips) {
  spdy::HeaderCompressor hc;
  spdy::HeaderBlock headers = {{"streamtype", "stdout"}, {"port", "80"}, {"port", "81"}};
  std::string wire;
  wire += spdy::EncodeSynStream({1, 0, 3, spdy::kFlagFin, headers}, hc);
  wire += spdy::EncodeSynReply({1, 0, {}}, hc);
  wire += spdy::EncodeHeaders({1, spdy::kFlagFin, {{"a", "b"}}}, hc);
  wire += spdy::EncodeRstStream({3, static_cast<uint32_t>(spdy::RstStatus::kCancel)});
  wire += spdy::EncodeSettings({0, {{0, spdy::kSettingsInitialWindowSize, 1 << 20}}});
  wire += spdy::EncodePing({7});
  wire += spdy::EncodeGoAway({5, 0});
  wire += spdy::EncodeWindowUpdate({1, 4096});
  wire += spdy::EncodeData(1, "hello", true);
  for (size_t step : {size_t{1}, size_t{7}, wire.size()}) {
    spdy::FrameDecoder decoder;
    std::vector<spdy::Frame> frames = DecodeAll(wire, step, decoder);
    // Data may come in several pieces; join them.
    std::string data;
    bool fin = false;
    size_t control = 0;
    for (auto& f : frames) {
      if (auto* d = std::get_if<spdy::Data>(&f)) {
        data += d->data;
        fin = fin || d->fin;
      } else {
        ++control;
      }
    }
    EXPECT_EQ(control, 8u);
    EXPECT_EQ(data, "hello");
    EXPECT_TRUE(fin);
    auto& syn = std::get<spdy::SynStream>(frames[0]);
    EXPECT_EQ(syn.stream_id, 1u);
    EXPECT_EQ(syn.priority, 3);
    EXPECT_EQ(syn.flags, spdy::kFlagFin);
    EXPECT_EQ(syn.headers, headers);
    EXPECT_TRUE(std::get<spdy::SynReply>(frames[1]).headers.empty());
    EXPECT_EQ(std::get<spdy::Headers>(frames[2]).headers, (spdy::HeaderBlock{{"a", "b"}}));
    EXPECT_EQ(std::get<spdy::RstStream>(frames[3]).status, 5u);
    auto& settings = std::get<spdy::Settings>(frames[4]);
    ASSERT_EQ(settings.entries.size(), 1u);
    EXPECT_EQ(settings.entries[0].id, spdy::kSettingsInitialWindowSize);
    EXPECT_EQ(settings.entries[0].value, 1u << 20);
    EXPECT_EQ(std::get<spdy::Ping>(frames[5]).id, 7u);
    EXPECT_EQ(std::get<spdy::GoAway>(frames[6]).last_good_stream_id, 5u);
    EXPECT_EQ(std::get<spdy::WindowUpdate>(frames[7]).delta, 4096u);
  }
}

TEST(SpdyTest, KnownWireBytes) {
  // A PING with id 1 and a data frame on stream 3 with FIN, by the spec's layout.
  EXPECT_EQ(spdy::EncodePing({1}),
            std::string("\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  EXPECT_EQ(spdy::EncodeData(3, "ab", true), std::string("\x00\x00\x00\x03\x01\x00\x00\x02"
                                                         "ab",
                                                         10));
  EXPECT_EQ(spdy::EncodeWindowUpdate({0, 0x10000}),
            std::string("\x80\x03\x00\x09\x00\x00\x00\x08\x00\x00\x00\x00\x00\x01\x00\x00", 16));
}

TEST(SpdyTest, LargeDataFrameIsHandedOutInPieces) {
  std::string payload(200 * 1024, 'x');
  spdy::Limits limits;
  spdy::FrameDecoder decoder(limits);
  decoder.Feed(spdy::EncodeData(9, payload, false));
  size_t total = 0;
  int pieces = 0;
  while (true) {
    auto f = decoder.Next();
    ASSERT_TRUE(f.ok());
    if (!f->has_value()) break;
    auto& d = std::get<spdy::Data>(**f);
    EXPECT_LE(d.data.size(), limits.max_data_piece);
    EXPECT_EQ(d.frame_start, pieces == 0);
    total += d.data.size();
    ++pieces;
  }
  EXPECT_EQ(total, payload.size());
  EXPECT_GT(pieces, 1);
}

TEST(SpdyTest, RejectsMalformedFrames) {
  auto fails = [](const std::string& bytes) {
    spdy::FrameDecoder d;
    d.Feed(bytes);
    while (true) {
      auto f = d.Next();
      if (!f.ok()) return true;
      if (!f->has_value()) return false;
    }
  };
  EXPECT_TRUE(
      fails(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12)));  // SPDY/2
  EXPECT_TRUE(
      fails(std::string("\x80\x03\x00\x06\x00\x00\x00\x05\x00\x00\x00\x01\x00", 13)));  // PING len
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x03\x00\x00\x00\x08\x00\x00\x00\x01\x00\x00\x00\x00",
                                16)));                                     // RST 0
  EXPECT_TRUE(fails(std::string("\x00\x00\x00\x00\x00\x00\x00\x00", 8)));  // data on stream 0
  EXPECT_TRUE(fails(
      std::string("\x80\x03\x00\x04\x00\x00\x00\x04\x00\x00\x00\x02", 12)));  // SETTINGS count
  EXPECT_TRUE(fails(std::string("\x80\x03\x00\x01\x00\xff\xff\xff", 8)));  // control frame too long
  // A SYN_STREAM whose header block is not zlib.
  EXPECT_TRUE(fails(std::string(
      "\x80\x03\x00\x01\x00\x00\x00\x0e\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00garb", 22)));
  // Unknown control types are skipped.
  EXPECT_FALSE(fails(std::string("\x80\x03\x00\x0f\x00\x00\x00\x01\x00", 9)));
}

TEST(SpdyTest, HeaderBlockZipBombIsRefused) {
  // One header whose value inflates to 1 MiB, far over the 64 KiB limit,
  // from a few kilobytes of compressed data.
  spdy::HeaderCompressor hc;
  spdy::HeaderBlock bomb = {{"x", std::string(1 << 20, 'a')}};
  std::string frame = spdy::EncodeSynStream({1, 0, 0, 0, bomb}, hc);
  ASSERT_LT(frame.size(), 64u * 1024);
  spdy::FrameDecoder d;
  d.Feed(frame);
  auto f = d.Next();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("inflates past"), std::string::npos) << f.status();
}

TEST(SpdyTest, HeaderBlockParserLimits) {
  spdy::Limits limits;
  EXPECT_FALSE(spdy::ParseHeaderBlock(std::string("\x00\x00\x00\x01", 4), limits).ok());
  EXPECT_FALSE(spdy::ParseHeaderBlock(std::string("\xff\xff\xff\xff", 4), limits).ok());
  std::string one = spdy::SerializeHeaderBlock({{"a", "b"}});
  EXPECT_TRUE(spdy::ParseHeaderBlock(one, limits).ok());
  EXPECT_FALSE(spdy::ParseHeaderBlock(one + "x", limits).ok());
  EXPECT_FALSE(spdy::ParseHeaderBlock(spdy::SerializeHeaderBlock({{"", "b"}}), limits).ok());
  auto upper = spdy::ParseHeaderBlock(spdy::SerializeHeaderBlock({{"StreamType", "x"}}), limits);
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ((*upper)[0].first, "streamtype");
}

// --- Kubernetes conventions ---------------------------------------------------

TEST(RemoteCommandTest, StatusJsonHasKubeletShape) {
  EXPECT_EQ(rc::SuccessStatus(), R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(
      rc::NonZeroExitStatus(3, "command terminated with non-zero exit code: boom"),
      R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: boom","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}})");
  EXPECT_EQ(
      rc::InternalErrorStatus("no such container"),
      R"({"metadata":{},"status":"Failure","message":"Internal error occurred: no such container","reason":"InternalError","details":{"causes":[{"message":"no such container"}]},"code":500})");
}

TEST(RemoteCommandTest, DecodesErrorStreams) {
  using F = rc::ErrorFormat;
  EXPECT_EQ(rc::DecodeErrorStream(F::kStatus, rc::SuccessStatus()).value(), 0);
  EXPECT_EQ(rc::DecodeErrorStream(F::kStatus, rc::NonZeroExitStatus(42, "x")).value(), 42);
  EXPECT_EQ(rc::DecodeErrorStream(F::kStatus, "").value(), 0);
  auto internal = rc::DecodeErrorStream(F::kStatus, rc::InternalErrorStatus("gone"));
  EXPECT_EQ(internal.status().message(), "Internal error occurred: gone");
  EXPECT_FALSE(rc::DecodeErrorStream(F::kStatus, "not json").ok());
  EXPECT_FALSE(
      rc::DecodeErrorStream(
          F::kStatus,
          R"({"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"300"}]}})")
          .ok());
  EXPECT_EQ(rc::DecodeErrorStream(F::kText, "").value(), 0);
  EXPECT_EQ(rc::DecodeErrorStream(F::kText, "boom").status().message(),
            "error executing remote command: boom");
}

TEST(RemoteCommandTest, NegotiatesInClientOrder) {
  auto p = rc::Negotiate({"v9.channel.k8s.io", "v3.channel.k8s.io", "v4.channel.k8s.io"},
                         rc::SpdyRemoteCommandProtocols(), false);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "v3.channel.k8s.io");
  EXPECT_FALSE(rc::Negotiate({"v9.channel.k8s.io"}, rc::SpdyRemoteCommandProtocols(), false));
  EXPECT_FALSE(rc::Negotiate({}, rc::SpdyRemoteCommandProtocols(), false));
  auto none = rc::Negotiate({}, rc::WebSocketRemoteCommandProtocols(), true);
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->name, "");
  auto b64 =
      rc::Negotiate({"v4.base64.channel.k8s.io"}, rc::WebSocketRemoteCommandProtocols(), true);
  ASSERT_TRUE(b64.has_value());
  EXPECT_TRUE(b64->base64);
  EXPECT_EQ(b64->error_format(), rc::ErrorFormat::kStatus);
}

TEST(RemoteCommandTest, TerminalSizeStream) {
  rc::TerminalSizeDecoder d;
  std::string two = rc::EncodeTerminalSize({80, 24}) + rc::EncodeTerminalSize({120, 40});
  EXPECT_EQ(two, "{\"Width\":80,\"Height\":24}\n{\"Width\":120,\"Height\":40}\n");
  // Split mid-object.
  auto a = d.Feed(two.substr(0, 30));
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].width, 80);
  EXPECT_EQ((*a)[0].height, 24);
  auto b = d.Feed(two.substr(30));
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].width, 120);
  // Go's decoder matches field names case-insensitively and ignores unknown ones.
  auto c = d.Feed(R"({"width":5,"HEIGHT":6,"other":"}"})");
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].width, 5);
  EXPECT_EQ((*c)[0].height, 6);
  EXPECT_FALSE(rc::TerminalSizeDecoder().Feed(R"({"Width":70000})").ok());
  EXPECT_FALSE(rc::TerminalSizeDecoder().Feed("[1,2]").ok());
  EXPECT_FALSE(rc::TerminalSizeDecoder().Feed("{" + std::string(5000, ' ')).ok());
}

TEST(RemoteCommandTest, PortLists) {
  auto p = rc::ParsePortList({"80,443", "8080"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (std::vector<uint16_t>{80, 443, 8080}));
  EXPECT_FALSE(rc::ParsePortList({""}).ok());
  EXPECT_FALSE(rc::ParsePortList({"0"}).ok());
  EXPECT_FALSE(rc::ParsePortList({"65536"}).ok());
  EXPECT_FALSE(rc::ParsePortList({"80,"}).ok());
}

// --- tokens -----------------------------------------------------------------

TEST(TokenCacheTest, SingleUseExpiringBounded) {
  TokenCache::Clock::time_point now{};
  TokenCache cache(2, std::chrono::seconds(60), [&] { return now; });
  ExecRequest exec;
  exec.container_id = "c1";
  AttachRequest attach;
  attach.container_id = "c2";
  auto t1 = cache.Insert(exec);
  auto t2 = cache.Insert(attach);
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_EQ(t1->size(), 32u);  // 128 bits in hex
  EXPECT_NE(*t1, *t2);
  EXPECT_EQ(cache.Insert(PortForwardRequest{}).status().code(), StatusCode::kResourceExhausted);
  auto got = cache.Consume(*t1);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::get<ExecRequest>(*got).container_id, "c1");
  EXPECT_FALSE(cache.Consume(*t1).has_value());  // single use
  EXPECT_FALSE(cache.Consume("nonsense").has_value());
  now += std::chrono::seconds(60);
  EXPECT_FALSE(cache.Consume(*t2).has_value());  // expired
  EXPECT_EQ(cache.size(), 0u);
  // Expired tokens no longer count against the limit.
  EXPECT_TRUE(cache.Insert(PortForwardRequest{}).ok());
  EXPECT_TRUE(cache.Insert(PortForwardRequest{}).ok());
}

}  // namespace
}  // namespace berth::stream
