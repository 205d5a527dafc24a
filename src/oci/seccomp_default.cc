#include "oci/seccomp_default.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace berth::oci {
namespace {

// Syscalls every container may make. Whitespace-separated; names unknown to
// the host's libseccomp are skipped by runc, so the list may run ahead of it.
constexpr std::string_view kAlwaysAllowed = R"(
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc
kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek
lsetxattr lstat lstat64
madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect
open openat openat2
pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pselect6_time64 pwrite64 pwritev pwritev2
read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget
semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer
setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs
statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo
tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
timerfd_settime timerfd_settime64 times tkill truncate truncate64
ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
vfork vmsplice wait4 waitid waitpid write writev
)";

// Flags of clone(2) that create namespaces (CLONE_NEWNS | NEWCGROUP | NEWUTS |
// NEWIPC | NEWUSER | NEWPID | NEWNET); without CAP_SYS_ADMIN they must be clear.
constexpr uint64_t kCloneNamespaceFlags = 0x7E020000;  // 2114060288
constexpr uint64_t kAfVsock = 40;
constexpr int kEnosys = 38;

struct ArgCond {
  unsigned index;
  uint64_t value;
  uint64_t value_two;
  const char* op;
};

// One rule and the conditions under which it is part of the profile.
struct Rule {
  std::vector<std::string> names;
  const char* action = "SCMP_ACT_ALLOW";
  int errno_ret = -1;  // -1: none
  std::vector<ArgCond> args;
  std::vector<std::string> if_all_caps;  // kept only when the container holds all of these
  std::vector<std::string> unless_caps;  // dropped when it holds any of these
  std::vector<std::string> if_arch;      // kept only on these Go arches
  std::vector<std::string> unless_arch;  // dropped on these
  KernelVersion min_kernel;
};

