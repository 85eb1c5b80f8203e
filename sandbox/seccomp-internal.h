/* seccomp-internal.h — what seccomp.c and seccomp_default.c share: a profile as rows, the same
 * shape for the built-in default (a static table) and for a parsed Docker JSON profile. */
#pragma once

#include "sandbox/sandbox-internal.h"

#include <seccomp.h>

#define RBX_SECCOMP_MAX_ARGS 6

struct rbx_seccomp_arg {
    unsigned index;
    enum scmp_compare op;
    uint64_t value, value_two;
};

/* One rule: every name gets `action` when the args match. It applies only when the process has
 * every capability of caps_include and none of caps_exclude, on the host arches listed. */
struct rbx_seccomp_row {
    const char *const *names; /* NULL-terminated */
    uint32_t action;          /* SCMP_ACT_*, SCMP_ACT_ERRNO(n) with its number */
    int errno_ret;            /* the n of SCMP_ACT_ERRNO, for the JSON form */
    struct rbx_seccomp_arg args[RBX_SECCOMP_MAX_ARGS];
    size_t n_args;
    uint64_t caps_include, caps_exclude;
    const char *arches; /* "amd64,x32": Docker's names of host arches; NULL: any */
    const char *min_kernel; /* "4.8"; NULL: any */
};

extern const struct rbx_seccomp_row rbx_seccomp_default_rows[];
extern const size_t rbx_seccomp_default_rows_count;

struct rbx_seccomp {
    uint32_t default_action;
    int default_errno;
    uint32_t arches[8]; /* SCMP_ARCH_*; 0 entries: the native arch and its sub-arches */
    size_t n_arches;
    struct rbx_seccomp_row *rows;
    size_t n_rows;
    char **owned; /* every string the rows point to, for a parsed profile */
    char ***owned_lists;
    size_t n_owned, n_owned_lists;
    bool is_default;
};
