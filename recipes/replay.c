/* replay.c — running a recipe as production would: its services (sidecars) and its steps in one
 * pod (one network namespace), the steps in order in one container (one rootfs, so a
 * migration's writes are seen by the start), detached steps kept running behind readiness
 * probes, then expectations and a diagnosis of whatever failed. */
#include "recipes/recipes.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* Until sandbox/ provides pods, a build without them still links, and a replay says so. */
#pragma weak rbx_pod_create
#pragma weak rbx_pod_netns_fd
#pragma weak rbx_pod_free
#pragma weak rbx_container_create
#pragma weak rbx_container_rootfd
#pragma weak rbx_container_spawn
#pragma weak rbx_container_free
#pragma weak rbx_process_wait
#pragma weak rbx_process_running
#pragma weak rbx_process_stop
#pragma weak rbx_process_free

#define TAIL_LINES 200
#define DEFAULT_STOP_MS 5000
#define HTTP_CHECK_MS 5000

/* One image made ready to run: opened, unpacked, a run dir for its writes, its container. */
struct box {
    struct rbx_image *img;
    struct rbx_run_dir *rd;
    struct rbx_container *ctr;
};

/* The output of one process on its way to the log, each line prefixed with its name, as
 * docker compose does: "db      | LOG:  database system is ready"; its last lines are kept, so
 * the summary can show what a server said when it failed rather than its shutdown. */
struct prefixer {
    pthread_t thread;
    bool running;
    int read_fd, write_fd, log_fd; /* log_fd -1: keep the tail only */
    char prefix[80];
    pthread_mutex_t lock;
    struct rbx_tail *tail;
};

struct live {
    struct rbx_outcome *o;
    struct box *box;
    struct rbx_process *proc;
    uint64_t started_ns;
    struct prefixer log;
};

struct replay {
    const struct rbx_recipe *rc;
    const struct rbx_replay_opts *opts;
    struct rbx_replay *out;
    struct rbx_pod *pod;
    struct box *boxes; /* services first, then the recipe's image */
    size_t n_boxes;
    struct live *live; /* one per outcome */
    char *scratch;     /* where a built image was written */
    int null_fd;
};

static void box_close(struct box *b, bool keep, char ***kept)
{
    if (b->ctr)
        b->ctr = rbx_container_free(b->ctr);
    if (b->rd) {
        if (keep)
            rbx_strv_push(kept, rbx_run_dir_upper(b->rd));
        b->rd = rbx_run_dir_close(b->rd, keep);
    }
    b->img = rbx_image_free(b->img);
}

static int box_open(struct replay *R, struct box *b, const char *ref, struct rbx_error **err)
{
    struct rbx_store *store = R->opts->store;
    struct rbx_open_opts oo = {.pull = R->opts->pull, .registry = R->opts->registry};
    int r = rbx_image_open(store, ref, &oo, &b->img, err);
    if (r < 0)
        return r;
    struct rbx_unpack_opts uo = {.progress = R->opts->progress,
                                 .progress_data = R->opts->progress_data};
    if (!rbx_store_overlay_unusable(store)) { /* else rbx_run_rootfs copies it flat */
        struct rbx_unpack_stats st = {0};
        r = rbx_image_unpack(store, b->img, &uo, &st, err);
        if (r < 0)
            return r;
    }
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = -1;
    r = rbx_run_dir_create(store, &b->rd, err);
    if (r == 0)
        r = rbx_run_rootfs(store, b->img, b->rd, &uo, &spec, err);
    if (r >= 0) {
        spec.upper_volatile = !R->opts->keep;
        spec.network = R->rc->network;
        r = rbx_container_create(&spec, R->pod, &b->ctr, err);
    }
    rbx_spec_clear(&spec);
    return r < 0 ? rbx_error_wrap(err, "image %s", ref) : 0;
}

/* ---- the log ------------------------------------------------------------------------------- */

static void write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w;
        n -= (size_t)w;
    }
}

