/* schema_check.c — the subset of JSON Schema draft 2020-12 that docs/recipe.schema.json uses:
 * type, properties, required, additionalProperties, propertyNames, items, prefixItems,
 * minItems, maxItems, enum, const, minimum, maximum, exclusiveMinimum, minLength, maxLength, pattern
 * (as a POSIX extended expression, which the schema's patterns are both), oneOf, not,
 * dependentSchemas, $ref to #/$defs/..., and the annotations. */
#include "schema_check.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

struct sc {
    const json_t *root;
    char *why;
    size_t whylen;
    char path[256];
};

static bool no(struct sc *c, const char *what)
{
    if (!c->why[0])
        snprintf(c->why, c->whylen, "%s: %s", c->path[0] ? c->path : "(top)", what);
    return false;
}

static bool check(struct sc *c, const json_t *s, const json_t *v);

static bool type_is(const char *t, const json_t *v)
{
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "integer")) return json_is_integer(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    return false;
}

static bool sub(struct sc *c, const json_t *s, const json_t *v, const char *seg)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof(c->path) - old, "%s", seg);
    bool ok = check(c, s, v);
    c->path[old] = '\0';
    return ok;
}

/* Try a subschema without keeping its message. */
static bool quiet(struct sc *c, const json_t *s, const json_t *v)
{
    char saved[512];
    snprintf(saved, sizeof(saved), "%s", c->why);
    c->why[0] = '\0';
    bool ok = check(c, s, v);
    snprintf(c->why, c->whylen, "%s", saved);
    return ok;
}

static double num(const json_t *v) { return json_number_value(v); }

