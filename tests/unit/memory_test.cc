// common/memory.h on the running test process: clean read-only file pages
// are dropped from the resident set, and no page holding a private copy (a
// written MAP_PRIVATE file mapping made read-only afterwards, as RELRO is) is
// ever touched.
#include "common/memory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/fs.h"

namespace berth {
namespace {

long RssFileKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssFile:", 0) == 0) return std::stol(line.substr(8));
  }
  return -1;
}

TEST(MemoryTest, DropsCleanFilePagesAndKeepsPrivateCopies) {
  // A file mapping written through MAP_PRIVATE, then made read-only: its
  // pages are private copies; dropping them would bring back the file's bytes.
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / StrCat("berth-memory-test-", RandomHex(4));
  const long page = sysconf(_SC_PAGESIZE);
  {
    std::ofstream out(file);
    out << std::string(static_cast<size_t>(page) * 4, 'f');
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* p =
      ::mmap(nullptr, static_cast<size_t>(page) * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  ASSERT_NE(p, MAP_FAILED);
  auto* bytes = static_cast<char*>(p);
  std::memset(bytes, 'x', static_cast<size_t>(page) * 2);  // two pages copied, two clean
  ASSERT_EQ(::mprotect(p, static_cast<size_t>(page) * 4, PROT_READ), 0);

  const long before = RssFileKb();
  const size_t dropped = DropCleanFilePages();
  EXPECT_GT(dropped, 0u) << "no clean file page was resident (code of the test binary?)";
  EXPECT_LT(RssFileKb(), before);
  // The private copies are intact; the process still runs its code.
  EXPECT_EQ(bytes[0], 'x');
  EXPECT_EQ(bytes[2 * page - 1], 'x');
  EXPECT_EQ(bytes[2 * page], 'f');
  EXPECT_EQ(std::string("still works"), "still works");
  ::munmap(p, static_cast<size_t>(page) * 4);
  std::filesystem::remove(file);
}

TEST(MemoryTest, ArenaCapAndTrimLeaveMallocWorking) {
  LimitMallocArenas(2);
  std::vector<std::string> blocks;
  for (int i = 0; i < 1000; ++i) blocks.emplace_back(64 * 1024, 'a');
  blocks.clear();
  ReleaseFreeHeap();
  std::string after(1 << 20, 'b');
  EXPECT_EQ(after[12345], 'b');
}

}  // namespace
}  // namespace berth
