// Linked into every test binary of a sanitizer build (tests/CMakeLists.txt).
// scripts/test.sh --sanitize sets log_path in the sanitizers' options so that
// reports of daemons and helpers, whose stderr goes nowhere useful, land in
// files; a test binary's own report belongs on its stderr instead, where
// ctest --output-on-failure shows it next to the failing test.
#include <sanitizer/common_interface_defs.h>

namespace {

struct ReportToStderr {
  ReportToStderr() { __sanitizer_set_report_path("stderr"); }
};
const ReportToStderr report_to_stderr;

}  // namespace