static bool check(struct sc *c, const json_t *s, const json_t *v)
{
    if (json_is_true(s))
        return true;
    const char *key;
    json_t *kw;
    json_object_foreach((json_t *)s, key, kw) {
        if (!strcmp(key, "$schema") || !strcmp(key, "title") || !strcmp(key, "description") ||
            !strcmp(key, "$defs"))
            continue;
        if (!strcmp(key, "$ref")) {
            const char *ref = json_string_value(kw);
            if (strncmp(ref, "#/$defs/", 8) != 0)
                return no(c, "unsupported $ref");
            const json_t *t = json_object_get(json_object_get(c->root, "$defs"), ref + 8);
            if (!t)
                return no(c, "dangling $ref");
            if (!check(c, t, v))
                return false;
        } else if (!strcmp(key, "type")) {
            if (!type_is(json_string_value(kw), v))
                return no(c, "wrong type");
        } else if (!strcmp(key, "enum")) {
            bool in = false;
            size_t i;
            json_t *e;
            json_array_foreach(kw, i, e) in = in || json_equal(e, v);
            if (!in)
                return no(c, "not in enum");
        } else if (!strcmp(key, "const")) {
            if (!json_equal(kw, v))
                return no(c, "not the const");
        } else if (!strcmp(key, "minimum")) {
            if (json_is_number(v) && num(v) < num(kw))
                return no(c, "below minimum");
        } else if (!strcmp(key, "maximum")) {
            if (json_is_number(v) && num(v) > num(kw))
                return no(c, "above maximum");
        } else if (!strcmp(key, "exclusiveMinimum")) {
            if (json_is_number(v) && num(v) <= num(kw))
                return no(c, "not above exclusiveMinimum");
        } else if (!strcmp(key, "minLength")) {
            if (json_is_string(v) && json_string_length(v) < (size_t)json_integer_value(kw))
                return no(c, "too short");
        } else if (!strcmp(key, "maxLength")) {
            if (json_is_string(v) && json_string_length(v) > (size_t)json_integer_value(kw))
                return no(c, "too long");
        } else if (!strcmp(key, "pattern")) {
            if (json_is_string(v)) {
                regex_t re;
                if (regcomp(&re, json_string_value(kw), REG_EXTENDED | REG_NOSUB) != 0)
                    return no(c, "bad pattern in the schema");
                bool m = regexec(&re, json_string_value(v), 0, NULL, 0) == 0;
                regfree(&re);
                if (!m)
                    return no(c, "does not match pattern");
            }
        } else if (!strcmp(key, "minItems")) {
            if (json_is_array(v) && json_array_size(v) < (size_t)json_integer_value(kw))
                return no(c, "too few items");
        } else if (!strcmp(key, "maxItems")) {
            if (json_is_array(v) && json_array_size(v) > (size_t)json_integer_value(kw))
                return no(c, "too many items");
        } else if (!strcmp(key, "items")) {
            if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) {
                    char seg[32];
                    snprintf(seg, sizeof(seg), "[%zu]", i);
                    if (!sub(c, kw, e, seg))
                        return false;
                }
            }
        } else if (!strcmp(key, "prefixItems")) {
            if (json_is_array(v)) {
                for (size_t i = 0; i < json_array_size(kw) && i < json_array_size(v); i++) {
                    char seg[32];
                    snprintf(seg, sizeof(seg), "[%zu]", i);
                    if (!sub(c, json_array_get(kw, i), json_array_get(v, i), seg))
                        return false;
                }
            }
        } else if (!strcmp(key, "required")) {
            if (json_is_object(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(kw, i, e) {
                    if (!json_object_get(v, json_string_value(e)))
                        return no(c, "a required property is missing");
                }
            }
        } else if (!strcmp(key, "properties")) {
            if (json_is_object(v)) {
                const char *k;
                json_t *ps;
                json_object_foreach(kw, k, ps) {
                    json_t *pv = json_object_get(v, k);
                    char seg[128];
                    snprintf(seg, sizeof(seg), ".%s", k);
                    if (pv && !sub(c, ps, pv, seg))
                        return false;
                }
            }
        } else if (!strcmp(key, "additionalProperties")) {
            if (json_is_object(v)) {
                const json_t *props = json_object_get(s, "properties");
                const char *k;
                json_t *pv;
                json_object_foreach((json_t *)v, k, pv) {
                    if (props && json_object_get(props, k))
                        continue;
                    char seg[128];
                    snprintf(seg, sizeof(seg), ".%s", k);
                    if (json_is_false(kw)) {
                        size_t old = strlen(c->path);
                        snprintf(c->path + old, sizeof(c->path) - old, "%s", seg);
                        no(c, "unknown property");
                        c->path[old] = '\0';
                        return false;
                    }
                    if (!sub(c, kw, pv, seg))
                        return false;
                }
            }
        } else if (!strcmp(key, "propertyNames")) {
            if (json_is_object(v)) {
                const char *k;
                json_t *pv;
                json_object_foreach((json_t *)v, k, pv) {
                    json_t *name = json_string(k);
                    bool ok = check(c, kw, name);
                    json_decref(name);
                    if (!ok)
                        return false;
                }
            }
        } else if (!strcmp(key, "dependentSchemas")) {
            if (json_is_object(v)) {
                const char *k;
                json_t *ds;
                json_object_foreach(kw, k, ds) {
                    if (json_object_get(v, k) && !check(c, ds, v))
                        return false;
                }
            }
        } else if (!strcmp(key, "oneOf")) {
            size_t i, n = 0;
            json_t *e;
            json_array_foreach(kw, i, e) n += quiet(c, e, v);
            if (n != 1)
                return no(c, n ? "more than one of oneOf" : "none of oneOf");
        } else if (!strcmp(key, "not")) {
            if (quiet(c, kw, v))
                return no(c, "matches a forbidden combination (not)");
        } else {
            return no(c, "a keyword this checker does not know");
        }
    }
    return true;
}

bool schema_valid(const json_t *root, const json_t *instance, char *why, size_t whylen)
{
    struct sc c = {.root = root, .why = why, .whylen = whylen};
    why[0] = '\0';
    return check(&c, root, instance);
}
