berth_add_test(registry_test SOURCES registry_test.cc LIBS berth_registry berth_test_support
  LABELS unit)
