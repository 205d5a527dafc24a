berth_add_test(monitor_test SOURCES monitor_test.cc
  LIBS berth_monitor_client berth_monitor_log nlohmann_json::nlohmann_json LABELS unit)
if(TARGET monitor_test)
  # The tests run the real binary.
  add_dependencies(monitor_test berth-monitor)
  target_compile_definitions(monitor_test PRIVATE
    BERTH_MONITOR_BINARY="$<TARGET_FILE:berth-monitor>")
endif()
