berth_add_test(server_test SOURCES server_test.cc LIBS berth_server LABELS unit)
