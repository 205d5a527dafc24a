berth_add_test(stats_test SOURCES stats_test.cc LIBS berth_stats LABELS unit)
if(TARGET stats_test)
  target_compile_definitions(stats_test PRIVATE STATS_TESTDATA="${CMAKE_CURRENT_SOURCE_DIR}/testdata")
endif()
