/* json.c — strict JSON input (depth-capped, duplicate keys refused, located errors) and
 * canonical output, over jansson. */
#include "common/common.h"

#include <string.h>

/* jansson's own recursion cap is a compile-time 2048; ours is checked before parsing so a
 * 100 000-deep document costs one linear scan and gives a clear error. */
static int check_depth(const char *buf, size_t len, const char *what, struct rbx_error **err)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > RBX_JSON_MAX_DEPTH)
                return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG,
                                     "%s: JSON nested deeper than %d levels", what,
                                     RBX_JSON_MAX_DEPTH);
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

json_t *rbx_json_loadb(const char *buf, size_t len, const char *what, struct rbx_error **err)
{
    json_error_t jerr;
    if (check_depth(buf, len, what, err) < 0)
        return NULL;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j) {
        rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s:%d:%d: %s", what, jerr.line, jerr.column,
                      jerr.text);
        return NULL;
    }
    return j;
}

char *rbx_json_dump_canonical(const json_t *j)
{
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

int rbx_json_get_string(const json_t *obj, const char *key, const char *what, const char **out,
                        struct rbx_error **err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s.%s: expected a string", what, key);
    *out = json_string_value(v);
    return 0;
}

int rbx_json_get_strv(const json_t *obj, const char *key, const char *what, char ***out,
                      struct rbx_error **err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s.%s: expected an array of strings",
                             what, key);
    _cleanup_strv_ char **res = rbx_xcalloc(json_array_size(v) + 1, sizeof(char *));
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s.%s[%zu]: expected a string",
                                 what, key, i);
        res[i] = rbx_xstrdup(json_string_value(item));
    }
    *out = TAKE_PTR(res);
    return 0;
}