std::vector<std::string> SplitWords(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

Rule Allow(std::vector<std::string> names) {
  Rule r;
  r.names = std::move(names);
  return r;
}

Rule AllowWithCap(std::vector<std::string> names, std::string cap) {
  Rule r = Allow(std::move(names));
  r.if_all_caps = {std::move(cap)};
  return r;
}

Rule AllowOnArch(std::vector<std::string> names, std::vector<std::string> arches) {
  Rule r = Allow(std::move(names));
  r.if_arch = std::move(arches);
  return r;
}

Rule AllowIfArg(std::string name, ArgCond cond) {
  Rule r = Allow({std::move(name)});
  r.args = {cond};
  return r;
}

std::vector<Rule> Rules() {
  std::vector<Rule> rules;
  rules.push_back(Allow(SplitWords(kAlwaysAllowed)));

  Rule ptrace_new_kernels = Allow({"process_vm_readv", "process_vm_writev", "ptrace"});
  ptrace_new_kernels.min_kernel = {4, 8};  // before 4.8 ptrace could bypass seccomp
  rules.push_back(std::move(ptrace_new_kernels));

  // Every address family except AF_VSOCK.
  rules.push_back(AllowIfArg("socket", {0, kAfVsock, 0, "SCMP_CMP_NE"}));
  // personality(2) only with harmless personas: PER_LINUX, PER_LINUX32,
  // UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query).
  for (uint64_t persona : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    rules.push_back(AllowIfArg("personality", {0, persona, 0, "SCMP_CMP_EQ"}));
  }

  rules.push_back(AllowOnArch({"sync_file_range2", "swapcontext"}, {"ppc64le"}));
  rules.push_back(AllowOnArch({"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                               "breakpoint", "cacheflush", "set_tls"},
                              {"arm", "arm64"}));
  rules.push_back(AllowOnArch({"arch_prctl"}, {"amd64", "x32"}));
  rules.push_back(AllowOnArch({"modify_ldt"}, {"amd64", "x32", "x86"}));
  rules.push_back(AllowOnArch({"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"},
                              {"s390", "s390x"}));
  rules.push_back(AllowOnArch({"riscv_flush_icache"}, {"riscv64"}));

  rules.push_back(AllowWithCap({"open_by_handle_at"}, "CAP_DAC_READ_SEARCH"));
  rules.push_back(
      AllowWithCap({"bpf",           "clone",         "clone3",      "fanotify_init",   "fsconfig",
                    "fsmount",       "fsopen",        "fspick",      "lookup_dcookie",  "mount",
                    "mount_setattr", "move_mount",    "open_tree",   "perf_event_open", "quotactl",
                    "quotactl_fd",   "setdomainname", "sethostname", "setns",           "syslog",
                    "umount",        "umount2",       "unshare"},
                   "CAP_SYS_ADMIN"));

  // Without CAP_SYS_ADMIN: clone only without namespace flags (the flags are
  // argument 1 on s390), and clone3 fails with ENOSYS so that libcs fall back
  // to clone, whose flags can be inspected.
  Rule clone_plain = AllowIfArg("clone", {0, kCloneNamespaceFlags, 0, "SCMP_CMP_MASKED_EQ"});
  clone_plain.unless_caps = {"CAP_SYS_ADMIN"};
  clone_plain.unless_arch = {"s390", "s390x"};
  rules.push_back(std::move(clone_plain));
  Rule clone_s390 = AllowIfArg("clone", {1, kCloneNamespaceFlags, 0, "SCMP_CMP_MASKED_EQ"});
  clone_s390.unless_caps = {"CAP_SYS_ADMIN"};
  clone_s390.if_arch = {"s390", "s390x"};
  rules.push_back(std::move(clone_s390));
  Rule clone3_enosys = Allow({"clone3"});
  clone3_enosys.action = "SCMP_ACT_ERRNO";
  clone3_enosys.errno_ret = kEnosys;
  clone3_enosys.unless_caps = {"CAP_SYS_ADMIN"};
  rules.push_back(std::move(clone3_enosys));

  rules.push_back(AllowWithCap({"reboot"}, "CAP_SYS_BOOT"));
  rules.push_back(AllowWithCap({"chroot"}, "CAP_SYS_CHROOT"));
  rules.push_back(AllowWithCap({"delete_module", "init_module", "finit_module"}, "CAP_SYS_MODULE"));
  rules.push_back(AllowWithCap({"acct"}, "CAP_SYS_PACCT"));
  rules.push_back(AllowWithCap(
      {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
      "CAP_SYS_PTRACE"));
  rules.push_back(AllowWithCap({"iopl", "ioperm"}, "CAP_SYS_RAWIO"));
  rules.push_back(
      AllowWithCap({"settimeofday", "stime", "clock_settime", "clock_settime64"}, "CAP_SYS_TIME"));
  rules.push_back(AllowWithCap({"vhangup"}, "CAP_SYS_TTY_CONFIG"));
  rules.push_back(AllowWithCap(
      {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}, "CAP_SYS_NICE"));
  rules.push_back(AllowWithCap({"syslog"}, "CAP_SYSLOG"));
  rules.push_back(AllowWithCap({"bpf"}, "CAP_BPF"));
  rules.push_back(AllowWithCap({"perf_event_open"}, "CAP_PERFMON"));
  return rules;
}

std::vector<std::string> SeccompArches(std::string_view arch) {
  if (arch == "amd64") return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  if (arch == "386") return {"SCMP_ARCH_X86"};
  if (arch == "arm64") return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
  if (arch == "arm") return {"SCMP_ARCH_ARM"};
  if (arch == "mips64") return {"SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"};
  if (arch == "mips64le") {
    return {"SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"};
  }
  if (arch == "ppc64le") return {"SCMP_ARCH_PPC64LE"};
  if (arch == "s390x") return {"SCMP_ARCH_S390X", "SCMP_ARCH_S390"};
  if (arch == "riscv64") return {"SCMP_ARCH_RISCV64"};
  return {};  // unknown: no arch list, libseccomp uses the native one
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool KernelAtLeast(KernelVersion have, KernelVersion want) {
  if (have.major == 0 && have.minor == 0) return true;
  return std::pair(have.major, have.minor) >= std::pair(want.major, want.minor);
}

bool Applies(const Rule& r, const std::vector<std::string>& caps, std::string_view arch,
             KernelVersion kernel) {
  for (const auto& c : r.if_all_caps) {
    if (!Contains(caps, c)) return false;
  }
  for (const auto& c : r.unless_caps) {
    if (Contains(caps, c)) return false;
  }
  if (!r.if_arch.empty() && !Contains(r.if_arch, arch)) return false;
  if (Contains(r.unless_arch, arch)) return false;
  if (r.min_kernel.major != 0 && !KernelAtLeast(kernel, r.min_kernel)) return false;
  return true;
}

}  // namespace

nlohmann::json DefaultSeccompProfile(const std::vector<std::string>& capabilities,
                                     std::string_view arch, KernelVersion kernel) {
  nlohmann::json syscalls = nlohmann::json::array();
  for (const Rule& r : Rules()) {
    if (!Applies(r, capabilities, arch, kernel)) continue;
    nlohmann::json entry = {{"names", r.names}, {"action", r.action}};
    if (r.errno_ret >= 0) entry["errnoRet"] = r.errno_ret;
    if (!r.args.empty()) {
      nlohmann::json args = nlohmann::json::array();
      for (const ArgCond& a : r.args) {
        nlohmann::json arg = {{"index", a.index}, {"value", a.value}, {"op", a.op}};
        if (a.value_two != 0) arg["valueTwo"] = a.value_two;
        args.push_back(std::move(arg));
      }
      entry["args"] = std::move(args);
    }
    syscalls.push_back(std::move(entry));
  }
  nlohmann::json profile = {
      {"defaultAction", "SCMP_ACT_ERRNO"},
      {"defaultErrnoRet", 1},  // EPERM
      {"syscalls", std::move(syscalls)},
  };
  std::vector<std::string> arches = SeccompArches(arch);
  if (!arches.empty()) profile["architectures"] = arches;
  return profile;
}

}  // namespace berth::oci
