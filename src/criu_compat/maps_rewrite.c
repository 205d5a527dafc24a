#include "criu_compat/maps_rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A VMA header line: "start-end perms offset dev inode   [name]". Detail
// lines of smaps ("Size:   4 kB", "VmFlags: rd mr") never start with a hex
// range.
static int parse_header(const char* line, size_t n, unsigned long* start, unsigned long* end,
                        size_t* end_off, size_t* end_len) {
  size_t i = 0;
  unsigned long s = 0, e = 0;
  size_t digits = 0;
  while (i < n && ((line[i] >= '0' && line[i] <= '9') || (line[i] >= 'a' && line[i] <= 'f'))) {
    s = s * 16 + (unsigned long)(line[i] <= '9' ? line[i] - '0' : line[i] - 'a' + 10);
    ++i;
    ++digits;
  }
  if (digits == 0 || i >= n || line[i] != '-') return 0;
  ++i;
  const size_t eo = i;
  digits = 0;
  while (i < n && ((line[i] >= '0' && line[i] <= '9') || (line[i] >= 'a' && line[i] <= 'f'))) {
    e = e * 16 + (unsigned long)(line[i] <= '9' ? line[i] - '0' : line[i] - 'a' + 10);
    ++i;
    ++digits;
  }
  if (digits == 0 || i >= n || line[i] != ' ') return 0;
  *start = s;
  *end = e;
  *end_off = eo;
  *end_len = i - eo;
  return 1;
}

// Whether the header's path name (its last field) is exactly `name`.
static int names(const char* line, size_t n, const char* name) {
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' ')) --n;
  const size_t k = strlen(name);
  return n > k && memcmp(line + n - k, name, k) == 0 && line[n - k - 1] == ' ';
}

char* berth_merge_vvar_vclock(const char* in, size_t len, size_t* out_len) {
  // Never longer than the input plus 16: an end address may grow by at most
  // 16 digits, and each merge drops a whole header line, longer than that.
  char* out = (char*)malloc(len + 17);
  if (out == NULL) return NULL;
  size_t o = 0;
  int have_vvar = 0;  // the last header copied was [vvar]
  unsigned long vvar_end = 0;
  size_t vvar_end_off = 0, vvar_end_len = 0;  // of its end address, in `out`
  int skipping = 0;                           // inside a merged [vvar_vclock] block
  size_t p = 0;
  while (p < len) {
    const char* nl = (const char*)memchr(in + p, '\n', len - p);
    const size_t n = nl != NULL ? (size_t)(nl - (in + p)) + 1 : len - p;
    const char* line = in + p;
    p += n;
    unsigned long s, e;
    size_t eo, el;
    if (parse_header(line, n, &s, &e, &eo, &el)) {
      skipping = 0;
      if (have_vvar && s == vvar_end && vvar_end_len <= 16 && names(line, n, "[vvar_vclock]")) {
        // The end address at the width it had (maps pads to 8 digits), or
        // wider if the new one needs it; what follows moves along.
        char fixed[24];
        const int fl = snprintf(fixed, sizeof fixed, "%0*lx", (int)vvar_end_len, e);
        if (fl <= 0 || fl > 16) goto copy;  // cannot happen: 16 digits hold any address
        memmove(out + vvar_end_off + fl, out + vvar_end_off + vvar_end_len,
                o - vvar_end_off - vvar_end_len);
        memcpy(out + vvar_end_off, fixed, (size_t)fl);
        o += (size_t)fl - vvar_end_len;
        vvar_end_len = (size_t)fl;
        vvar_end = e;
        skipping = 1;
        continue;
      }
      have_vvar = names(line, n, "[vvar]");
      if (have_vvar) {
        vvar_end = e;
        vvar_end_off = o + eo;
        vvar_end_len = el;
      }
    }
    if (skipping) continue;
  copy:
    memcpy(out + o, line, n);
    o += n;
  }
  *out_len = o;
  return out;
}
