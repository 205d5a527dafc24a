berth_add_test(metrics_test SOURCES metrics_test.cc LIBS berth_metrics berth_test_support LABELS unit)
