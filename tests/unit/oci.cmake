berth_add_test(oci_test SOURCES oci_test.cc LIBS berth_oci LABELS unit)
