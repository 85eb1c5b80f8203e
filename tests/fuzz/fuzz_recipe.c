/* fuzz_recipe.c — libFuzzer target for recipes/: the input is loaded as a recipe file; a recipe
 * that loads is reported (summary and JSON) as if replayed with nothing run. */
#include "recipes/recipes.h"

static char *env[] = {"RBX_FIXTURES=/fx", "EMPTY=", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rbx_recipe *r = NULL;
    struct rbx_error *err = NULL;
    if (rbx_recipe_parse((const char *)data, size, "/fuzz/recipe.json", env, &r, &err) == 0) {
        struct rbx_replay rep = {.recipe = r, .n_outcomes = r->n_services + r->n_steps};
        rep.outcomes = rbx_xcalloc(rep.n_outcomes + 1, sizeof(*rep.outcomes));
        for (size_t i = 0; i < rep.n_outcomes; i++) {
            struct rbx_outcome *o = &rep.outcomes[i];
            o->is_service = i < r->n_services;
            o->proc = o->is_service ? &r->services[i] : &r->steps[i - r->n_services];
            rbx_outcome_describe(o);
            rbx_diagnose(o, -1);
            rbx_expect_check(o, -1);
        }
        free(rbx_replay_summary(&rep));
        json_decref(rbx_replay_report(&rep));
        rbx_replay_clear(&rep);
    }
    rbx_error_free(err);
    rbx_recipe_free(r);
    return 0;
}
