/* pod.c — a pod: the user, network, uts and ipc namespaces its containers share, made by a
 * short-lived child and then held by fds only. The child maps its ids, names the host and brings
 * up loopback, so every container of the pod finds them ready. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>


struct pod_child {
    int sock, parent_sock;
    const char *hostname;
    bool own_net;
};

/* Runs in the child, in its new namespaces: only system calls. */
static _Noreturn void pod_child_main(const struct pod_child *pc)
{
    struct rbx_sync_msg m;
    int fd;
    close(pc->parent_sock);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (rbx_sync_recv(pc->sock, &m, &fd) != 1 || m.type != RBX_SYNC_MAPPED)
        _exit(125);
    if (sethostname(pc->hostname, strlen(pc->hostname)) < 0)
        rbx_child_fail(pc->sock, RBX_OP_HOSTNAME, 0, errno, NULL);
    int r;
    if (pc->own_net && (r = rbx_net_loopback_up()) < 0)
        rbx_child_fail(pc->sock, RBX_OP_LOOPBACK, 0, -r, NULL);
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_DONE;
    rbx_sync_send(pc->sock, &m, -1);
    _exit(0);
}

int rbx_pod_open_ns(pid_t pid, const char *name, struct rbx_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, name);
    int fd = rbx_fd_above_stdio(open(path, O_RDONLY | O_CLOEXEC));
    return fd < 0 ? rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: open %s", path)
                  : fd;
}

int rbx_pod_write_maps(const struct rbx_pod *pod, pid_t pid, struct rbx_error **err)
{
    if (pod->setgroups_deny && rbx_proc_write(pid, "setgroups", "deny", err) < 0)
        return rbx_error_wrap(err, "sandbox");
    if (rbx_idmap_write(pid, "uid_map", &pod->uid_map, err) < 0 ||
        rbx_idmap_write(pid, "gid_map", &pod->gid_map, err) < 0)
        return rbx_error_wrap(err, "sandbox");
    return 0;
}

int rbx_pod_alloc(enum rbx_network_mode network, const char *hostname, struct rbx_pod **out,
                  struct rbx_error **err)
{
    _cleanup_(rbx_pod_freep) struct rbx_pod *pod = rbx_xcalloc(1, sizeof(*pod));
    pod->userns = pod->netns = pod->utsns = pod->ipcns = -1;
    pod->network = network;
    const char *name = hostname && *hostname ? hostname : RBX_DEFAULT_HOSTNAME;
    if (strlen(name) > 64)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "hostname \"%s\": longer than 64 bytes",
                             name);
    snprintf(pod->hostname, sizeof(pod->hostname), "%s", name);

    /* The child's maps: the identity over the ids we have ourselves. */
    struct rbx_idmap own;
    if (rbx_idmap_read_self("uid_map", &own, err) < 0)
        return rbx_error_wrap(err, "sandbox");
    rbx_idmap_identity(&own, &pod->uid_map);
    if (rbx_idmap_read_self("gid_map", &own, err) < 0)
        return rbx_error_wrap(err, "sandbox");
    rbx_idmap_identity(&own, &pod->gid_map);
    if (rbx_setgroups_denied_self(&pod->setgroups_deny, err) < 0)
        return rbx_error_wrap(err, "sandbox");
    *out = TAKE_PTR(pod);
    return 0;
}

int rbx_pod_create_internal(enum rbx_network_mode network, const char *hostname, int sigfd,
                            struct rbx_pod **out, struct rbx_error **err)
{
    _cleanup_(rbx_pod_freep) struct rbx_pod *pod = NULL;
    int r0 = rbx_pod_alloc(network, hostname, &pod, err);
    if (r0 < 0)
        return r0;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");
    _cleanup_close_ int sock = rbx_fd_above_stdio(sv[0]);
    _cleanup_close_ int child_sock = rbx_fd_above_stdio(sv[1]);
    if (sock < 0 || child_sock < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");

    bool own_net = network == RBX_NETWORK_NONE;
    struct pod_child pc = {.sock = child_sock, .parent_sock = sock, .hostname = pod->hostname, .own_net = own_net};
    unsigned long flags =
        CLONE_NEWUSER | CLONE_NEWUTS | CLONE_NEWIPC | (own_net ? CLONE_NEWNET : 0);
    pid_t pid = rbx_clone(flags);
    if (pid == 0)
        pod_child_main(&pc);
    if (pid < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno,
                                   "sandbox: cannot create namespaces (are user namespaces "
                                   "enabled?)");
    close(TAKE_FD(child_sock));

    int r;
    if ((pod->userns = rbx_pod_open_ns(pid, "user", err)) < 0 ||
        (pod->utsns = rbx_pod_open_ns(pid, "uts", err)) < 0 || (pod->ipcns = rbx_pod_open_ns(pid, "ipc", err)) < 0 ||
        (pod->netns = own_net ? rbx_pod_open_ns(pid, "net", err)
                                : rbx_pod_open_ns(getpid(), "net", err)) < 0) {
        r = -EIO;
        goto fail;
    }
    r = rbx_pod_write_maps(pod, pid, err);
    if (r < 0)
        goto fail;
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_MAPPED;
    r = rbx_sync_send(sock, &m, -1);
    if (r < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
        goto fail;
    }
    int fd = -1;
    r = rbx_parent_expect(sock, sigfd, &pid, RBX_SYNC_DONE, &m, &fd, NULL, 0, NULL, err);
    if (fd >= 0)
        close(fd);
    if (r < 0)
        goto fail;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    *out = TAKE_PTR(pod);
    return 0;
fail:
    rbx_kill_and_reap(&pid);
    return r;
}

int rbx_pod_create(enum rbx_network_mode network, const char *hostname, struct rbx_pod **out,
                   struct rbx_error **err)
{
    return rbx_pod_create_internal(network, hostname, -1, out, err);
}

int rbx_pod_netns_fd(const struct rbx_pod *pod)
{
    return pod->netns;
}

struct rbx_pod *rbx_pod_free(struct rbx_pod *pod)
{
    if (!pod)
        return NULL;
    while (pod->containers)
        rbx_container_free(pod->containers);
    int *fds[] = {&pod->userns, &pod->netns, &pod->utsns, &pod->ipcns};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(fds); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    free(pod);
    return NULL;
}
