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

    /* Supervision (0: none): the whole sandbox gets SIGTERM after timeout_ms, or after
     * idle_timeout_ms without a byte of output, then SIGKILL after stop_timeout_ms (0: 10 s). */
    uint64_t timeout_ms, idle_timeout_ms, stop_timeout_ms;
    bool init; /* reprobox's init at pid 1 (reaps, forwards signals); else the command is pid 1 */
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
    uint64_t stdout_bytes, stderr_bytes; /* all the output, not just the tail */
    uint64_t setup_ns, run_ns;
    enum rbx_stop_reason {
        RBX_STOP_NONE = 0,  /* the command ended by itself */
        RBX_STOP_TIMEOUT,   /* spec.timeout_ms passed */
        RBX_STOP_IDLE,      /* spec.idle_timeout_ms passed without output: a hang */
        RBX_STOP_REQUESTED, /* stopped by the caller (a detached recipe step at the end) */
    } stop_reason;
    bool oom_killed; /* the memory limit killed it */
};

/* Run the spec to completion. Returns 0 when the command ran (whatever its status), or an error:
 * RBX_ERR_EXEC_NOT_FOUND (exit_code 127), RBX_ERR_EXEC_DENIED (126), RBX_ERR_EXEC_FORMAT (126),
 * other kinds for a sandbox that could not be set up (the CLI exits 125). */
int rbx_sandbox_run(const struct rbx_spec *spec, struct rbx_result *res, struct rbx_error **err);
void rbx_result_clear(struct rbx_result *res);
void rbx_spec_clear(struct rbx_spec *spec);

/* ---- pods and containers: several processes, one rootfs; several rootfs, one network ------- */
/* A recipe runs its services and steps as an ECS task or a pod would: every container of a pod
 * shares one network namespace (127.0.0.1 reaches a sidecar), and the processes of one container
 * share its rootfs and its writes (a migration's side effects are seen by the next step) while
 * each is pid 1 of its own pid namespace (or runs under reprobox's init), as if it were started
 * with its own `docker run` over the same container filesystem. */

struct rbx_pod;
struct rbx_container;
struct rbx_process;

/* A network (+ uts, ipc) namespace held open for the pod's lifetime. RBX_NETWORK_NONE: loopback
 * only; RBX_NETWORK_HOST: the caller's network. */
int rbx_pod_create(enum rbx_network_mode network, const char *hostname, struct rbx_pod **out,
                   struct rbx_error **err);
/* The pod's network namespace, for probes: a thread may setns(fd, CLONE_NEWNET) and connect to
 * 127.0.0.1 from inside it. Owned by the pod. */
int rbx_pod_netns_fd(const struct rbx_pod *pod);
/* Stops every container of the pod (SIGKILL) and releases its namespaces. */
struct rbx_pod *rbx_pod_free(struct rbx_pod *pod);
RBX_DEFINE_CLEANUP(struct rbx_pod, rbx_pod_free)

/* Mount the spec's rootfs and mounts once; spec->argv is not run. With a pod, the container joins
 * its network (spec->network and spec->hostname are then the pod's). */
int rbx_container_create(const struct rbx_spec *spec, struct rbx_pod *pod,
                         struct rbx_container **out, struct rbx_error **err);
/* An O_PATH fd of the container's merged rootfs, for looking inside (diagnosis, doctor): resolve
 * with rbx_open_in_root only. Owned by the container. */
int rbx_container_rootfd(const struct rbx_container *c);
/* Start proc->argv in the container, with proc's env, cwd, user, I/O, timeouts and init (its
 * rootfs fields are ignored). Returns once the command has been executed (or failed to be,
 * with the same errors as rbx_sandbox_run). */
int rbx_container_spawn(struct rbx_container *c, const struct rbx_spec *proc,
                        struct rbx_process **out, struct rbx_error **err);
/* Wait for the process to end (supervising its output and timeouts meanwhile) and fill res. */
int rbx_process_wait(struct rbx_process *p, struct rbx_result *res, struct rbx_error **err);
/* Is it still running? (non-blocking; also relays pending output) */
bool rbx_process_running(struct rbx_process *p);
/* SIGTERM, then SIGKILL after grace_ms; res gets RBX_STOP_REQUESTED unless it ended before. */
int rbx_process_stop(struct rbx_process *p, uint64_t grace_ms, struct rbx_result *res,
                     struct rbx_error **err);
struct rbx_process *rbx_process_free(struct rbx_process *p); /* kills it if still running */
RBX_DEFINE_CLEANUP(struct rbx_process, rbx_process_free)
/* Kills what still runs, unmounts. */
struct rbx_container *rbx_container_free(struct rbx_container *c);
RBX_DEFINE_CLEANUP(struct rbx_container, rbx_container_free)

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
