berth_add_test(ctl_test SOURCES ctl_test.cc LIBS berth_ctl berth_stream LABELS unit)
