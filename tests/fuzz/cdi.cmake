# The CDI spec parser (JSON and YAML files that device drivers write).
berth_fuzz_target(cdi_spec_fuzzer SOURCES cdi_spec_fuzzer.cc LIBS berth_cdi)
