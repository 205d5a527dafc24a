# The cgroup and /proc/net/dev parsers of src/stats (berth_stats_parse has no
# daemon dependencies).
berth_fuzz_target(stats_parse SOURCES stats_parse_fuzz.cc LIBS berth_stats_parse)
