# The streaming server's parsers (src/stream/).
berth_fuzz_target(spdy_frame_fuzzer SOURCES spdy_frame_fuzzer.cc LIBS berth_stream_protocol)
berth_fuzz_target(websocket_frame_fuzzer SOURCES websocket_frame_fuzzer.cc
  LIBS berth_stream_protocol)
berth_fuzz_target(http_request_fuzzer SOURCES http_request_fuzzer.cc LIBS berth_stream_protocol)
berth_fuzz_target(remotecommand_fuzzer SOURCES remotecommand_fuzzer.cc
  LIBS berth_stream_protocol)
berth_fuzz_target(spdy_session_fuzzer SOURCES spdy_session_fuzzer.cc LIBS berth_stream_protocol)
