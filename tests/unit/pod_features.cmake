# Image volumes and user namespaces: the pure parts.
berth_add_test(pod_features_test SOURCES pod_features_test.cc LIBS berth_container LABELS unit)
