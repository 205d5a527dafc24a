berth_add_test(events_test SOURCES events_test.cc LIBS berth_events LABELS unit)
berth_add_test(container_events_test SOURCES container_events_test.cc LIBS berth_container LABELS unit)
