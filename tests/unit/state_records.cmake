berth_add_test(state_records_test SOURCES state_records_test.cc LIBS berth_container LABELS unit)
