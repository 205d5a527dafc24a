# The seccomp profile compiler of the native exec path (oci/native_exec.h): a
# Localhost profile is a file of the node, copied into config.json.
berth_fuzz_target(seccomp_profile SOURCES seccomp_profile_fuzz.cc LIBS berth_oci)
