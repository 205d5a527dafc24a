# The runtime.v1alpha2 <-> runtime.v1 conversion layer (pure: messages and descriptors only).
berth_add_test(v1alpha2_convert_test SOURCES v1alpha2_convert_test.cc LIBS berth_server LABELS unit)
