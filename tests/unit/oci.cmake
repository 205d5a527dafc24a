berth_add_test(oci_test SOURCES oci_test.cc LIBS berth_oci LABELS unit)
# Runs the host's runc: needs root, like the integration tests.
berth_add_test(runtime_probe_test SOURCES runtime_probe_test.cc LIBS berth_oci LABELS integration)
if(TARGET runtime_probe_test)
  target_compile_definitions(runtime_probe_test PRIVATE BERTH_PAUSE_PATH="$<TARGET_FILE:berth-pause>")
  add_dependencies(runtime_probe_test berth-pause)
endif()
# Runs the host's runc (exec in a busybox container): needs root.
berth_add_test(oci_exec_test SOURCES oci_exec_test.cc LIBS berth_oci nlohmann_json::nlohmann_json
  LABELS integration)
