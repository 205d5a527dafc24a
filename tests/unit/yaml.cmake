berth_add_test(yaml_test SOURCES yaml_test.cc LIBS berth_yaml LABELS unit)
