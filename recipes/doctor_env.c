/* doctor_env.c — the environment a process gets against what it needs: variables a recipe marks
 * required, and a Prisma schema's datasource (its provider against the URL's scheme, the
 * migrations made for another provider, or none at all). Values are never printed whole: a
 * database URL shows its scheme and host only. */
#include "recipes/doctor-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static void required_vars(struct rbx_doctor *d)
{
    for (size_t i = 0; d->proc->requires_env && d->proc->requires_env[i]; i++) {
        const char *name = d->proc->requires_env[i];
        const char *v = rbx_env_get(d->proc->env, name);
        if (!v) {
            struct rbx_finding *f = rbx_doctor_add(
                d, "env-missing", RBX_SEVERITY_ERROR,
                "set it in the recipe's env or env_file (as the task definition's environment "
                "or secrets would), or in the image's ENV",
                "%s is required but set by neither the image nor the recipe", name);
            rbx_finding_evidence(f, "requires_env: %s", name);
        } else if (!*v) {
            rbx_doctor_add(d, "env-empty", RBX_SEVERITY_WARNING,
                           "give it a value: most programs treat an empty variable as unset",
                           "%s is required and set, but empty", name);
        }
    }
}

/* ---- a Prisma schema ----------------------------------------------------------------------------
 */

struct datasource {
    char provider[64];
    unsigned provider_line;
    char url_env[128]; /* url = env("X") */
    char *url;         /* url = "literal" */
    unsigned url_line;
};

/* `key = "value"` or `key = env("NAME")` in a line of the block. */
static bool assignment(const char *line, const char *key, char *value, size_t vlen, bool *is_env)
{
    size_t kl = strlen(key);
    while (*line == ' ' || *line == '\t')
        line++;
    if (strncmp(line, key, kl) != 0 || (line[kl] != ' ' && line[kl] != '\t' && line[kl] != '='))
        return false;
    const char *p = line + kl;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p++ != '=')
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    *is_env = strncmp(p, "env(", 4) == 0;
    if (*is_env) {
        p += 4;
        while (*p == ' ')
            p++;
    }
    if (*p != '"')
        return false;
    const char *end = strchr(p + 1, '"');
    if (!end || (size_t)(end - p - 1) >= vlen)
        return false;
    memcpy(value, p + 1, (size_t)(end - p - 1));
    value[end - p - 1] = '\0';
    return true;
}

