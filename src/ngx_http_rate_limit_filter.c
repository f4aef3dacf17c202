
/*
 * ngx_http_rate_limit_module: the response fields.
 *
 * Set on whatever response the main request ends with (passed, rejected,
 * proxied, or an error_page target), from the decision kept in the
 * request's pool: RateLimit-Policy and RateLimit of
 * draft-ietf-httpapi-ratelimit-headers-10, one item per answered zone,
 * X-RateLimit-* of the tightest zone, and Retry-After on a rejection.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"


static ngx_int_t ngx_http_rate_limit_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_rate_limit_set_fields(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static ngx_int_t ngx_http_rate_limit_add_field(ngx_http_request_t *r,
    char *name, u_char *value, size_t len);
static ngx_int_t ngx_http_rate_limit_add_number(ngx_http_request_t *r,
    char *name, int64_t n);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


ngx_int_t
ngx_http_rate_limit_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_rate_limit_header_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_header_filter(ngx_http_request_t *r)
{
    ngx_http_rate_limit_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_rate_limit_get_ctx(r);

    /* dry run decides and logs, but shows nothing */

    if (ctx == NULL || !ngx_http_rate_limit_decided(ctx)
        || ctx->lcf->dry_run)
    {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->outcome == NGX_HTTP_RATE_LIMIT_REJECTED) {
        if (ngx_http_rate_limit_add_number(r, "Retry-After",
                                           ctx->verdict.retry_after_s)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* an error leaves its zones out: in a cluster others may have answered */

    if (ctx->lcf->headers) {
        if (ngx_http_rate_limit_set_fields(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_rate_limit_set_fields(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    u_char                      *p, *last;
    size_t                       size, len;
    ngx_uint_t                   i, n;
    rl_core_field_zone_t        *fz;
    rl_core_zone_result_t       *t;
    ngx_http_rate_limit_zone_t  *zone;
    rl_core_field_zone_t         stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];

    /* only needed while the values are formatted */

    fz = stack;

    if (ctx->nzones > NGX_HTTP_RATE_LIMIT_STACK_ZONES) {
        fz = ngx_palloc(r->pool,
                        ctx->nzones * sizeof(rl_core_field_zone_t));
        if (fz == NULL) {
            return NGX_ERROR;
        }
    }

    n = 0;
    size = 0;

    for (i = 0; i < ctx->nzones; i++) {
        if (!ctx->answered[i]) {
            continue;
        }

        zone = ctx->zones[i];

        fz[n].name = (char *) zone->name.data;
        fz[n].name_len = zone->name.len;
        fz[n].count = zone->limit.count;
        /* 0: a concurrency zone, whose items have no window */
        fz[n].period_s = ngx_http_rate_limit_is_concurrency(zone)
                         ? 0 : zone->limit.period_s;
        fz[n].result = ctx->results[i];
        n++;

        size += zone->name.len + RL_CORE_FIELD_ITEM_MAX;
    }

    if (n == 0) {
        return NGX_OK;
    }

    /* every value in one allocation: two lists and three numbers */

    p = ngx_pnalloc(r->pool, 2 * size + 3 * NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = rl_core_format_policy((char *) p, size, fz, n);

    if (ngx_http_rate_limit_add_field(r, "RateLimit-Policy", p, len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p += len;

    len = rl_core_format_ratelimit((char *) p, size, fz, n);

    if (ngx_http_rate_limit_add_field(r, "RateLimit", p, len) != NGX_OK) {
        return NGX_ERROR;
    }

    p += len;

    t = &ctx->results[ctx->verdict.tightest];

    last = ngx_sprintf(p, "%L", t->limit);

    if (ngx_http_rate_limit_add_field(r, "X-RateLimit-Limit", p, last - p)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = last;
    last = ngx_sprintf(p, "%L", t->remaining);

    if (ngx_http_rate_limit_add_field(r, "X-RateLimit-Remaining", p,
                                      last - p)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = last;
    last = ngx_sprintf(p, "%L", rl_core_ceil_seconds(t->reset_after_ms));

    return ngx_http_rate_limit_add_field(r, "X-RateLimit-Reset", p, last - p);
}


static ngx_int_t
ngx_http_rate_limit_add_field(ngx_http_request_t *r, char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    if (len == 0) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_add_number(ngx_http_request_t *r, char *name, int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_rate_limit_add_field(r, name, p,
                                         ngx_sprintf(p, "%L", n) - p);
}
