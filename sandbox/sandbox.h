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

/* Resource limits, applied with cgroups (v2 where delegated or as root, v1 on hybrid hosts). */
#define RBX_DEFAULT_PIDS_LIMIT 2048
struct rbx_limits {
    uint64_t memory_bytes; /* --memory; 0: none */
    int64_t pids;          /* --pids-limit; 0: RBX_DEFAULT_PIDS_LIMIT, -1: unlimited */
    uint64_t cpu_millis;   /* --cpus 1.5 is 1500; 0: none */
};

/* One rlimit (--ulimit nofile=1024:4096). Unset rlimits are inherited, except RLIMIT_NOFILE
 * whose default is 1024:524288 (capped by reprobox's own hard limit). */
struct rbx_rlimit {
    int resource; /* RLIMIT_* */
    uint64_t soft, hard;
};

enum rbx_seccomp_mode {
    RBX_SECCOMP_DEFAULT = 0, /* Docker's default profile, templated by the capabilities */
    RBX_SECCOMP_UNCONFINED,  /* --security-opt seccomp=unconfined */
    RBX_SECCOMP_PROFILE,     /* spec.seccomp: a Docker JSON profile or a bundle's linux.seccomp */
};
struct rbx_seccomp; /* a parsed profile (seccomp.c) */
struct rbx_prestart; /* a container's holder started before its spec is known */

struct rbx_spec {
    /* rootfs: an overlay of read-only layer dirs (lowest first) with a writable upper dir, or a
     * plain directory used as it is */
    char **lower_dirs;
    char *upper_dir, *work_dir;
    /* The upper dir is thrown away after the run: overlayfs need not sync it to disk when it
     * is unmounted ("volatile", Linux 5.10; left out where the kernel has no such option). */
    bool upper_volatile;
    char *rootfs_dir;
    bool readonly_rootfs;
    /* rbx_sandbox_run only: a holder started early for this run (rbx_prestart_new), used when
     * its network and hostname are the spec's. Not owned by the spec. */
    struct rbx_prestart *prestart;

    char **argv;    /* argv[0] without '/' is looked up in the PATH of env, inside the rootfs */
    char **env;     /* "K=V", the complete environment of the command */
    char *cwd;      /* absolute; created when missing, as docker does */
    char *user;     /* NULL/"" (root), "name", "uid", "uid:gid", "name:group"; resolved in the
                     * image's /etc/passwd and /etc/group */
    uint32_t *additional_gids; /* added to the groups of /etc/group (docker's --group-add) */
    size_t n_additional_gids;
    bool groups_explicit;      /* only additional_gids, /etc/group is not read (OCI bundles) */
    char *hostname; /* NULL: "reprobox" */
    enum rbx_network_mode network;
    struct rbx_mount_spec *mounts;
    size_t n_mounts;

    /* I/O: stdin is handed to the command as it is; stdout/stderr go through pipes to a relay
     * that copies them to these fds (-1: discard) and keeps a tail for the report. With `tty`
     * the command gets a pty of its own (its controlling terminal) instead; stdin_fd is relayed
     * into it. Without `tty` the command is in a session of its own with no controlling
     * terminal, so TIOCSTI cannot reach the caller's. */
    int stdin_fd, stdout_fd, stderr_fd;
    size_t tail_lines; /* 0: 64 */
    bool tty;
    char *log_dir;          /* when set: stdout.log and stderr.log there, each capped */
    uint64_t log_max_bytes; /* 0: 64 MiB per stream; then a truncation marker */

    /* Supervision (0: none): the whole sandbox gets SIGTERM after timeout_ms, or after
     * idle_timeout_ms without a byte of output, then SIGKILL after stop_timeout_ms (0: 10 s). */
    uint64_t timeout_ms, idle_timeout_ms, stop_timeout_ms;
    bool init; /* reprobox's init at pid 1 (reaps, forwards signals); else the command is pid 1 */

    /* Confinement. no_new_privs is always on. Capabilities: Docker's default set minus
     * NET_RAW, MKNOD and AUDIT_WRITE; cap_drop is applied first, then cap_add (names with or
     * without "CAP_", any case, or "ALL"). */
    char **cap_add, **cap_drop;
    enum rbx_seccomp_mode seccomp_mode;
    struct rbx_seccomp *seccomp; /* RBX_SECCOMP_PROFILE: owned by the spec */
    char *seccomp_cache_dir;     /* compiled filters are kept there (NULL: compiled each run) */
    struct rbx_limits limits;    /* per container */
    struct rbx_rlimit *rlimits;
    size_t n_rlimits;
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
    bool killed_after_grace; /* it outlived SIGTERM by stop_timeout_ms and got SIGKILL */
    bool oom_killed; /* the memory limit killed it */

