/* diagnose.c — why a service or step failed, in one line an on-call engineer reads at once: a
 * table of rules over the facts (exit status, stop reason, output, probes) and a look inside the
 * container's filesystem. The first rule that matches explains the failure. */
#include "recipes/recipes.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

struct diag {
    struct rbx_outcome *o;
    int rootfd;
    const char *out, *err; /* the tails ("" when none) */
    char *both;            /* stderr then stdout */
};

/* ---- small text helpers -----------------------------------------------------------------------
 */

/* The text between `open` and `close` after `after` in s (first occurrence), or NULL. */
static char *between(const char *s, const char *after, const char *open, const char *close)
{
    const char *p = strstr(s, after);
    if (!p)
        return NULL;
    p += strlen(after);
    if (*open) {
        p = strstr(p, open);
        if (!p)
            return NULL;
        p += strlen(open);
    }
    const char *e = strstr(p, close);
    if (!e || e - p > 1024)
        return NULL;
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    if (nl)
        return NULL;
    return rbx_xstrndup(p, (size_t)(e - p));
}

static bool has(const char *s, const char *needle)
{
    return s && strstr(s, needle) != NULL;
}

static bool has_ci(const char *s, const char *needle)
{
    return s && strcasestr(s, needle) != NULL;
}

/* The last non-empty line of text, trimmed and cut to 160 bytes. */
static char *last_line(const char *text)
{
    if (!text)
        return NULL;
    const char *end = text + strlen(text);
    while (end > text && isspace((unsigned char)end[-1]))
        end--;
    const char *start = end;
    while (start > text && start[-1] != '\n')
        start--;
    while (start < end && isspace((unsigned char)*start))
        start++;
    if (start == end)
        return NULL;
    size_t n = (size_t)(end - start);
    return rbx_xstrndup(start, n > 160 ? 160 : n);
}

static const char *env_of(const struct rbx_outcome *o, const char *key)
{
    return rbx_env_get(o->env, key);
}

