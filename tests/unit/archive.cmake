berth_add_test(archive_test SOURCES archive_test.cc
  LIBS berth_archive LibArchive::LibArchive ZLIB::ZLIB PkgConfig::ZSTD LABELS unit)
