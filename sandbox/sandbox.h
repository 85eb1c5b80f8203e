/* sandbox.h — the one public header of sandbox/: what to run and how (struct rbx_spec), the
 * privilege decision, and running a spec in namespaces with its output supervised. The spec is
 * the only thing builder/ and recipes/ hand to the sandbox; it maps onto the OCI runtime-spec. */
#pragma once

#include "common/common.h"

#include <signal.h>

/* ---- privilege: decided once, at start (STYLE.md, after bubblewrap) -------------------------- */

enum rbx_privilege {
    RBX_PRIV_ROOT,     /* real root: identity-mapped user namespace */
    RBX_PRIV_ROOTLESS, /* an ordinary user: re-executed as root of a user namespace that maps the
                        * caller to 0 and, where newuidmap allows, its subordinate ids to 1..N */
};

/* Call first thing in commands that touch the store or run anything. As an ordinary user this
 * re-executes the program inside a new user namespace (once; the re-executed copy sees
 * RBX_PRIV_ROOTLESS and continues) and the original process only waits and forwards signals:
 * it does not return. `*mapped_ids` is the number of ids usable inside (1 when only the caller
 * is mapped). */
int rbx_privilege_setup(char **argv, enum rbx_privilege *priv, unsigned *mapped_ids,
                        struct rbx_error **err);
/* The uid of the person who ran reprobox (before any re-execution). */
uid_t rbx_privilege_real_uid(void);

/* ---- the spec --------------------------------------------------------------------------- */

enum rbx_network_mode {
    RBX_NETWORK_NONE = 0, /* a new network namespace with loopback up */
    RBX_NETWORK_HOST,     /* the caller's network */
};

/* A bind mount asked for by the user (-v HOST:CTR[:ro]) or a tmpfs. */
struct rbx_mount_spec {
    char *source; /* host path (bind) or NULL (tmpfs) */
    char *target; /* absolute path inside the container */
    char *type;   /* "bind" or "tmpfs" */
    bool readonly;
};

struct rbx_spec {
    /* rootfs: an overlay of read-only layer dirs (lowest first) with a writable upper dir, or a
     * plain directory used as it is */
    char **lower_dirs;
    char *upper_dir, *work_dir;
    char *rootfs_dir;
    bool readonly_rootfs;

    char **argv;    /* argv[0] without '/' is looked up in the PATH of env, inside the rootfs */
    char **env;     /* "K=V", the complete environment of the command */
    char *cwd;      /* absolute; created when missing, as docker does */
    char *user;     /* NULL/"" (root), "name", "uid", "uid:gid", "name:group"; resolved in the
                     * image's /etc/passwd and /etc/group */
    char *hostname; /* NULL: "reprobox" */
    enum rbx_network_mode network;
    struct rbx_mount_spec *mounts;
    size_t n_mounts;

    /* I/O: stdin is handed to the command as it is; stdout/stderr go through pipes to a relay
     * that copies them to these fds (-1: discard) and keeps a tail for the report. */
    int stdin_fd, stdout_fd, stderr_fd;
    size_t tail_lines; /* 0: 64 */
};

/* What happened. Filled as far as the run got, also when an error is returned. */
struct rbx_result {
    int exit_code;   /* docker's: the command's code, 128+N for signal N, 126, 127 */
    int signal;      /* the signal that killed the command, else 0 */
    bool cwd_created;
    uid_t uid;       /* as resolved in the image */
    gid_t gid;
    char *exec_path; /* the program actually executed, inside the rootfs */
    char *stdout_tail, *stderr_tail;
    uint64_t setup_ns, run_ns;
};

/* Run the spec to completion. Returns 0 when the command ran (whatever its status), or an error:
 * RBX_ERR_EXEC_NOT_FOUND (exit_code 127), RBX_ERR_EXEC_DENIED (126), RBX_ERR_EXEC_FORMAT (126),
 * other kinds for a sandbox that could not be set up (the CLI exits 125). */
int rbx_sandbox_run(const struct rbx_spec *spec, struct rbx_result *res, struct rbx_error **err);
void rbx_result_clear(struct rbx_result *res);
void rbx_spec_clear(struct rbx_spec *spec);

/* ---- pieces exposed for unit tests -------------------------------------------------------- */

/* Resolve a docker-style user ("name", "uid", "uid:gid", "name:group", ":gid"...) against the
 * passwd and group files of the rootfs at rootfd. Unknown names are errors; unknown numeric ids
 * are used as they are (as docker does). */
struct rbx_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[64]; /* supplementary groups from /etc/group */
    size_t n_groups;
    char home[256];   /* from passwd, "/" when unknown */
};
int rbx_user_resolve(int rootfd, const char *spec, struct rbx_user *out, struct rbx_error **err);

/* Find argv0 as execvp would inside the rootfs: a name without '/' is searched in path_env (the
 * command's PATH), a relative path with '/' is taken from cwd. On success `out` holds the
 * absolute path inside the rootfs. Fails with RBX_ERR_EXEC_NOT_FOUND or RBX_ERR_EXEC_DENIED,
 * naming the command and the PATH searched. */
int rbx_exec_lookup(int rootfd, const char *cwd, const char *argv0, const char *path_env, char *out,
                    size_t outlen, struct rbx_error **err);