    /* The confinement it actually had, for the report. */
    uint64_t caps;        /* bounding = permitted = effective set of root, bit N = capability N */
    char seccomp[96];     /* "default", "unconfined", "profile sha256:<12 hex>" */
    struct rbx_limits limits; /* as applied (0 / -1: not applied) */
    const char *cgroup;   /* "v1", "v2" or "none" (static string) */
    char *limits_note;    /* why some limit could not be applied, or NULL: say it once */
};

/* Run the spec to completion: rbx_container_create + rbx_container_spawn + rbx_process_wait,
 * forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT received meanwhile to the command (a multi-threaded
 * caller blocks them in its other threads). Returns 0 when the command ran (whatever its
 * status), or an error: RBX_ERR_EXEC_NOT_FOUND (exit_code 127), RBX_ERR_EXEC_DENIED (126),
 * RBX_ERR_EXEC_FORMAT (126), other kinds for a sandbox that could not be set up (the CLI exits
 * 125). */
int rbx_sandbox_run(const struct rbx_spec *spec, struct rbx_result *res, struct rbx_error **err);
void rbx_result_clear(struct rbx_result *res);

/* Start the container of an rbx_sandbox_run early, before its spec is known: its holder makes
 * the namespaces (a network namespace alone costs most of a millisecond), names the host and
 * brings up lo while the caller opens the image and composes the spec. Hand it to the run in
 * spec.prestart, free it after the run (a holder not taken by then is killed). */
int rbx_prestart_new(enum rbx_network_mode network, const char *hostname,
                     struct rbx_prestart **out, struct rbx_error **err);
struct rbx_prestart *rbx_prestart_free(struct rbx_prestart *ps);
RBX_DEFINE_CLEANUP(struct rbx_prestart, rbx_prestart_free)
void rbx_spec_clear(struct rbx_spec *spec);
/* A spec with its fds at -1 and everything else empty. */
void rbx_spec_init(struct rbx_spec *spec);

/* ---- confinement pieces the CLI and the OCI bundle code share ------------------------------- */

/* Load a Docker JSON seccomp profile (moby's format: defaultAction, defaultErrnoRet,
 * architectures/archMap, syscalls[] with names, action, errnoRet, args, includes/excludes);
 * strict: unknown fields and values are errors naming their JSON path. */
int rbx_seccomp_load_file(const char *path, struct rbx_seccomp **out, struct rbx_error **err);
int rbx_seccomp_from_json(const json_t *j, const char *what, struct rbx_seccomp **out,
                          struct rbx_error **err);
struct rbx_seccomp *rbx_seccomp_free(struct rbx_seccomp *s);
RBX_DEFINE_CLEANUP(struct rbx_seccomp, rbx_seccomp_free)
/* The capability set a spec gets (bit N = capability N), or an error naming an unknown one. */
int rbx_caps_resolve(char *const *cap_add, char *const *cap_drop, uint64_t *out,
                     struct rbx_error **err);
/* "CAP_CHOWN" for 0 ... NULL for numbers the kernel does not have. */
const char *rbx_cap_name(unsigned cap);
/* docker's --ulimit NAME=SOFT[:HARD] ("nofile=1024:4096", "nproc=-1" for unlimited). */
int rbx_rlimit_parse(const char *s, struct rbx_rlimit *out, struct rbx_error **err);

/* ---- OCI runtime-spec bundles ------------------------------------------------------------ */

/* The config.json of a spec, for a bundle whose rootfs is `rootfs_path` (relative to the bundle;
 * usually "rootfs"): process (args, env, cwd, numeric user, capabilities, rlimits, terminal,
 * noNewPrivileges), hostname, mounts, linux namespaces, maskedPaths, readonlyPaths, resources
 * and the resolved seccomp profile, so that runc or crun run it as reprobox would. `rootfd`: the
 * rootfs, to resolve spec->user to numbers (-1: the user must be numeric). */
int rbx_spec_to_oci_config(const struct rbx_spec *spec, int rootfd, const char *rootfs_path,
                           json_t **out, struct rbx_error **err);
/* A bundle's config.json into a spec (rootfs_dir = bundle_dir/root.path). The subset reprobox
 * runs; any other field or value is refused, naming its JSON path. */
int rbx_spec_from_oci_config(const json_t *config, const char *bundle_dir, struct rbx_spec *spec,
                             struct rbx_error **err);

/* Copy a container's merged rootfs (rbx_container_rootfd) into `dest` (made when missing): modes,
 * owners, times, symlinks, hardlinks and file capabilities, without the mounts the sandbox put
 * over it. Device nodes that cannot be made here are counted in *skipped (optional). */
