/* outcome.c — what happened to one service or step, told as facts: whether it failed and a few
 * words on how it ended ("exit 127", "not ready after 20 s"), before any diagnosis. */
#include "recipes/recipes.h"

#include <signal.h>
#include <string.h>

void rbx_http_response_clear(struct rbx_http_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

void rbx_outcome_clear(struct rbx_outcome *o)
{
    rbx_strv_free(o->argv);
    rbx_strv_free(o->env);
    free(o->cwd);
    free(o->user);
    rbx_error_free(o->error);
    rbx_result_clear(&o->res);
    for (size_t i = 0; i < o->n_http; i++) {
        free(o->http[i].url);
        rbx_http_response_clear(&o->http[i].resp);
    }
    free(o->http);
    free(o->diag_message);
    free(o->diag_hint);
    free(o->outcome_text);
    free(o->unmet);
    free(o->output_at_failure);
    memset(o, 0, sizeof(*o));
}

static bool http_failed(const struct rbx_outcome *o)
{
    for (size_t i = 0; i < o->n_http; i++)
        if (o->http[i].resp.status == 0 || o->http[i].resp.status >= 500)
            return true;
    return false;
}

bool rbx_outcome_failed(const struct rbx_outcome *o)
{
    if (o->state == RBX_PROC_NOT_RUN)
        return false;
    if (o->error)
        return true;
    if (o->has_ready && !o->ready.ready)
        return true;
    if (http_failed(o))
        return true;
    bool detached = o->is_service || (o->proc && o->proc->detach);
    if (detached)
        return o->exited_early;
    if (!o->ended)
        return false;
    return o->res.exit_code != 0 || o->res.signal || o->res.stop_reason != RBX_STOP_NONE ||
           o->res.oom_killed;
}

static char *seconds(uint64_t ms)
{
    if (ms < 10000 && ms % 1000)
        return rbx_xasprintf("%.1f s", (double)ms / 1000.0);
    return rbx_xasprintf("%llu s", (unsigned long long)(ms / 1000));
}

static char *ended_text(const struct rbx_outcome *o)
{
    const struct rbx_result *r = &o->res;
    if (r->oom_killed)
        return rbx_xstrdup("killed for using too much memory");
    if (r->stop_reason == RBX_STOP_IDLE) {
        _cleanup_free_ char *s = seconds(o->proc ? o->proc->idle_timeout_ms : 0);
        return rbx_xasprintf("no output for %s, stopped", s);
    }
    if (r->stop_reason == RBX_STOP_TIMEOUT) {
        _cleanup_free_ char *s = seconds(o->proc ? o->proc->timeout_ms : 0);
        return rbx_xasprintf("timed out after %s", s);
    }
    if (r->signal) {
        const char *a = sigabbrev_np(r->signal);
        return a ? rbx_xasprintf("killed by SIG%s", a)
                 : rbx_xasprintf("killed by signal %d", r->signal);
    }
    return rbx_xasprintf("exit %d", r->exit_code);
}

void rbx_outcome_describe(struct rbx_outcome *o)
{
    free(o->outcome_text);
    o->outcome_text = NULL;
    bool detached = o->is_service || (o->proc && o->proc->detach);
    if (o->state == RBX_PROC_NOT_RUN) {
        o->outcome_text = rbx_xstrdup("not run");
        return;
    }
    if (o->error) {
        int code = o->res.exit_code;
        if (!code)
            code = o->error->kind == RBX_ERR_EXEC_NOT_FOUND ? 127
                   : o->error->kind == RBX_ERR_EXEC_DENIED || o->error->kind == RBX_ERR_EXEC_FORMAT
                       ? 126
                       : 125;
        o->outcome_text = rbx_xasprintf("exit %d", code);
        return;
    }
    if (detached && o->has_ready && !o->ready.ready) {
        _cleanup_free_ char *s = seconds(o->ready.elapsed_ms);
        if (o->ready.target_exited && o->ended) {
            _cleanup_free_ char *e = ended_text(o);
            o->outcome_text = rbx_xasprintf("%s before it was ready", e);
        } else {
            o->outcome_text = rbx_xasprintf("not ready after %s", s);
        }
        return;
    }
    if (detached && o->exited_early && o->ended) {
        _cleanup_free_ char *e = ended_text(o);
        o->outcome_text = rbx_xasprintf("%s while it should have kept running", e);
        return;
    }
    for (size_t i = 0; i < o->n_http; i++) {
        const struct rbx_http_response *r = &o->http[i].resp;
        const char *get = o->proc->expect.http[i].get;
        if (r->status >= 500) {
            o->outcome_text = rbx_xasprintf("GET %s answered %ld", get, r->status);
            return;
        }
        if (r->status == 0) {
            o->outcome_text = rbx_xasprintf("GET %s: no answer", get);
            return;
        }
    }
    if (detached) {
        if (o->has_ready) {
            _cleanup_free_ char *s = seconds(o->ready.elapsed_ms);
            o->outcome_text = rbx_xasprintf("ready after %s", s);
        } else {
            o->outcome_text = rbx_xstrdup("running");
        }
        return;
    }
    o->outcome_text = o->ended ? ended_text(o) : rbx_xstrdup("running");
}