static const char *path_env(const struct rbx_outcome *o)
{
    const char *p = env_of(o, "PATH");
    return p ? p : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

RBX_PRINTF(3, 4)
static bool say(struct diag *d, const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    free(d->o->diag_message);
    free(d->o->diag_hint);
    d->o->diag_message = m;
    d->o->diag_hint = hint ? rbx_xstrdup(hint) : NULL;
    return true;
}

/* ---- looking inside the container -------------------------------------------------------------
 */

enum lookup { LOOK_MISSING, LOOK_PRESENT, LOOK_BROKEN_LINK, LOOK_UNKNOWN };

/* Is `path` there (following links inside the root)? A dangling symlink is told apart; its
 * target is copied to `target`. */
static enum lookup look(int rootfd, const char *path, char *target, size_t tlen)
{
    if (rootfd < 0)
        return LOOK_UNKNOWN;
    if (target && tlen)
        target[0] = '\0';
    int fd = rbx_open_in_root(rootfd, path, O_PATH | O_CLOEXEC, 0, 0, NULL);
    if (fd >= 0) {
        close(fd);
        return LOOK_PRESENT;
    }
    if (fd != -ENOENT && fd != -ENOTDIR && fd != -ELOOP)
        return LOOK_UNKNOWN;
    char name[RBX_NAME_MAX + 1];
    _cleanup_close_ int dir = rbx_open_parent_in_root(rootfd, path, false, name, NULL);
    if (dir < 0)
        return LOOK_MISSING;
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return LOOK_MISSING;
    if (S_ISLNK(st.st_mode)) {
        if (target && tlen) {
            ssize_t n = readlinkat(dir, name, target, tlen - 1);
            target[n > 0 ? n : 0] = '\0';
        }
        return LOOK_BROKEN_LINK;
    }
    return LOOK_MISSING;
}

struct walk {
    const char *want;     /* a name to find */
    const char *want_sub; /* when set, the found directory must hold this entry */
    bool want_file;       /* a command: anything but a directory */
    bool want_dir;        /* a package: a real directory */
    char found[RBX_PATH_MAX];
    unsigned budget; /* entries left to look at */
};

/* Depth-first over the image, never following a symlink; /proc, /sys and /dev are skipped. */
static bool walk_dir(int dfd, char *path, size_t plen, unsigned depth, struct walk *w)
{
    if (depth > 12)
        return false;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    struct dirent *e;
    while ((e = readdir(d)) && w->budget > 0) {
        w->budget--;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (depth == 0 && (strcmp(e->d_name, "proc") == 0 || strcmp(e->d_name, "sys") == 0 ||
                           strcmp(e->d_name, "dev") == 0))
            continue;
        size_t n = strlen(e->d_name);
        if (plen + 1 + n + 1 > RBX_PATH_MAX)
            continue;
        path[plen] = '/';
        memcpy(path + plen + 1, e->d_name, n + 1);
        if (strcmp(e->d_name, w->want) == 0) {
            bool ok =
                !(w->want_file && e->d_type == DT_DIR) && !(w->want_dir && e->d_type != DT_DIR);
            if (w->want_sub) {
                struct stat st;
                _cleanup_close_ int sub =
                    openat(dirfd(d), e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                ok = sub >= 0 && fstatat(sub, w->want_sub, &st, AT_SYMLINK_NOFOLLOW) == 0;
            }
            if (ok) {
                snprintf(w->found, sizeof(w->found), "%s", path);
                return true;
            }
        }
        if (e->d_type == DT_DIR) {
            _cleanup_close_ int sub =
                openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0 && walk_dir(sub, path, plen + 1 + n, depth + 1, w))
                return true;
        }
        path[plen] = '\0';
    }
    return false;
}

/* Find an entry named `name` (holding `sub` when given) anywhere in the image; the first found,
 * in directory order, within a bounded number of entries. */
static bool find_in_image(int rootfd, const char *name, const char *sub, bool file, char *out,
                          size_t outlen)
{
    if (rootfd < 0)
        return false;
    _cleanup_close_ int top =
        rbx_open_in_root(rootfd, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, NULL);
    if (top < 0)
        return false;
    struct walk w = {
        .want = name, .want_sub = sub, .want_file = file, .want_dir = !file, .budget = 200000};
    char path[RBX_PATH_MAX] = "";
    if (!walk_dir(top, path, 0, 0, &w))
        return false;
    snprintf(out, outlen, "%s", w.found);
    return true;
}

/* ---- the rules --------------------------------------------------------------------------------
 */

static bool rule_oom(struct diag *d)
{
    if (!d->o->res.oom_killed)
        return false;
    return say(d,
               "raise the memory limit, or find what grew (a leak, a cache without bound, a "
               "too large heap: node's --max-old-space-size)",
               "the kernel killed it for using more memory than its limit");
}

/* The name a shell or runtime says it could not find, from its own words. */
static char *missing_command_from_output(const char *text)
{
    static const struct {
        const char *before, *open, *close;
    } pats[] = {
        {"can't execute '", "", "'"}, /* busybox env */
        {"exec: \"", "", "\": executable file not found"},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(pats); i++) {
        char *s = between(text, pats[i].before, pats[i].open, pats[i].close);
        if (s)
            return s;
    }
    /* "sh: pnpm: not found", "sh: 1: pnpm: not found", "bash: pnpm: command not found" */
    const char *p = text;
    char *found = NULL;
    while ((p = strstr(p, ": not found")) || (p = strstr(text, ": command not found"))) {
        const char *e = p;
        const char *s = e;
        while (s > text && s[-1] != ' ' && s[-1] != '\n' && s[-1] != ':')
            s--;
        if (e > s) {
            free(found);
            found = rbx_xstrndup(s, (size_t)(e - s));
        }
        p = e + 1;
        if (!strstr(p, ": not found"))
            break;
    }
    return found;
}

static bool rule_command_not_found(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    _cleanup_free_ char *name = NULL;
    if (o->error && o->error->kind == RBX_ERR_EXEC_NOT_FOUND && o->argv && o->argv[0])
        name = rbx_xstrdup(o->argv[0]);
    else if (o->ended && o->res.exit_code == 127)
        name = missing_command_from_output(d->both);
    if (!name)
        return false;

    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    char where[RBX_PATH_MAX];
    bool elsewhere = *base && find_in_image(d->rootfd, base, NULL, true, where, sizeof(where));
    if (name[0] == '/' || strchr(name, '/')) {
        if (elsewhere)
            return say(d, "fix the path in the command or the script",
                       "\"%s\" does not exist in the image (there is %s)", name, where);
        return say(d, "was it copied into the final stage of the image? (COPY --from=...)",
                   "\"%s\" does not exist in the image", name);
    }
    if (elsewhere)
        return say(d, "call it by its path, or add its directory to PATH",
                   "\"%s\" is not on PATH (PATH=%s), but the image has %s", name, path_env(o),
                   where);
    _cleanup_free_ char *stage = rbx_recipe_build_stage_of(o->build, name);
    if (stage)
        return say(d, "copy it into the final stage, or call what the final stage has (node, sh)",
                   "\"%s\" is not in the image (PATH=%s); %s", name, path_env(o), stage);
    return say(d,
               "build tools often stay in the build stage of a multi-stage Dockerfile: copy "
               "the tool into the final stage, or call what the image has (node, sh)",
               "\"%s\" is not in the image (PATH=%s)", name, path_env(o));
}

static bool rule_not_executable(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    bool by_error = o->error && o->error->kind == RBX_ERR_EXEC_DENIED;
    bool by_output = o->ended && o->res.exit_code == 126 && has(d->both, "Permission denied");
    if (!by_error && !by_output)
        return false;
    const char *what = o->res.exec_path ? o->res.exec_path : o->argv ? o->argv[0] : "the command";
    return say(d,
               "make it executable in the image (COPY --chmod=755, or RUN chmod +x), or run it "
               "through its interpreter (sh script.sh)",
               "\"%s\" is in the image but is not executable (permission denied)", what);
}

static bool rule_exec_format(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    bool by_error = o->error && o->error->kind == RBX_ERR_EXEC_FORMAT;
    bool by_output = o->ended && (has(d->both, "Exec format error") ||
                                  has(d->both, "cannot execute binary file"));
    if (!by_error && !by_output)
        return false;
    if (by_error)
        return say(d,
                   "build the image for this platform (linux/amd64), and use binaries built "
                   "for the image's libc (a glibc binary does not run on a musl image)",
                   "%s", o->error->message);
    return say(d, "build the image for this platform (linux/amd64)",
               "the kernel can not run the binary (Exec format error): built for another "
               "architecture, or a script without a #! line");
}

/* A URL in the environment (DATABASE_URL=postgresql://...@127.0.0.1:5432/...) that points at a
 * port of this pod where nothing listens: what a silent process is most likely waiting for. */
static bool waiting_for(const struct rbx_outcome *o, char *out, size_t len)
{
    if (!o->listening_known)
        return false;
    for (size_t i = 0; o->env && o->env[i]; i++) {
        const char *eq = strchr(o->env[i], '='), *sep = eq ? strstr(eq, "://") : NULL;
        if (!sep)
            continue;
        const char *host = sep + 3, *at = strchr(host, '@'), *end = host + strcspn(host, "/?#");
        if (at && at < end)
            host = at + 1;
        const char *colon = memchr(host, ':', (size_t)(end - host));
        size_t hlen = (size_t)((colon ? colon : end) - host);
        bool local = (hlen == 9 && strncmp(host, "127.0.0.1", 9) == 0) ||
                     (hlen == 9 && strncmp(host, "localhost", 9) == 0);
        int port = colon ? atoi(colon + 1) : 0;
        if (!local || port <= 0)
            continue;
        bool listening = false;
        for (size_t j = 0; j < o->n_listening; j++)
            listening = listening || o->listening[j] == port;
        if (!listening) {
            snprintf(out, len, "nothing listens on %.*s:%d, where %.*s points", (int)hlen, host,
                     port, (int)(eq - o->env[i]), o->env[i]);
            return true;
        }
    }
    return false;
}

static bool rule_hang(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    if (!o->ended || o->res.stop_reason != RBX_STOP_IDLE)
        return false;
    _cleanup_free_ char *last = last_line(d->both);
    char why[256];
    bool waits = waiting_for(o, why, sizeof(why));
    if (waits)
        return say(d,
                   "start what it waits for first (a service in the recipe with a ready probe); "
                   "in production, check that the task can reach it (security group, host "
                   "in the URL), and give the wait a time limit and a log line",
                   "%s%s%s and never finished; %s: most likely it was waiting for that",
                   last ? "its last line was \"" : "it printed nothing", last ? last : "",
                   last ? "\"" : "", why);
    const char *hint = "it is waiting on something that never answers: a database or host it can "
                       "not reach, a download without network, a prompt for input. Run it with "
                       "more logging, and give it a connection timeout";
    if (last)
        return say(d, hint, "it went silent after \"%s\" and never finished", last);
    return say(d, hint, "it printed nothing at all and never finished");
}

static bool rule_timeout(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    if (!o->ended || o->res.stop_reason != RBX_STOP_TIMEOUT)
        return false;
    uint64_t s = (o->proc ? o->proc->timeout_ms : 0) / 1000;
    return say(d,
               "it was still working (it printed output): raise \"timeout\", or find the "
               "slow part in its log",
               "still running after %llu s (the step's timeout); it was stopped",
               (unsigned long long)s);
}

static bool rule_workdir(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    _cleanup_free_ char *chdir_to =
        between(d->both, "no such file or directory, chdir '", "-> '", "'");
    if (!chdir_to)
        chdir_to = between(d->both, "can't cd to ", "", ":");
    if (chdir_to)
        return say(d,
                   "create the directory in the image, or fix the path (WORKDIR, or the cd in "
                   "the start script)",
                   "the directory %s does not exist (chdir failed: ENOENT)", chdir_to);
    if (!o->cwd_missing)
        return false;
    _cleanup_free_ char *module = between(d->both, "Cannot find module '", "", "'");
    if (module)
        return say(d, "fix WORKDIR in the Dockerfile, or COPY the app into that directory",
                   "the working directory %s is not in the image; it was created empty, so "
                   "%s is not there",
                   o->cwd, module);
    return say(d, "fix WORKDIR in the Dockerfile, or COPY the app into that directory",
               "the working directory %s is not in the image; the command ran in an empty "
               "directory created for it",
               o->cwd);
}

/* ---- provider mismatch: a Prisma-style schema.prisma against the DATABASE_URL -------------- */

static char *read_image_file(int rootfd, const char *path)
{
    if (rootfd < 0)
        return NULL;
    _cleanup_close_ int fd = rbx_open_in_root(rootfd, path, O_RDONLY | O_CLOEXEC, 0, 0, NULL);
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    if (rbx_read_fd(fd, 1 << 20, path, &buf, &len, NULL) < 0)
        return NULL;
    return buf;
}

/* The provider and the env var of the url in the first `datasource` block. */
static bool schema_datasource(const char *text, char *provider, size_t plen, char *url_env,
                              size_t ulen)
{
    const char *ds = strstr(text, "datasource");
    if (!ds)
        return false;
    const char *open = strchr(ds, '{'), *close = open ? strchr(open, '}') : NULL;
    if (!open || !close)
        return false;
    _cleanup_free_ char *block = rbx_xstrndup(open, (size_t)(close - open));
    _cleanup_free_ char *prov = NULL;
    for (const char *line = block; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        while (*line == ' ' || *line == '\t' || *line == '{')
            line++;
        if (strncmp(line, "provider", 8) == 0 && !prov)
            prov = between(line, "provider", "\"", "\"");
    }
    if (!prov)
        return false;
    snprintf(provider, plen, "%s", prov);
    _cleanup_free_ char *var = between(block, "env(", "\"", "\"");
    snprintf(url_env, ulen, "%s", var ? var : "DATABASE_URL");
    return true;
}

static const char *scheme_family(const char *url)
{
    static const struct {
        const char *prefix, *family;
    } t[] = {
        {"postgresql://", "postgresql"},
        {"postgres://", "postgresql"},
        {"mysql://", "mysql"},
        {"sqlserver://", "sqlserver"},
        {"mongodb://", "mongodb"},
        {"mongodb+srv://", "mongodb"},
        {"file:", "sqlite"},
    };
    for (size_t i = 0; url && i < RBX_ARRAY_SIZE(t); i++)
        if (strncmp(url, t[i].prefix, strlen(t[i].prefix)) == 0)
            return t[i].family;
    return NULL;
}

static bool rule_provider_mismatch(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    /* The files alone do not make the failure: the program must have stumbled on its
     * datasource (Prisma's P1012/P1013 validation, or its words about the URL). */
    _cleanup_free_ char *want = between(d->both, "the URL must start with the protocol `", "", "`");
    if (!want && !has(d->both, "datasource") && !has(d->both, "P1012") && !has(d->both, "P1013"))
        return false;
    const char *hint = "make the schema's provider match the database that is deployed (then "
                       "regenerate the client and the migrations)";
    static const char *const places[] = {"prisma/schema.prisma", "schema.prisma",
                                         "/app/prisma/schema.prisma"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(places); i++) {
        _cleanup_free_ char *path = places[i][0] == '/'
                                        ? rbx_xstrdup(places[i])
                                        : rbx_xasprintf("%s/%s", o->cwd ? o->cwd : "", places[i]);
        _cleanup_free_ char *text = read_image_file(d->rootfd, path);
        char provider[64], var[128];
        if (!text || !schema_datasource(text, provider, sizeof(provider), var, sizeof(var)))
            continue;
        const char *url = env_of(o, var);
        const char *fam = scheme_family(url);
        const char *have = strcmp(provider, "postgres") == 0 ? "postgresql" : provider;
        if (!fam || strcmp(fam, have) == 0)
            break;
        _cleanup_free_ char *scheme = rbx_xstrndup(url, strcspn(url, ":"));
        return say(d, hint, "%s says provider = \"%s\", but %s is a %s:// URL", path, provider, var,
                   scheme);
    }
    if (!want)
        return false;
    return say(d, hint, "the schema wants a %s URL, but the database URL is another kind", want);
}

static bool rule_table_missing(struct diag *d)
{
    _cleanup_free_ char *table = between(d->both, "The table `", "", "` does not exist");
    if (!table)
        table = between(d->both, "relation \"", "", "\" does not exist");
    if (!table)
        table = between(d->both, "no such table: ", "", "\n");
    if (!table)
        table = between(d->both, "Table '", "", "' doesn't exist");
    if (!table)
        return false;
    return say(d,
               "run the migrations before the server starts (prisma migrate deploy): a step "
               "before this one in the recipe, and in the deploy pipeline; check that the "
               "migration files are in the image",
               "the table %s does not exist: the database schema was never migrated", table);
}

static bool rule_network_disabled(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    if (o->network != RBX_NETWORK_NONE)
        return false;
    static const struct {
        const char *before, *close;
    } lookups[] = {
        {"getaddrinfo ENOTFOUND ", "\n"},
        {"getaddrinfo EAI_AGAIN ", "\n"},
        {"Could not resolve host: ", "\n"},
        {"bad address '", "'"},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(lookups); i++) {
        _cleanup_free_ char *host = between(d->both, lookups[i].before, "", lookups[i].close);
        if (host)
            return say(d,
                       "this is what a task without internet egress sees: give the recipe "
                       "\"network\": \"host\" if it must reach the internet, or remove the "
                       "download from the start",
                       "the lookup of \"%s\" failed: the recipe runs with \"network\": \"none\" "
                       "(loopback only)",
                       host);
    }
    if (has(d->both, "ENETUNREACH") || has(d->both, "Network is unreachable"))
        return say(d,
                   "give the recipe \"network\": \"host\", or a service in the recipe for "
                   "what it connects to",
                   "a connection to another host failed: the recipe runs with \"network\": "
                   "\"none\" (loopback only)");
    return false;
}

static bool rule_database_unreachable(struct diag *d)
{
    _cleanup_free_ char *at = between(d->both, "Can't reach database server at `", "", "`");
    if (!at)
        at = between(d->both, "connect ECONNREFUSED ", "", "\n");
    if (!at &&
        (has(d->both, "could not connect to server") || has(d->both, "Connection refused")) &&
        (has(d->both, "5432") || has(d->both, "3306")))
        at = rbx_xstrdup(has(d->both, "5432") ? "port 5432" : "port 3306");
    if (!at)
        return false;
    const char *hint = "start the database first: a service in the recipe with a tcp ready probe "
                       "on its port; in production, check the host in DATABASE_URL and the "
                       "security group";
    if (has(d->both, "the database system is starting up"))
        return say(d, hint, "the database at %s was still starting up", at);
    return say(d, hint,
               "nothing answered at %s (connection refused): the database is not "
               "running or not ready there",
               at);
}

/* Words that look like variable names but are error codes. */
static bool looks_like_env_name(const char *s, size_t n)
{
    if (n < 3 || n > 64 || !memchr(s, '_', n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    if (isdigit((unsigned char)s[0]) || strncmp(s, "ERR_", 4) == 0 ||
        (n == 16 && strncmp(s, "MODULE_NOT_FOUND", 16) == 0))
        return false;
    return true;
}

static bool rule_env_missing(struct diag *d)
{
    static const char *const cues[] = {"environment", "env var",         "variable",   "not set",
                                       "is required", "is missing",      "missing",    "undefined",
                                       "must be set", "must be defined", "not defined"};
    for (const char *line = d->both; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        _cleanup_free_ char *l = rbx_xstrndup(line, n);
        bool cue = false;
        for (size_t i = 0; i < RBX_ARRAY_SIZE(cues) && !cue; i++)
            cue = has_ci(l, cues[i]);
        for (const char *p = l; cue && *p;) {
            while (*p && !(isupper((unsigned char)*p) || *p == '_'))
                p++;
            const char *s = p;
            while (*p && (isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
                p++;
            size_t len = (size_t)(p - s);
            bool word_start = s == l || !isalnum((unsigned char)s[-1]);
            bool word_end = !isalnum((unsigned char)*p);
            if (len && word_start && word_end && looks_like_env_name(s, len)) {
                _cleanup_free_ char *name = rbx_xstrndup(s, len);
                const char *v = env_of(d->o, name);
                if (!v || !*v)
                    return say(d,
                               "add it to the recipe's \"env\" (or its env_file) and to the "
                               "task definition's environment or secrets",
                               "%s is %s in the environment, and the program says it needs it",
                               name, v ? "empty" : "not set");
            }
            if (!len && *p)
                p++;
        }
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

/* ---- Node's MODULE_NOT_FOUND: where Node looked, and what is there instead ------------------ */

/* "express" -> "express", "@prisma/client/x" -> "@prisma/client", ".prisma/client/default" ->
 * ".prisma". */
static char *package_name(const char *module)
{
    const char *slash = strchr(module, '/');
    if (module[0] == '@' && slash)
        slash = strchr(slash + 1, '/');
    return slash ? rbx_xstrndup(module, (size_t)(slash - module)) : rbx_xstrdup(module);
}

static bool rule_module_not_found(struct diag *d)
{
    _cleanup_free_ char *module = between(d->both, "Cannot find module '", "", "'");
    if (!module)
        module = between(d->both, "Cannot find package '", "", "'");
    if (!module)
        return false;
    _cleanup_free_ char *from = between(d->both, "Require stack:\n- ", "", "\n");
    if (!from)
        from = between(d->both, "' imported from ", "", "\n");

    if (module[0] == '/' || (module[0] == '.' && (module[1] == '/' || module[1] == '.'))) {
        if (from)
            return say(d,
                       "was the build output copied into the final stage (COPY --from=build "
                       ".../dist)?",
                       "\"%s\" (required by %s) is not in the image", module, from);
        return say(d,
                   "was the build output copied into the final stage (COPY --from=build "
                   ".../dist), and is the command's path right?",
                   "the program %s is not in the image", module);
    }

    _cleanup_free_ char *pkg = package_name(module);
    /* Node looks in node_modules of the requiring file's directory and of each parent. */
    _cleanup_free_ char *dir = from ? rbx_xstrdup(from) : rbx_xstrdup(d->o->cwd ? d->o->cwd : "/");
    if (from) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
    }
    char tried[1024] = "";
    size_t tlen = 0;
    for (;;) {
        size_t dl = strlen(dir);
        bool in_nm = dl >= 13 && strcmp(dir + dl - 13, "/node_modules") == 0;
        if (!in_nm) {
            _cleanup_free_ char *cand = rbx_xasprintf("%s/node_modules/%s", dir, pkg);
            char target[RBX_PATH_MAX];
            enum lookup l = look(d->rootfd, cand, target, sizeof(target));
            if (l == LOOK_BROKEN_LINK)
                return say(d,
                           "the symlinks point into a .pnpm store the final stage did not "
                           "copy: copy real files (pnpm deploy, or node-linker=hoisted), or "
                           "copy the .pnpm store too",
                           "\"%s\" is required by %s, but %s is a broken symlink to %s (its "
                           "target is not in the image)",
                           module, from ? from : "the program", cand, target);
            if (tlen < sizeof(tried) - 1)
                tlen += (size_t)snprintf(tried + tlen, sizeof(tried) - tlen, "%s%s/node_modules",
                                         tlen ? ", " : "", dl ? dir : "");
        }
        if (!dl)
            break;
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    if (tlen >= sizeof(tried) - 1)
        snprintf(tried + sizeof(tried) - 5, 5, "...");

    /* Is it somewhere else in the image? ".prisma/client" generated inside @prisma/client. */
    const char *rest = module + strlen(pkg);
    _cleanup_free_ char *sub = NULL;
    if (*rest == '/') {
        sub = rbx_xstrdup(rest + 1);
        sub[strcspn(sub, "/")] = '\0';
    }
    const char *pkg_base = strrchr(pkg, '/') ? strrchr(pkg, '/') + 1 : pkg;
    char where[RBX_PATH_MAX];
    if (find_in_image(d->rootfd, pkg_base, sub, false, where, sizeof(where))) {
        bool generated = pkg[0] == '.';
        return say(d,
                   generated ? "the generated client must sit at node_modules/"
                               ".prisma/client "
                               "beside @prisma/client: generate it in the final stage, or copy it "
                               "there"
                             : "copy it to node_modules on the resolution path in the final "
                               "stage",
                   "\"%s\" is required by %s; the image has %s, but Node looks only in %s", module,
                   from ? from : "the program", where, tried);
    }
    return say(d,
               "it is a runtime dependency: move it from devDependencies to dependencies, or "
               "stop pruning it from the final stage",
               "\"%s\" is required by %s but is in none of %s: it was pruned or never installed",
               module, from ? from : "the program", tried);
}

static int probe_port(const struct rbx_probe *p)
{
    if (p->kind == RBX_PROBE_TCP)
        return p->port;
    if (p->kind != RBX_PROBE_HTTP || !p->url)
        return 0;
    const char *h = strstr(p->url, "://");
    h = h ? h + 3 : p->url;
    const char *colon = strchr(h, ':'), *slash = strchr(h, '/');
    if (colon && (!slash || colon < slash))
        return atoi(colon + 1);
    return strncmp(p->url, "https", 5) == 0 ? 443 : 80;
}

static bool rule_port_not_listening(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    if (!o->has_ready || o->ready.ready || o->ready.ever_connected || o->ready.target_exited ||
        !o->proc || o->proc->ready.kind == RBX_PROBE_EXEC)
        return false;
    int port = probe_port(&o->proc->ready);
    char ports[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < o->n_listening && len < sizeof(ports) - 8; i++)
        len += (size_t)snprintf(ports + len, sizeof(ports) - len, "%s%d", i ? ", " : "",
                                o->listening[i]);
    unsigned long long secs = (unsigned long long)(o->ready.elapsed_ms / 1000);
    if (o->listening_known && o->n_listening)
        return say(d,
                   "the server listens on another port than the probe (check PORT and the "
                   "port the task definition maps)",
                   "nothing listened on port %d within %llu s; the pod listens on %s", port, secs,
                   ports);
    return say(d,
               "it never opened a listening socket: is it a server at all, is it still "
               "starting (raise the ready timeout), or is it listening on a unix socket?",
               "nothing listened on port %d within %llu s, nor on any other TCP port", port, secs);
}

static bool rule_http_status(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    for (size_t i = 0; i < o->n_http; i++) {
        const struct rbx_http_response *r = &o->http[i].resp;
        if (r->status >= 500) {
            _cleanup_free_ char *body = last_line(r->body);
            return say(d, "the server's own log (stderr above) says why", "GET %s answered %ld%s%s",
                       o->proc->expect.http[i].get, r->status, body ? ": " : "", body ? body : "");
        }
        if (r->status == 0)
            return say(d, "is the server still running and listening there?",
                       "GET %s got no answer (%s)", o->proc->expect.http[i].get, r->error);
    }
    if (o->has_ready && !o->ready.ready && o->ready.last_status)
        return say(d, "the readiness URL answers, but not with success: check the health route",
                   "the ready probe got HTTP %ld, never success, within %llu s",
                   o->ready.last_status, (unsigned long long)(o->ready.elapsed_ms / 1000));
    return false;
}

static bool rule_signal(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    if (!o->ended || !o->res.signal || o->res.stop_reason == RBX_STOP_REQUESTED)
        return false;
    const char *abbrev = sigabbrev_np(o->res.signal);
    const char *hint =
        o->res.signal == SIGKILL
            ? "something sent SIGKILL: a memory limit without OOM accounting, or "
              "a supervisor that gave up on it"
        : o->res.signal == SIGSEGV || o->res.signal == SIGBUS || o->res.signal == SIGABRT
            ? "it crashed: a native module built for another libc or CPU is a "
              "usual cause in images"
            : "who sends it that signal? (a stop, a health check, a supervisor)";
    return say(d, hint, "killed by SIG%s", abbrev ? abbrev : "?");
}

static bool rule_early_exit(struct diag *d)
{
    struct rbx_outcome *o = d->o;
    if (!o->ended)
        return false;
    _cleanup_free_ char *last = last_line(d->err[0] ? d->err : d->out);
    const char *hint = "read its output above: it says why it stopped";
    if (o->res.exit_code == 0 && (o->exited_early || (o->has_ready && !o->ready.ready)))
        return say(d,
                   "a server must keep running: does its start script run it in the "
                   "background, or exit after setup?",
                   "it exited 0 before it was ready%s%s", last ? "; last line: " : "",
                   last ? last : "");
    if (o->res.exit_code == 0)
        return false;
    if (last)
        return say(d, hint, "it exited %d; its last line: \"%s\"", o->res.exit_code, last);
    return say(d, hint, "it exited %d without any output", o->res.exit_code);
}

static bool rule_error(struct diag *d)
{
    if (!d->o->error)
        return false;
    return say(d,
               "the sandbox could not start it; `reprobox run` of the same image and command "
               "shows the same error with more context",
               "%s", d->o->error->message);
}

/* Rule order is the order of certainty: what the kernel or the sandbox says for sure first, then
 * what the program's own words name, then what the probes saw. */
static const struct rule {
    const char *kind;
    bool (*fn)(struct diag *d);
} rules[] = {
    {"oom-killed", rule_oom},
    {"command-not-found", rule_command_not_found},
    {"not-executable", rule_not_executable},
    {"exec-format", rule_exec_format},
    {"hang-no-output", rule_hang},
    {"timeout", rule_timeout},
    {"workdir-missing", rule_workdir},
    {"provider-mismatch", rule_provider_mismatch},
    {"table-missing", rule_table_missing},
    {"network-disabled", rule_network_disabled},
    {"database-unreachable", rule_database_unreachable},
    {"env-missing", rule_env_missing},
    {"module-not-found", rule_module_not_found},
    {"port-not-listening", rule_port_not_listening},
    {"http-status", rule_http_status},
    {"killed-by-signal", rule_signal},
    {"exit-status", rule_early_exit},
    {"start-failed", rule_error},
};

const char *const rbx_diagnosis_kinds[] = {
    "oom-killed",
    "command-not-found",
    "not-executable",
    "exec-format",
    "hang-no-output",
    "timeout",
    "workdir-missing",
    "provider-mismatch",
    "table-missing",
    "network-disabled",
    "database-unreachable",
    "env-missing",
    "module-not-found",
    "port-not-listening",
    "http-status",
    "killed-by-signal",
    "exit-status",
    "start-failed",
    "not-ready",
    NULL,
};

bool rbx_diagnosis_kind_valid(const char *kind)
{
    for (size_t i = 0; rbx_diagnosis_kinds[i]; i++)
        if (strcmp(rbx_diagnosis_kinds[i], kind) == 0)
            return true;
    return false;
}

void rbx_diagnose(struct rbx_outcome *o, int rootfd)
{
    o->diag_kind = NULL;
    free(o->diag_message);
    free(o->diag_hint);
    o->diag_message = o->diag_hint = NULL;
    if (!rbx_outcome_failed(o))
        return;
    struct diag d = {.o = o, .rootfd = rootfd};
    d.out = o->res.stdout_tail ? o->res.stdout_tail : "";
    d.err = o->res.stderr_tail ? o->res.stderr_tail : "";
    d.both = rbx_xasprintf("%s\n%s", d.err, d.out);
    for (size_t i = 0; i < RBX_ARRAY_SIZE(rules); i++) {
        if (rules[i].fn(&d)) {
            o->diag_kind = rules[i].kind;
            break;
        }
    }
    if (!o->diag_kind) {
        o->diag_kind = "not-ready";
        say(&d, "read the output above",
            o->has_ready ? "it was not ready within %llu s" : "it failed (%llu s)",
            (unsigned long long)(o->ready.elapsed_ms / 1000));
    }
    free(d.both);
}
