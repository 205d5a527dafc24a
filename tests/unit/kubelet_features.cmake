# Pure logic of the newer kubelet features: stop signal names, the identity in /proc/<pid>/status,
# pod cgroup limits (against fixture trees).
berth_add_test(kubelet_features_test SOURCES kubelet_features_test.cc
  LIBS berth_container berth_sandbox LABELS unit)
