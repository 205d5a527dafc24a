# The streaming server's parsers (src/stream/).
berth_fuzz_target(spdy_frame SOURCES spdy_frame_fuzzer.cc LIBS berth_stream_protocol)
berth_fuzz_target(websocket_frame SOURCES websocket_frame_fuzzer.cc LIBS berth_stream_protocol)
berth_fuzz_target(http_request SOURCES http_request_fuzzer.cc LIBS berth_stream_protocol)
berth_fuzz_target(remotecommand SOURCES remotecommand_fuzzer.cc LIBS berth_stream_protocol)
berth_fuzz_target(spdy_session SOURCES spdy_session_fuzzer.cc LIBS berth_stream_protocol)
