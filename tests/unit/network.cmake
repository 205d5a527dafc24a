berth_add_test(network_test SOURCES network_test.cc LIBS berth_network LABELS unit)
