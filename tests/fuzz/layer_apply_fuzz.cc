// Image layers as registries serve them (archive/layer_apply.h), applied as
// root into a scratch directory. The compression is picked by magic number
// (gzip 1f 8b, zstd 28 b5 2f fd, else a plain tar) so that the seeds are
// ordinary .tar, .tar.gz and .tar.zst files.
//
// Property: nothing appears or changes outside the layer's directory. Each
// input gets <scratch>/la-XXXXXX/{root/, canary}; an entry that escaped
// `root` through "..", a symlink or a hard link would show up beside it (the
// kernel clamps such paths to the scratch dir at worst), or change canary.
//
// Run it only as scripts/fuzz.sh does: in a mount namespace where / is
// read-only and the scratch directory (BERTH_FUZZ_SCRATCH, default /tmp) is
// a small tmpfs, so that an escape the property misses cannot damage the
// host and a layer that expands to gigabytes fails with ENOSPC.
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include "archive/layer_apply.h"
#include "common/fs.h"
#include "fuzz/fuzz_util.h"

namespace fs = std::filesystem;
using berth::archive::Compression;

namespace {

constexpr char kCanary[] = "canary: nothing of a layer may touch this file\n";
std::string g_scratch = "/tmp";

Compression DetectCompression(const uint8_t* data, size_t size) {
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return Compression::kGzip;
  if (size >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* s = getenv("BERTH_FUZZ_SCRATCH"); s != nullptr && *s != '\0') g_scratch = s;
  // One file of a layer may not grow past 64 MiB here: write fails with EFBIG.
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit fsize = {64 << 20, 64 << 20};
  setrlimit(RLIMIT_FSIZE, &fsize);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string tmpl = g_scratch + "/la-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    perror("mkdtemp");
    abort();
  }
  const fs::path dir = tmpl;
  const fs::path root = dir / "root";
  if (!berth::MakeDirs(root, 0755).ok() || !berth::WriteFileAtomic(dir / "canary", kCanary).ok()) {
    abort();
  }

  size_t offset = 0;
  berth::archive::ReadFn read = [&](char* buf, size_t n) -> berth::StatusOr<size_t> {
    size_t take = std::min(n, size - offset);
    std::memcpy(buf, data + offset, take);
    offset += take;
    return take;
  };
  (void)berth::archive::ApplyLayer(read, DetectCompression(data, size), root);

  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    FUZZ_CHECK(name == "root" || name == "canary", "%s appeared beside the layer root",
               e.path().c_str());
  }
  auto canary = berth::ReadFile(dir / "canary");
  FUZZ_CHECK(canary.ok() && *canary == kCanary, "the canary beside the layer root changed");
  FUZZ_CHECK(fs::is_directory(fs::symlink_status(root, ec)), "the layer root is gone");

  if (!berth::RemoveAll(dir).ok()) {
    fprintf(stderr, "cannot remove %s\n", dir.c_str());
    abort();
  }
  return 0;
}
