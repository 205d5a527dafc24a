# Checkpoint archives without CRIU: the rootfs diff builder and the CRIU 3.17
# maps rewrite (src/criu_compat/).
berth_add_test(checkpoint_test SOURCES checkpoint_test.cc
  LIBS berth_container berth_criu_maps_rewrite LibArchive::LibArchive LABELS unit)
