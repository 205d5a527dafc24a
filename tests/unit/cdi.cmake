berth_add_test(cdi_test SOURCES cdi_test.cc LIBS berth_cdi LABELS unit)