/* The first `datasource` block: its provider and url. Comments (//) are skipped. */
static bool parse_datasource(const char *text, struct datasource *ds)
{
    memset(ds, 0, sizeof(*ds));
    bool in_block = false;
    unsigned lineno = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        _cleanup_free_ char *l = rbx_xstrndup(line, n);
        char *c = strstr(l, "//");
        if (c)
            *c = '\0';
        const char *t = l;
        while (*t == ' ' || *t == '\t')
            t++;
        if (!in_block) {
            if (strncmp(t, "datasource", 10) == 0 && (t[10] == ' ' || t[10] == '\t') &&
                strchr(t, '{'))
                in_block = true;
        } else if (*t == '}') {
            return ds->provider[0] != '\0';
        } else {
            char v[1024];
            bool env = false;
            if (!ds->provider[0] && assignment(t, "provider", v, sizeof(v), &env) && !env &&
                strlen(v) < sizeof(ds->provider)) {
                strcpy(ds->provider, v);
                ds->provider_line = lineno;
            } else if (!ds->url_env[0] && !ds->url && assignment(t, "url", v, sizeof(v), &env)) {
                if (env && strlen(v) < sizeof(ds->url_env))
                    strcpy(ds->url_env, v);
                else if (!env)
                    ds->url = rbx_xstrdup(v);
                ds->url_line = lineno;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return in_block && ds->provider[0];
}

/* The provider a URL scheme goes with; NULL when unknown. */
static const char *scheme_provider(const char *url)
{
    static const struct {
        const char *prefix, *provider;
    } t[] = {
        {"postgresql://", "postgresql"}, {"postgres://", "postgresql"}, {"mysql://", "mysql"},
        {"mariadb://", "mysql"},         {"sqlserver://", "sqlserver"}, {"mongodb://", "mongodb"},
        {"mongodb+srv://", "mongodb"},   {"file:", "sqlite"},
    };
    for (size_t i = 0; url && i < RBX_ARRAY_SIZE(t); i++)
        if (strncasecmp(url, t[i].prefix, strlen(t[i].prefix)) == 0)
            return t[i].provider;
    return NULL;
}

static const char *family(const char *provider)
{
    if (strcmp(provider, "postgres") == 0 || strcmp(provider, "cockroachdb") == 0)
        return "postgresql";
    return provider;
}

/* "postgresql://user:secret@db:5432/app" shown as "postgresql://…@db:5432/app". */
static char *redact(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    if (!scheme || !at)
        return rbx_xasprintf(
            "%.*s…", (int)(scheme ? (size_t)(scheme - url) + 3 : strcspn(url, ":") + 1), url);
    return rbx_xasprintf("%.*s…%s", (int)(scheme - url + 3), url, at);
}

static const char *lock_provider(const char *text, char *out, size_t len)
{
    for (const char *line = text; line && *line;) {
        bool env = false;
        if (assignment(line, "provider", out, len, &env) && !env)
            return out;
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return NULL;
}

/* Any migration: a directory with a migration.sql. */
static bool has_migrations(struct rbx_doctor *d, const char *dir)
{
    int fd = rbx_open_in_root(d->rootfd, dir, O_RDONLY | O_DIRECTORY, 0, 0, NULL);
    if (fd < 0)
        return false;
    DIR *dd = fdopendir(fd);
    if (!dd) {
        close(fd);
        return false;
    }
    bool any = false;
    struct dirent *de;
    while (!any && (de = readdir(dd))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *p = rbx_xasprintf("%s/%s/migration.sql", dir, de->d_name);
        _cleanup_close_ int m = rbx_open_in_root(d->rootfd, p, O_PATH, 0, 0, NULL);
        any = m >= 0;
    }
    closedir(dd);
    return any;
}

static void check_schema(struct rbx_doctor *d, const char *path, const char *text)
{
    struct datasource ds;
    if (!parse_datasource(text, &ds))
        return;
    const char *url = ds.url_env[0] ? rbx_env_get(d->proc->env, ds.url_env) : ds.url;
    const char *want = url && *url ? scheme_provider(url) : NULL;
    const char *have = family(ds.provider);
    if (want && strcmp(want, have) != 0) {
        _cleanup_free_ char *shown = redact(url);
        struct rbx_finding *f = rbx_doctor_add(
            d, "provider-mismatch", RBX_SEVERITY_ERROR,
            "make the schema's provider match the database that is deployed, then regenerate "
            "the client and the migrations",
            "%s says provider = \"%s\", but %s is a %s URL: Prisma refuses it (P1012)", path,
            ds.provider, ds.url_env[0] ? ds.url_env : "its url", want);
        rbx_finding_evidence(f, "%s:%u: provider = \"%s\"", path, ds.provider_line, ds.provider);
        if (ds.url_env[0])
            rbx_finding_evidence(f, "%s=%s", ds.url_env, shown);
    }
    _cleanup_free_ char *dir = rbx_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    _cleanup_free_ char *migrations = rbx_xasprintf("%s/migrations", dir);
    _cleanup_free_ char *lockp = rbx_xasprintf("%s/migration_lock.toml", migrations);
    _cleanup_free_ char *lock = NULL;
    char lp[64];
    if (rbx_doctor_read(d, lockp, 1 << 16, &lock, NULL) == 0 &&
        lock_provider(lock, lp, sizeof(lp)) && strcmp(family(lp), have) != 0) {
        struct rbx_finding *f = rbx_doctor_add(
            d, "provider-mismatch", RBX_SEVERITY_ERROR,
            "the migrations were made for another database: make them again for this provider "
            "(prisma migrate dev)",
            "the migrations in %s were made for %s, but %s says provider = \"%s\"", migrations, lp,
            path, ds.provider);
        rbx_finding_evidence(f, "%s: provider = \"%s\"", lockp, lp);
    }
    if (!has_migrations(d, migrations)) {
        struct rbx_finding *f = rbx_doctor_add(
            d, "migrations-missing", d->migrate_deploy ? RBX_SEVERITY_ERROR : RBX_SEVERITY_WARNING,
            "create the migrations (prisma migrate dev), commit them and copy prisma/migrations "
            "into the image",
            "%s has no migrations next to it: `prisma migrate deploy` applies nothing and the "
            "tables are never made",
            path);
        _cleanup_close_ int mfd = rbx_open_in_root(d->rootfd, migrations, O_PATH, 0, 0, NULL);
        rbx_finding_evidence(f, mfd < 0 ? "%s: not in the image" : "%s: no */migration.sql in it",
                             migrations);
    }
    free(ds.url);
}

/* Where Prisma looks for its schema: package.json "prisma.schema", then prisma/schema.prisma and
 * schema.prisma, from the working directory (and the app's directory above it). */
static void prisma_schemas(struct rbx_doctor *d)
{
    const char *cwd = d->proc->cwd && *d->proc->cwd ? d->proc->cwd : "/";
    _cleanup_free_ char *dir = rbx_xstrdup(cwd);
    for (unsigned up = 0; up < 8; up++) {
        const char *base = strcmp(dir, "/") ? dir : "";
        _cleanup_free_ char *pkgp = rbx_xasprintf("%s/package.json", base);
        _cleanup_free_ char *pkg = NULL;
        size_t len = 0;
        bool have_pkg = rbx_doctor_read(d, pkgp, 1 << 20, &pkg, &len) == 0;
        char *cands[3] = {NULL, NULL, NULL};
        if (have_pkg) {
            _cleanup_json_ json_t *j = json_loadb(pkg, len, 0, NULL);
            const char *s =
                json_string_value(json_object_get(json_object_get(j, "prisma"), "schema"));
            if (s && *s)
                cands[0] = s[0] == '/' ? rbx_xstrdup(s) : rbx_xasprintf("%s/%s", base, s);
        }
        cands[1] = rbx_xasprintf("%s/prisma/schema.prisma", base);
        cands[2] = rbx_xasprintf("%s/schema.prisma", base);
        bool done = false;
        for (size_t i = 0; i < 3; i++) {
            _cleanup_free_ char *text = NULL;
            if (!done && cands[i] && rbx_doctor_read(d, cands[i], 1 << 20, &text, NULL) == 0) {
                _cleanup_free_ char *key = rbx_xasprintf("schema:%s", cands[i]);
                if (!rbx_doctor_seen(d, key, false))
                    check_schema(d, cands[i], text);
                done = true;
            }
            free(cands[i]);
        }
        /* the app's own directory is as far as Prisma looks */
        if (done || have_pkg || strcmp(dir, "/") == 0)
            return;
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            strcpy(dir, "/");
        else
            *slash = '\0';
    }
}

void rbx_doctor_env(struct rbx_doctor *d)
{
    required_vars(d);
    prisma_schemas(d);
}
