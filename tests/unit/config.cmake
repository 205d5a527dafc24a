berth_add_test(config_test SOURCES config_test.cc LIBS berth_config LABELS unit)
