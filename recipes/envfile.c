/* envfile.c — docker's --env-file format: "K=V", "K" (taken from the caller), comments. */
#include "recipes/recipes.h"

#include <fcntl.h>
#include <string.h>

int rbx_env_file_parse(const char *path, char *const *caller_env, char ***env, struct rbx_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = rbx_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len, err);
    if (r < 0)
        return rbx_error_wrap(err, "env file");
    if (memchr(buf, '\0', len))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: contains a NUL byte", path);
    unsigned lineno = 0;
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        size_t klen = eq ? (size_t)(eq - p) : strlen(p);
        if (klen == 0 || memchr(p, ' ', klen) || memchr(p, '\t', klen))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s:%u: variable name \"%.*s\" is empty or has white space", path,
                                 lineno, (int)klen, p);
        if (eq) {
            rbx_env_set(env, p);
        } else {
            const char *v = rbx_env_get(caller_env, p);
            if (v) {
                _cleanup_free_ char *kv = rbx_xasprintf("%s=%s", p, v);
                rbx_env_set(env, kv);
            }
        }
    }
    return 0;
}
