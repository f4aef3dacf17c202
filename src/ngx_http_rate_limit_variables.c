
/*
 * ngx_http_rate_limit_module: $rate_limit_* variables.
 *
 * Not cacheable, and read from the main request's decision, so that an
 * error_page target, a subrequest or the access log sees what was decided.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"


typedef enum {
    NGX_HTTP_RATE_LIMIT_VAR_STATUS = 0,
    NGX_HTTP_RATE_LIMIT_VAR_REMAINING,
    NGX_HTTP_RATE_LIMIT_VAR_RESET,
    NGX_HTTP_RATE_LIMIT_VAR_RETRY_AFTER,
    NGX_HTTP_RATE_LIMIT_VAR_ZONE,
    NGX_HTTP_RATE_LIMIT_VAR_DECIDED_BY,
    NGX_HTTP_RATE_LIMIT_VAR_DELAY
} ngx_http_rate_limit_var_e;


static ngx_int_t ngx_http_rate_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_rate_limit_vars[] = {

    { ngx_string("rate_limit_status"), NULL,
      ngx_http_rate_limit_variable, NGX_HTTP_RATE_LIMIT_VAR_STATUS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("rate_limit_remaining"), NULL,
      ngx_http_rate_limit_variable, NGX_HTTP_RATE_LIMIT_VAR_REMAINING,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("rate_limit_reset"), NULL,
      ngx_http_rate_limit_variable, NGX_HTTP_RATE_LIMIT_VAR_RESET,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("rate_limit_retry_after"), NULL,
      ngx_http_rate_limit_variable, NGX_HTTP_RATE_LIMIT_VAR_RETRY_AFTER,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("rate_limit_zone"), NULL,
      ngx_http_rate_limit_variable, NGX_HTTP_RATE_LIMIT_VAR_ZONE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("rate_limit_decided_by"), NULL,
      ngx_http_rate_limit_variable, NGX_HTTP_RATE_LIMIT_VAR_DECIDED_BY,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("rate_limit_delay"), NULL,
      ngx_http_rate_limit_variable, NGX_HTTP_RATE_LIMIT_VAR_DELAY,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_rate_limit_status_names[] = {
    ngx_null_string,
    ngx_string("PASSED"),
    ngx_string("REJECTED"),
    ngx_string("REJECTED_DRY_RUN"),
    ngx_string("ERROR")
};


ngx_int_t
ngx_http_rate_limit_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_rate_limit_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p;
    int64_t                     n;
    ngx_str_t                  *s;
    ngx_http_rate_limit_ctx_t  *ctx;
    rl_core_zone_result_t      *t;

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = 0;
    v->data = (u_char *) "";

    ctx = ngx_http_rate_limit_get_ctx(r);

    if (ctx == NULL || !ngx_http_rate_limit_decided(ctx)) {
        return NGX_OK;
    }

    if (data == NGX_HTTP_RATE_LIMIT_VAR_STATUS) {
        s = &ngx_http_rate_limit_status_names[ctx->outcome];
        v->len = s->len;
        v->data = s->data;
        return NGX_OK;
    }

    if (data == NGX_HTTP_RATE_LIMIT_VAR_DECIDED_BY) {
        /* a failed Redis decision without fallback is still Redis's */
        if (ctx->cached) {
            ngx_str_set(v, "cache");

        } else if (ctx->local) {
            ngx_str_set(v, "local");

        } else {
            ngx_str_set(v, "redis");
        }

        return NGX_OK;
    }

    if (data == NGX_HTTP_RATE_LIMIT_VAR_DELAY) {
        n = ctx->delay_ms;
        goto number;
    }

    /* the rest come from answered zones; an error answered none */

    if (ctx->outcome == NGX_HTTP_RATE_LIMIT_ERROR) {
        return NGX_OK;
    }

    t = &ctx->results[ctx->verdict.tightest];

    switch (data) {

    case NGX_HTTP_RATE_LIMIT_VAR_ZONE:
        v->len = ctx->zones[ctx->verdict.tightest]->name.len;
        v->data = ctx->zones[ctx->verdict.tightest]->name.data;
        return NGX_OK;

    case NGX_HTTP_RATE_LIMIT_VAR_REMAINING:
        n = t->remaining;
        break;

    case NGX_HTTP_RATE_LIMIT_VAR_RESET:
        n = rl_core_ceil_seconds(t->reset_after_ms);
        break;

    default: /* NGX_HTTP_RATE_LIMIT_VAR_RETRY_AFTER */
        if (!ctx->verdict.rejected) {
            return NGX_OK;
        }

        n = ctx->verdict.retry_after_s;
        break;
    }

number:

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%L", n) - p;
    v->data = p;

    return NGX_OK;
}
