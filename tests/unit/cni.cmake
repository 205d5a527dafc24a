berth_add_test(cni_test SOURCES cni_test.cc LIBS berth_network LABELS integration)
