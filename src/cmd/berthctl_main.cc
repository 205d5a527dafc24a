// berthctl: a crictl-compatible CLI for CRI runtimes.
#include "ctl/app.h"

int main(int argc, char** argv) { return berth::ctl::Main(argc, argv); }
