# The default pod network's inputs: the kubelet's pod CIDR and the operator's template.
berth_fuzz_target(pod_network SOURCES pod_network_fuzz.cc LIBS berth_network)
