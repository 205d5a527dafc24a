berth_add_test(memory_test SOURCES memory_test.cc LIBS berth_common LABELS unit)