static void emit_line(struct prefixer *p, const char *line, size_t n)
{
    if (p->log_fd < 0)
        return;
    char out[4096 + 96];
    size_t plen = strlen(p->prefix);
    if (n > sizeof(out) - plen - 1)
        n = sizeof(out) - plen - 1;
    memcpy(out, p->prefix, plen);
    memcpy(out + plen, line, n);
    out[plen + n] = '\n';
    write_all(p->log_fd, out, plen + n + 1); /* one write per line: lines do not interleave */
}

static void *prefixer_main(void *arg)
{
    struct prefixer *p = arg;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(p->read_fd, buf + have, sizeof(buf) - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        pthread_mutex_lock(&p->lock);
        rbx_tail_feed(p->tail, buf + have, (size_t)n);
        pthread_mutex_unlock(&p->lock);
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] == '\n') {
                emit_line(p, buf + start, i - start);
                start = i + 1;
            }
        }
        if (start == 0 && have == sizeof(buf)) { /* a line longer than the buffer */
            emit_line(p, buf, have);
            start = have;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    if (have)
        emit_line(p, buf, have);
    return NULL;
}

/* A pipe whose write end the process's output goes to (-1 when it could not be made). */
static int prefixer_start(struct prefixer *p, int log_fd, const char *name)
{
    int fds[2];
    p->read_fd = p->write_fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pthread_mutex_init(&p->lock, NULL);
    p->tail = rbx_tail_new(TAIL_LINES, 64u << 10);
    p->read_fd = fds[0];
    p->write_fd = fds[1];
    p->log_fd = log_fd;
    snprintf(p->prefix, sizeof(p->prefix), "%-10s | ", name);
    if (rbx_thread_create_quiet(&p->thread, prefixer_main, p) != 0) {
        close(fds[0]);
        close(fds[1]);
        p->read_fd = p->write_fd = -1;
        p->tail = rbx_tail_free(p->tail);
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    p->running = true;
    return p->write_fd;
}

/* After the process is gone: the last lines, then the thread. */
static void prefixer_stop(struct prefixer *p)
{
    if (p->write_fd >= 0)
        close(p->write_fd);
    p->write_fd = -1;
    if (p->running)
        pthread_join(p->thread, NULL);
    p->running = false;
    if (p->read_fd >= 0)
        close(p->read_fd);
    p->read_fd = -1;
    if (p->tail) {
        p->tail = rbx_tail_free(p->tail);
        pthread_mutex_destroy(&p->lock);
    }
}

/* What it has said so far (NULL without a log pipe). */
static char *prefixer_snapshot(struct prefixer *p)
{
    if (!p->running)
        return NULL;
    pthread_mutex_lock(&p->lock);
    char *s = rbx_xstrdup(rbx_tail_text(p->tail));
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* ---- composing one process as `docker run` would ------------------------------------------- */

static int compose(struct replay *R, struct live *l, const struct rbx_recipe_proc *p, bool service,
                   struct rbx_spec *spec, struct rbx_outcome *o, struct rbx_error **err)
{
    struct box *b = l->box;
    const struct rbx_recipe *rc = R->rc;
    _cleanup_strv_ char **env = NULL;
    if (!service)
        for (size_t i = 0; rc->env && rc->env[i]; i++)
            rbx_env_set(&env, rc->env[i]);
    for (size_t i = 0; p->env && p->env[i]; i++)
        rbx_env_set(&env, p->env[i]);
    struct rbx_run_request req = {
        .args = p->command,
        .entrypoint = p->entrypoint,
        .env = env,
        .env_files = service ? NULL : rc->env_files,
        .caller_env = R->opts->caller_env,
        .workdir = p->workdir ? p->workdir
                   : service  ? NULL
                              : rc->workdir,
        .user = p->user   ? p->user
                : service ? NULL
                          : rc->user,
    };
    struct rbx_compose_info info = {0};
    int r = rbx_run_compose(&b->img->config, &req, spec, &info, err);
    rbx_compose_info_clear(&info);
    if (r < 0)
        return rbx_error_wrap(err, "%s %s", service ? "service" : "step", p->name);
    spec->stdin_fd = R->null_fd;
    spec->stdout_fd = spec->stderr_fd = prefixer_start(&l->log, R->opts->log_fd, p->name);
    spec->tail_lines = TAIL_LINES;
    spec->timeout_ms = p->timeout_ms;
    spec->idle_timeout_ms = p->idle_timeout_ms;
    spec->stop_timeout_ms = p->stop_timeout_ms;
    spec->init = rc->init;
    spec->network = rc->network;

    o->argv = rbx_strv_copy(spec->argv);
    o->env = rbx_strv_copy(spec->env);
    o->cwd = rbx_xstrdup(spec->cwd);
    o->user = spec->user ? rbx_xstrdup(spec->user) : NULL;
    o->network = rc->network;
    o->build = service ? NULL : rc->build;
    /* Docker creates a missing working directory; say so, it is often the bug. */
    int rootfd = rbx_container_rootfd(b->ctr);
    _cleanup_close_ int cwdfd =
        rbx_open_in_root(rootfd, spec->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0, NULL);
    o->cwd_missing = cwdfd == -ENOENT;
    return 0;
}

/* ---- probes ---------------------------------------------------------------------------------- */

static bool probe_alive(void *userdata)
{
    struct live *l = userdata;
    return l->proc && rbx_process_running(l->proc);
}

static int probe_exec(void *userdata, char *const *argv, uint64_t limit_ms)
{
    struct live *l = userdata;
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.argv = rbx_strv_copy(argv);
    spec.env = rbx_strv_copy(l->o->env);
    spec.cwd = rbx_xstrdup(l->o->cwd ? l->o->cwd : "/");
    spec.user = l->o->user ? rbx_xstrdup(l->o->user) : NULL;
    spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = -1;
    spec.timeout_ms = limit_ms;
    spec.tail_lines = 8;
    struct rbx_process *p = NULL;
    struct rbx_result res = {0};
    struct rbx_error *e = NULL;
    int r = rbx_container_spawn(l->box->ctr, &spec, &p, &e);
    if (r == 0)
        r = rbx_process_wait(p, &res, &e);
    if (r == 0)
        r = res.exit_code ? res.exit_code : res.stop_reason ? 124 : 0;
    rbx_error_free(e);
    rbx_process_free(p);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
    return r;
}

/* The URL of an http check: a path goes to the port of the ready probe. */
static char *check_url(const struct rbx_recipe_proc *p, const char *get)
{
    if (get[0] != '/')
        return rbx_xstrdup(get);
    if (p->ready.kind == RBX_PROBE_HTTP) {
        const char *h = strstr(p->ready.url, "://");
        const char *slash = h ? strchr(h + 3, '/') : NULL;
        size_t n = slash ? (size_t)(slash - p->ready.url) : strlen(p->ready.url);
        return rbx_xasprintf("%.*s%s", (int)n, p->ready.url, get);
    }
    if (p->ready.kind == RBX_PROBE_TCP)
        return strchr(p->ready.host, ':')
                   ? rbx_xasprintf("http://[%s]:%d%s", p->ready.host, p->ready.port, get)
                   : rbx_xasprintf("http://%s:%d%s", p->ready.host, p->ready.port, get);
    return rbx_xasprintf("http://127.0.0.1%s", get);
}

static void run_http_checks(struct replay *R, struct live *l)
{
    const struct rbx_expect *e = &l->o->proc->expect;
    if (!e->n_http)
        return;
    l->o->http = rbx_xcalloc(e->n_http, sizeof(*l->o->http));
    for (size_t i = 0; i < e->n_http; i++) {
        struct rbx_http_outcome *h = &l->o->http[i];
        h->url = check_url(l->o->proc, e->http[i].get);
        (void)rbx_http_get_in_netns(rbx_pod_netns_fd(R->pod), h->url, HTTP_CHECK_MS, &h->resp);
        l->o->n_http = i + 1;
    }
}

static void note_listening(struct replay *R, struct rbx_outcome *o)
{
    size_t n = 0;
    if (rbx_listening_ports_in_netns(rbx_pod_netns_fd(R->pod), o->listening,
                                     RBX_ARRAY_SIZE(o->listening), &n, NULL) == 0) {
        o->n_listening = n;
        o->listening_known = true;
    }
}

/* ---- one service or step --------------------------------------------------------------------- */

static void collect(struct live *l)
{
    struct rbx_error *e = NULL;
    if (rbx_process_wait(l->proc, &l->o->res, &e) < 0 && !l->o->error)
        l->o->error = e;
    else
        rbx_error_free(e);
    l->o->ended = true;
}

/* Start it; run it to its end (a step) or to readiness (detached). false: it failed and the
 * replay stops here. A negative *fatal is reprobox's own failure. */
static bool run_one(struct replay *R, struct live *l, bool service, int *fatal,
                    struct rbx_error **err)
{
    struct rbx_outcome *o = l->o;
    const struct rbx_recipe_proc *p = o->proc;
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    int r = compose(R, l, p, service, &spec, o, err);
    if (r < 0) {
        rbx_spec_clear(&spec);
        *fatal = r;
        return false;
    }
    o->state = RBX_PROC_OK;
    l->started_ns = rbx_now_ns();
    struct rbx_error *e = NULL;
    r = rbx_container_spawn(l->box->ctr, &spec, &l->proc, &e);
    rbx_spec_clear(&spec);
    if (r < 0) {
        o->error = e;
        if (e && e->kind != RBX_ERR_EXEC_NOT_FOUND && e->kind != RBX_ERR_EXEC_DENIED &&
            e->kind != RBX_ERR_EXEC_FORMAT) {
            /* Not the image's fault: the sandbox could not start it. */
            *fatal = rbx_error_set(err, e->kind, e->errnum ? e->errnum : EIO, "%s %s: %s",
                                   service ? "service" : "step", p->name, e->message);
        }
        o->state = RBX_PROC_FAILED;
        o->duration_ms = (rbx_now_ns() - l->started_ns) / 1000000;
        return false;
    }
    bool detached = service || p->detach;
    if (!detached) {
        collect(l);
        o->duration_ms = (rbx_now_ns() - l->started_ns) / 1000000;
        /* What a stopped process might have waited for is still up (or not) in the pod. */
        if (o->res.stop_reason == RBX_STOP_IDLE || o->res.stop_reason == RBX_STOP_TIMEOUT)
            note_listening(R, o);
        else if (!rbx_outcome_failed(o))
            run_http_checks(R, l); /* what a one-shot step changed, seen through a service */
    } else {
        if (p->ready.kind) {
            struct rbx_probe_env env = {.netns_fd = rbx_pod_netns_fd(R->pod),
                                        .exec = probe_exec,
                                        .alive = probe_alive,
                                        .userdata = l};
            o->has_ready = true;
            rbx_probe_run(&p->ready, &env, &o->ready);
            if (!o->ready.ready && !o->ready.target_exited)
                note_listening(R, o);
        }
        o->duration_ms = (rbx_now_ns() - l->started_ns) / 1000000;
        if (!rbx_process_running(l->proc)) {
            collect(l);
            o->exited_early = true;
        } else if (!o->has_ready || o->ready.ready) {
            run_http_checks(R, l);
        }
    }
    if (rbx_outcome_failed(o)) {
        o->state = RBX_PROC_FAILED;
        if (!o->ended) {
            /* Still running (not ready, or a 5xx): what it said up to now, before its stop. */
            (void)rbx_process_running(l->proc);
            struct timespec ts = {.tv_nsec = 50 * 1000000L};
            nanosleep(&ts, NULL);
            o->output_at_failure = prefixer_snapshot(&l->log);
        }
        return false;
    }
    return true;
}

/* Stop what still runs; a detached process that ended by itself meanwhile exited early. */
static void stop_live(struct replay *R, struct live *l)
{
    if (!l->proc || l->o->ended)
        return;
    if (!rbx_process_running(l->proc)) {
        collect(l);
        l->o->exited_early = true;
        return;
    }
    uint64_t grace = l->o->proc->stop_timeout_ms ? l->o->proc->stop_timeout_ms : DEFAULT_STOP_MS;
    struct rbx_error *e = NULL;
    if (rbx_process_stop(l->proc, grace, &l->o->res, &e) < 0 && !l->o->error)
        l->o->error = e;
    else
        rbx_error_free(e);
    l->o->ended = true;
    if (l->o->res.stop_reason != RBX_STOP_REQUESTED)
        l->o->exited_early = true;
}

/* ---- the whole recipe ------------------------------------------------------------------------ */

void rbx_replay_clear(struct rbx_replay *r)
{
    for (size_t i = 0; i < r->n_outcomes; i++)
        rbx_outcome_clear(&r->outcomes[i]);
    free(r->outcomes);
    free(r->image_ref);
    rbx_error_free(r->error);
    free(r->unmet);
    rbx_strv_free(r->kept_dirs);
    memset(r, 0, sizeof(*r));
}

bool rbx_replay_succeeded(const struct rbx_replay *r)
{
    if (r->error)
        return false;
    for (size_t i = 0; i < r->n_outcomes; i++)
        if (r->outcomes[i].state != RBX_PROC_OK || rbx_outcome_failed(&r->outcomes[i]))
            return false;
    return true;
}

static int resolve_image(struct replay *R, struct rbx_error **err)
{
    const struct rbx_recipe *rc = R->rc;
    if (rc->image) {
        R->out->image_ref = rbx_xstrdup(rc->image);
        return 0;
    }
    int r = R->opts->build ? R->opts->build(R->opts->build_data, rc, &R->out->image_ref, err)
                           : rbx_recipe_build(R->opts->store, rc, R->opts->log_fd, &R->scratch,
                                              &R->out->image_ref, err);
    return r < 0 ? rbx_error_wrap(err, "%s: build", rc->path) : 0;
}

static int replay_all(struct replay *R, struct rbx_error **err)
{
    const struct rbx_recipe *rc = R->rc;
    int r = resolve_image(R, err);
    if (r < 0)
        return r;
    if (!rbx_pod_create || !rbx_container_create || !rbx_container_spawn || !rbx_process_wait ||
        !rbx_process_running || !rbx_process_stop)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "this build of reprobox has no pods: recipes can not be replayed");
    r = rbx_pod_create(rc->network, NULL, &R->pod, err);
    if (r < 0)
        return r;

    /* Services run from their own images; every step from the recipe's, in one container. */
    R->n_boxes = rc->n_services + 1;
    R->boxes = rbx_xcalloc(R->n_boxes, sizeof(*R->boxes));
    struct box *main_box = &R->boxes[rc->n_services];
    for (size_t i = 0; i < R->out->n_outcomes; i++) {
        R->live[i].o = &R->out->outcomes[i];
        R->live[i].box = i < rc->n_services ? &R->boxes[i] : main_box;
    }

    bool going = true;
    for (size_t i = 0; i < rc->n_services && going; i++) {
        r = box_open(R, &R->boxes[i], rc->services[i].image, err);
        if (r < 0)
            return rbx_error_wrap(err, "service %s", rc->services[i].name);
        int fatal = 0;
        going = run_one(R, &R->live[i], true, &fatal, err);
        if (fatal < 0)
            return fatal;
    }
    if (going) {
        r = box_open(R, main_box, R->out->image_ref, err);
        if (r < 0)
            return r;
    }
    for (size_t i = rc->n_services; i < R->out->n_outcomes && going; i++) {
        int fatal = 0;
        going = run_one(R, &R->live[i], false, &fatal, err);
        if (fatal < 0)
            return fatal;
    }
    return 0;
}

/* Stop everything, in reverse order of start, then judge with the containers still there. */
static void finish(struct replay *R)
{
    struct rbx_replay *out = R->out;
    for (size_t i = out->n_outcomes; i-- > 0;)
        stop_live(R, &R->live[i]);
    for (size_t i = 0; i < out->n_outcomes; i++) {
        struct rbx_outcome *o = &out->outcomes[i];
        struct box *b = R->live[i].box;
        int rootfd = b && b->ctr ? rbx_container_rootfd(b->ctr) : -1;
        if (o->state != RBX_PROC_NOT_RUN && rbx_outcome_failed(o))
            o->state = RBX_PROC_FAILED;
        rbx_outcome_describe(o);
        rbx_diagnose(o, rootfd);
        if (!rbx_expect_check(o, rootfd) && !out->unmet)
            out->unmet = rbx_xasprintf("%s: %s", o->proc->name, o->unmet);
        if (!out->first_failure && o->state == RBX_PROC_FAILED)
            out->first_failure = o;
    }
    out->passed = !out->unmet && !out->error;
    for (size_t i = 0; i < out->n_outcomes; i++)
        if (R->live[i].proc)
            R->live[i].proc = rbx_process_free(R->live[i].proc);
    for (size_t i = 0; i < R->n_boxes; i++)
        box_close(&R->boxes[i], R->opts->keep, &out->kept_dirs);
    if (R->pod)
        R->pod = rbx_pod_free(R->pod);
    /* Last: a container's helper process made after a log pipe holds a copy of its write end,
     * so a log sees its end only once every container is gone. */
    for (size_t i = 0; i < out->n_outcomes; i++)
        prefixer_stop(&R->live[i].log);
}

int rbx_replay_run(const struct rbx_recipe *recipe, const struct rbx_replay_opts *opts,
                   struct rbx_replay *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    out->recipe = recipe;
    out->n_outcomes = recipe->n_services + recipe->n_steps;
    out->outcomes = rbx_xcalloc(out->n_outcomes + 1, sizeof(*out->outcomes));
    for (size_t i = 0; i < out->n_outcomes; i++) {
        bool svc = i < recipe->n_services;
        out->outcomes[i].proc = svc ? &recipe->services[i] : &recipe->steps[i - recipe->n_services];
        out->outcomes[i].is_service = svc;
    }
    struct replay R = {.rc = recipe, .opts = opts, .out = out};
    R.live = rbx_xcalloc(out->n_outcomes + 1, sizeof(*R.live));
    for (size_t i = 0; i < out->n_outcomes; i++)
        R.live[i].log.read_fd = R.live[i].log.write_fd = -1;
    R.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uint64_t t0 = rbx_now_ns();

    struct rbx_error *e = NULL;
    int r = replay_all(&R, &e);
    if (r < 0) {
        out->error = e;
        e = NULL;
    }
    finish(&R);
    if (out->error) {
        /* Not the recipe's expectations: reprobox itself could not go on. */
        free(out->unmet);
        out->unmet = rbx_xasprintf("reprobox could not replay it: %s", out->error->message);
    }
    out->passed = !out->unmet && !out->error;
    out->duration_ms = (rbx_now_ns() - t0) / 1000000;
    free(R.boxes);
    free(R.live);
    if (R.null_fd >= 0)
        close(R.null_fd);
    if (R.scratch && opts->keep) {
        rbx_strv_push(&out->kept_dirs, R.scratch);
    } else if (R.scratch) {
        /* The built image is in the cache now; its layout was only the way there. */
        char *slash = strrchr(R.scratch, '/');
        *slash = '\0';
        _cleanup_close_ int parent = open(R.scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (parent >= 0)
            (void)rbx_rm_rf_at(parent, slash + 1, NULL);
    }
    free(R.scratch);
    if (r < 0) {
        rbx_error_set(err, out->error->kind, out->error->errnum ? out->error->errnum : EIO, "%s",
                      out->error->message);
        return r;
    }
    return 0;
}
