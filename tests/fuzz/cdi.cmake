# The CDI spec parser (JSON and YAML files that device drivers write).
berth_fuzz_target(cdi_spec SOURCES cdi_spec_fuzz.cc LIBS berth_cdi)
