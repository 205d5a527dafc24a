// libberth-criu-compat.so: loaded into CRIU with LD_PRELOAD by berthd when
// Debian 12's CRIU 3.17 fails `criu check` on Linux 6.13 and later for the
// kernel's new [vvar_vclock] area (see maps_rewrite.h), and only then.
//
// It interposes the open calls CRIU reads /proc/<pid>/maps and smaps with
// (openat on its /proc descriptor, fdopen'ed): a maps or smaps file under
// /proc is read whole, rewritten by berth_merge_vvar_vclock, and handed back
// as a sealed-size memfd at offset 0. Every other open goes to the kernel
// unchanged. Nothing here keeps state, so it is as thread-safe as CRIU's own
// calls.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "criu_compat/maps_rewrite.h"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

static int is_maps_name(const char* path) {
  const char* base = strrchr(path, '/');
  base = base != NULL ? base + 1 : path;
  return strcmp(base, "maps") == 0 || strcmp(base, "smaps") == 0;
}

// Replaces `fd` (a maps or smaps file) by a memfd holding the rewritten
// text; on any failure returns `fd` as it was, at offset 0.
static int rewritten(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) != 0 || sf.f_type != PROC_SUPER_MAGIC) return fd;
  size_t cap = 1 << 16, len = 0;
  char* buf = (char*)malloc(cap);
  if (buf == NULL) return fd;
  for (;;) {
    if (len == cap) {
      char* bigger = (char*)realloc(buf, cap * 2);
      if (bigger == NULL) goto keep;
      buf = bigger;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) goto keep;
    if (r == 0) break;
    len += (size_t)r;
  }
  size_t out_len = 0;
  char* out = berth_merge_vvar_vclock(buf, len, &out_len);
  if (out == NULL) goto keep;
  int mfd = memfd_create("berth-criu-maps", MFD_CLOEXEC);
  if (mfd < 0) {
    free(out);
    goto keep;
  }
  size_t done = 0;
  while (done < out_len) {
    ssize_t w = write(mfd, out + done, out_len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  free(out);
  free(buf);
  if (done != out_len || lseek(mfd, 0, SEEK_SET) != 0) {
    close(mfd);
    lseek(fd, 0, SEEK_SET);
    return fd;
  }
  // The caller asked for its own flags (O_CLOEXEC or not): keep them.
  int fdflags = fcntl(fd, F_GETFD);
  if (fdflags >= 0 && !(fdflags & FD_CLOEXEC)) fcntl(mfd, F_SETFD, 0);
  // Same descriptor number as the kernel gave, in case the caller cares.
  if (dup3(mfd, fd, (fdflags >= 0 && (fdflags & FD_CLOEXEC)) ? O_CLOEXEC : 0) < 0) {
    close(mfd);
    lseek(fd, 0, SEEK_SET);
    return fd;
  }
  close(mfd);
  return fd;
keep:
  free(buf);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

static int open_common(int dirfd, const char* path, int flags, mode_t mode) {
  int fd = (int)syscall(SYS_openat, dirfd, path, flags, mode);
  if (fd >= 0 && (flags & O_ACCMODE) == O_RDONLY && !(flags & O_DIRECTORY) && is_maps_name(path)) {
    return rewritten(fd);
  }
  return fd;
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & (O_CREAT | O_TMPFILE)) == 0 ? 0 : (mode_t)va_arg(ap, int);
}

int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return open_common(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return open_common(dirfd, path, flags, mode);
}

int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return open_common(AT_FDCWD, path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return open_common(AT_FDCWD, path, flags, mode);
}
