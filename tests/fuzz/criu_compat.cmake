# The /proc maps rewrite of the CRIU 3.17 compatibility shim.
berth_fuzz_target(criu_maps SOURCES criu_maps_fuzz.cc LIBS berth_criu_maps_rewrite)