int rbx_rootfs_copy(int rootfd, const char *dest, unsigned *skipped, struct rbx_error **err);

/* ---- pods and containers: several processes, one rootfs; several rootfs, one network ------- */
/* A recipe runs its services and steps as an ECS task or a pod would: every container of a pod
 * shares one network namespace (127.0.0.1 reaches a sidecar), and the processes of one container
 * share its rootfs and its writes (a migration's side effects are seen by the next step) while
 * each is pid 1 of its own pid namespace (or runs under reprobox's init), as if it were started
 * with its own `docker run` over the same container filesystem.
 *
 * Lifetimes: free processes before their container and containers before their pod (each free
 * kills what still runs in it). Everything here is driven from one thread; the sandbox's
 * processes die with the thread that created them (PR_SET_PDEATHSIG), so create them from a
 * thread that lives as long as they should. While any rbx_process_wait/running/stop call runs,
 * the output of every live process is relayed and every process's timeouts are enforced, so a
 * detached service never blocks on a full pipe while a step is waited for. */

struct rbx_pod;
struct rbx_container;
struct rbx_process;

/* A user, network, uts and ipc namespace held open (by fds, no process) for the pod's lifetime.
 * RBX_NETWORK_NONE: loopback only, up; RBX_NETWORK_HOST: the caller's network. `hostname`
 * NULL: "reprobox". */
int rbx_pod_create(enum rbx_network_mode network, const char *hostname, struct rbx_pod **out,
                   struct rbx_error **err);
/* The pod's network namespace, for probes: a thread may setns(fd, CLONE_NEWNET) and connect to
 * 127.0.0.1 from inside it (with RBX_NETWORK_HOST: the caller's own). Owned by the pod. */
int rbx_pod_netns_fd(const struct rbx_pod *pod);
/* Stops every container of the pod still alive (SIGKILL) and releases its namespaces. */
struct rbx_pod *rbx_pod_free(struct rbx_pod *pod);
RBX_DEFINE_CLEANUP(struct rbx_pod, rbx_pod_free)

/* Mount the spec's rootfs and mounts once, in a cgroup of the container's own (spec->limits);
 * spec->argv is not run. With a pod, the container joins its network, uts and ipc namespaces
 * (spec->network and spec->hostname are then the pod's); without, it gets a pod of its own.
 * What limits could be applied is reported in each process's result (limits, cgroup,
 * limits_note). */
int rbx_container_create(const struct rbx_spec *spec, struct rbx_pod *pod,
                         struct rbx_container **out, struct rbx_error **err);
/* An O_PATH fd of the container's merged rootfs, for looking inside (diagnosis, doctor): resolve
 * with rbx_open_in_root only. Owned by the container. */
int rbx_container_rootfd(const struct rbx_container *c);
/* Start proc->argv in the container, with proc's env, cwd, user, groups, I/O, tty, logs,
 * timeouts, init, capabilities, seccomp and rlimits (its rootfs, mounts, network, hostname and
 * limits fields are ignored: they are the container's). Returns once the command has been
 * executed, or failed to be: the same errors as rbx_sandbox_run (RBX_ERR_EXEC_NOT_FOUND is
 * exit 127, RBX_ERR_EXEC_DENIED and RBX_ERR_EXEC_FORMAT 126, others 125). The spec is copied:
 * it need not outlive the call. */
int rbx_container_spawn(struct rbx_container *c, const struct rbx_spec *proc,
                        struct rbx_process **out, struct rbx_error **err);
/* The process's pid 1 as the caller sees it (its /proc/PID/net/tcp is the pod's). */
pid_t rbx_process_pid(const struct rbx_process *p);
/* Wait for the process to end (supervising its output and timeouts meanwhile) and fill res
 * (exit code, signal, stop reason, OOM, tails, byte counts, run time). */
int rbx_process_wait(struct rbx_process *p, struct rbx_result *res, struct rbx_error **err);
/* Is it still running? (non-blocking; also relays pending output and enforces timeouts) */
bool rbx_process_running(struct rbx_process *p);
/* SIGTERM, then SIGKILL after grace_ms, then as rbx_process_wait; res gets RBX_STOP_REQUESTED
 * unless it ended before. */
int rbx_process_stop(struct rbx_process *p, uint64_t grace_ms, struct rbx_result *res,
                     struct rbx_error **err);
struct rbx_process *rbx_process_free(struct rbx_process *p); /* kills it if still running */
RBX_DEFINE_CLEANUP(struct rbx_process, rbx_process_free)
/* Kills what still runs in it (its whole cgroup), unmounts, removes its cgroup. */
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
