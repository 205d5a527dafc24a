berth_add_test(events_test SOURCES events_test.cc LIBS berth_events LABELS unit)
