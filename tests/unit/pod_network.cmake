berth_add_test(pod_network_test SOURCES pod_network_test.cc LIBS berth_network LABELS unit)
