/* seccomp_default.c — the default seccomp profile, with the semantics of moby's default: an
 * allow list (anything else fails with EPERM), arguments checked for socket, personality and
 * clone, privileged calls allowed only with the capability that makes them meaningful, clone3
 * answered ENOSYS so libc falls back to clone. Tighter than moby where the issue asks: no
 * io_uring, no AF_ALG sockets. A row is {names, action, errno, args, caps needed, caps that
 * exclude it, arches}. */
#include "sandbox/seccomp-internal.h"

#include <seccomp.h>

#define CAP(n) (1ULL << (n))
#define CAP_DAC_READ_SEARCH_ 2
#define CAP_SYS_MODULE_ 16
#define CAP_SYS_RAWIO_ 17
#define CAP_SYS_PTRACE_ 19
#define CAP_SYS_PACCT_ 20
#define CAP_SYS_ADMIN_ 21
#define CAP_SYS_BOOT_ 22
#define CAP_SYS_NICE_ 23
#define CAP_SYS_TIME_ 25
#define CAP_SYS_TTY_CONFIG_ 26
#define CAP_SYSLOG_ 34
#define CAP_PERFMON_ 38
#define CAP_BPF_ 39
#define CAP_SYS_CHROOT_ 18

/* The namespace flags of clone(2): allowed only with CAP_SYS_ADMIN. */
#define CLONE_NS_MASK 0x7E020000ULL

static const char *const allowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2",
    "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
    "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64",
    "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
    "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
    "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
    "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
    "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
    "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
    "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev", NULL};

static const char *const ptrace_family[] = {"process_vm_readv", "process_vm_writev", "ptrace",
                                            NULL};
static const char *const socket_only[] = {"socket", NULL};
static const char *const personality_only[] = {"personality", NULL};
static const char *const arch_prctl_only[] = {"arch_prctl", NULL};
static const char *const modify_ldt_only[] = {"modify_ldt", NULL};
static const char *const by_handle[] = {"open_by_handle_at", NULL};
static const char *const sys_admin[] = {
    "bpf",   "clone",         "clone3",     "fanotify_init", "fsconfig",        "fsmount",
    "fsopen", "fspick",       "lookup_dcookie", "mount",     "mount_setattr",   "move_mount",
    "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
    "setns", "syslog",        "umount",     "umount2",       "unshare",         NULL};
static const char *const clone_only[] = {"clone", NULL};
static const char *const clone3_only[] = {"clone3", NULL};
static const char *const reboot_only[] = {"reboot", NULL};
static const char *const chroot_only[] = {"chroot", NULL};
static const char *const modules[] = {"delete_module", "init_module", "finit_module", NULL};
static const char *const acct_only[] = {"acct", NULL};
static const char *const sys_ptrace[] = {"kcmp",           "pidfd_getfd",      "process_madvise",
                                         "process_vm_readv", "process_vm_writev", "ptrace", NULL};
static const char *const rawio[] = {"iopl", "ioperm", NULL};
static const char *const sys_time[] = {"settimeofday", "stime", "clock_settime",
                                       "clock_settime64", NULL};
static const char *const vhangup_only[] = {"vhangup", NULL};
static const char *const sys_nice[] = {"get_mempolicy", "mbind", "set_mempolicy",
                                       "set_mempolicy_home_node", NULL};
static const char *const syslog_only[] = {"syslog", NULL};
static const char *const bpf_only[] = {"bpf", NULL};
static const char *const perf_only[] = {"perf_event_open", NULL};

#define ARG(i, o, v) {.index = (i), .op = (o), .value = (v)}

const struct rbx_seccomp_row rbx_seccomp_default_rows[] = {
    {allowed, SCMP_ACT_ALLOW, 0, {{0}}, 0, 0, 0, NULL, NULL},
    {ptrace_family, SCMP_ACT_ALLOW, 0, {{0}}, 0, 0, 0, NULL, "4.8"},
    /* Every socket family but AF_ALG (38) and AF_VSOCK (40). */
    {socket_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_LT, 38)}, 1, 0, 0, NULL, NULL},
    {socket_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_EQ, 39)}, 1, 0, 0, NULL, NULL},
    {socket_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_GT, 40)}, 1, 0, 0, NULL, NULL},
    /* personality: only PER_LINUX, UNAME26, PER_LINUX32, both, and the query. */
    {personality_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_EQ, 0x0)}, 1, 0, 0, NULL, NULL},
    {personality_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_EQ, 0x8)}, 1, 0, 0, NULL, NULL},
    {personality_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_EQ, 0x20000)}, 1, 0, 0, NULL, NULL},
    {personality_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_EQ, 0x20008)}, 1, 0, 0, NULL, NULL},
    {personality_only, SCMP_ACT_ALLOW, 0, {ARG(0, SCMP_CMP_EQ, 0xffffffff)}, 1, 0, 0, NULL, NULL},
    {arch_prctl_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, 0, 0, "amd64,x32", NULL},
    {modify_ldt_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, 0, 0, "amd64,x32,x86", NULL},
    {by_handle, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_DAC_READ_SEARCH_), 0, NULL, NULL},
    {sys_admin, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_ADMIN_), 0, NULL, NULL},
    /* clone without namespace flags; namespaces only with CAP_SYS_ADMIN (the row above). */
    {clone_only, SCMP_ACT_ALLOW, 0, {{.index = 0, .op = SCMP_CMP_MASKED_EQ,
                                      .value = CLONE_NS_MASK, .value_two = 0}},
     1, 0, CAP(CAP_SYS_ADMIN_), NULL, NULL},
    /* clone3's flags are in memory, out of a filter's reach: ENOSYS makes libc use clone. */
    {clone3_only, SCMP_ACT_ERRNO(38), 38, {{0}}, 0, 0, CAP(CAP_SYS_ADMIN_), NULL, NULL},
    {reboot_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_BOOT_), 0, NULL, NULL},
    {chroot_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_CHROOT_), 0, NULL, NULL},
    {modules, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_MODULE_), 0, NULL, NULL},
    {acct_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_PACCT_), 0, NULL, NULL},
    {sys_ptrace, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_PTRACE_), 0, NULL, NULL},
    {rawio, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_RAWIO_), 0, NULL, NULL},
    {sys_time, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_TIME_), 0, NULL, NULL},
    {vhangup_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_TTY_CONFIG_), 0, NULL, NULL},
    {sys_nice, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYS_NICE_), 0, NULL, NULL},
    {syslog_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_SYSLOG_), 0, NULL, NULL},
    {bpf_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_BPF_), 0, NULL, NULL},
    {perf_only, SCMP_ACT_ALLOW, 0, {{0}}, 0, CAP(CAP_PERFMON_), 0, NULL, NULL},
};
const size_t rbx_seccomp_default_rows_count = RBX_ARRAY_SIZE(rbx_seccomp_default_rows);
