berth_add_test(ctl_completion_test SOURCES ctl_completion_test.cc LIBS berth_ctl LABELS unit)
