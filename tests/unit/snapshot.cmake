berth_add_test(snapshot_test SOURCES snapshot_test.cc LIBS berth_snapshot LABELS unit)
