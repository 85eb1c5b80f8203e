/* schema_check.h — a small JSON Schema (draft 2020-12) checker for the keywords
 * docs/recipe.schema.json uses, so tests can hold the schema and the validator to one answer. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

/* true when instance is valid against schema (root is the whole schema document, for $ref).
 * On false, why (at least 256 bytes) says where. Unknown keywords fail the check, so the schema
 * can not drift into what this checker ignores. */
bool schema_valid(const json_t *root, const json_t *instance, char *why, size_t whylen);
