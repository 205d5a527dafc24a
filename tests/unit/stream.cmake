berth_add_test(stream_codec_test SOURCES stream_codec_test.cc LIBS berth_stream LABELS unit)
berth_add_test(stream_server_test SOURCES stream_server_test.cc
  LIBS berth_stream berth_stream_client LABELS unit)
