
/*
 * ngx_http_rate_limit_module: the rate_limit_metrics location.
 *
 * Reads the records of ngx_http_rate_limit_metrics.c under the shared
 * memory's mutex and writes them as the Prometheus exposition format
 * 0.0.4: every family with HELP and TYPE, label values escaped, the
 * histogram's buckets cumulative, the gauges summed over the processes
 * alive.  Writes nothing into the shared memory.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_shm.h"
#include "ngx_http_rate_limit_metrics.h"


/* a metric line beyond its label values */
#define NGX_HTTP_RATE_LIMIT_LINE       128


static ngx_int_t ngx_http_rate_limit_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_rate_limit_metrics_zones(u_char *p,
    ngx_http_rate_limit_main_conf_t *rmcf);
static u_char *ngx_http_rate_limit_metrics_nodes(u_char *p,
    ngx_http_rate_limit_shm_t *sh);
static u_char *ngx_http_rate_limit_metrics_node_lines(u_char *p,
    ngx_http_rate_limit_node_metrics_t *node, ngx_uint_t family,
    ngx_uint_t *live);
static u_char *ngx_http_rate_limit_metrics_family(u_char *p,
    ngx_uint_t family);
static u_char *ngx_http_rate_limit_metrics_escape(u_char *p, u_char *s,
    size_t len);


typedef struct {
    const char                 *name;
    const char                 *type;
    const char                 *help;
} ngx_http_rate_limit_family_t;


enum {
    NGX_HTTP_RATE_LIMIT_F_REQUESTS = 0,
    NGX_HTTP_RATE_LIMIT_F_CHARGED,
    NGX_HTTP_RATE_LIMIT_F_COMMANDS,
    NGX_HTTP_RATE_LIMIT_F_LATENCY,
    NGX_HTTP_RATE_LIMIT_F_CONNECTIONS,
    NGX_HTTP_RATE_LIMIT_F_PENDING,
    NGX_HTTP_RATE_LIMIT_FAMILIES
};


static ngx_http_rate_limit_family_t  ngx_http_rate_limit_families[] = {
    { "nginx_rate_limit_requests_total", "counter",
      "Requests decided, by zone and outcome." },
    { "nginx_rate_limit_charged_units_total", "counter",
      "Units taken from a zone by rate_limit_charge." },
    { "nginx_rate_limit_redis_commands_total", "counter",
      "Script commands to a Redis node, by result." },
    { "nginx_rate_limit_redis_latency_seconds", "histogram",
      "Time from writing a command to a Redis node to its reply." },
    { "nginx_rate_limit_redis_connections", "gauge",
      "Connections of the workers to a Redis node, by state." },
    { "nginx_rate_limit_redis_pending", "gauge",
      "Commands queued or written to a Redis node without a reply yet." }
};


static ngx_str_t  ngx_http_rate_limit_outcome_labels[] = {
    ngx_string("passed"),
    ngx_string("rejected"),
    ngx_string("rejected_cached"),
    ngx_string("delayed"),
    ngx_string("dry_run_rejected"),
    ngx_string("error_passed"),
    ngx_string("error_rejected"),
    ngx_string("local_passed"),
    ngx_string("local_rejected")
};


static ngx_str_t  ngx_http_rate_limit_result_labels[] = {
    ngx_string("ok"),
    ngx_string("error"),
    ngx_string("timeout"),
    ngx_string("no_room"),
    ngx_string("moved"),
    ngx_string("ask")
};


static ngx_str_t  ngx_http_rate_limit_state_labels[] = {
    ngx_string("up"),
    ngx_string("connecting"),
    ngx_string("down")
};


/* le= of the buckets */
static ngx_str_t  ngx_http_rate_limit_bucket_labels[] = {
    ngx_string("0.0005"), ngx_string("0.001"), ngx_string("0.0025"),
    ngx_string("0.005"), ngx_string("0.01"), ngx_string("0.025"),
    ngx_string("0.05"), ngx_string("0.1"), ngx_string("0.25"),
    ngx_string("0.5"), ngx_string("1"), ngx_string("+Inf")
};


char *
ngx_http_rate_limit_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_rate_limit_main_conf_t  *rmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_rate_limit_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_rate_limit_metrics_handler;

    /* the shared memory is made for a configuration that serves it */

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_rate_limit_module);
    rmcf->metrics = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_rate_limit_metrics_handler(ngx_http_request_t *r)
{
    u_char                           *p;
    size_t                            size;
    ngx_int_t                         rc;
    ngx_buf_t                        *b;
    ngx_uint_t                        i;
    ngx_queue_t                      *q;
    ngx_chain_t                       out;
    ngx_http_rate_limit_shm_t        *sh;
    ngx_http_rate_limit_zone_t      **zones;
    ngx_http_rate_limit_shm_ctx_t    *ctx;
    ngx_http_rate_limit_main_conf_t  *rmcf;
    ngx_http_rate_limit_node_metrics_t  *node;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_rate_limit_module);
    ctx = rmcf->shm ? rmcf->shm->data : NULL;
    sh = ctx ? ctx->sh : NULL;

    /* what the text can take at most: the families, then their lines */

    size = NGX_HTTP_RATE_LIMIT_FAMILIES * 2 * NGX_HTTP_RATE_LIMIT_LINE;

    zones = rmcf->zones.elts;

    for (i = 0; i < rmcf->zones.nelts; i++) {
        size += (NGX_HTTP_RATE_LIMIT_M_OUTCOMES + 1)
                * (zones[i]->name.len + NGX_HTTP_RATE_LIMIT_LINE);
    }

    if (sh) {
        ngx_shmtx_lock(&ctx->pool->mutex);
    }

    for (q = sh ? ngx_queue_head(&sh->nodes) : NULL;
         sh && q != ngx_queue_sentinel(&sh->nodes);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_rate_limit_node_metrics_t, queue);

        /*
         * Escaped, a label value is at most twice as long; each family
         * writes it once more before its lines (node_lines).
         */

        size += (NGX_HTTP_RATE_LIMIT_CMD_RESULTS + NGX_HTTP_RATE_LIMIT_BUCKETS
                 + 2 + NGX_HTTP_RATE_LIMIT_GAUGES
                 + NGX_HTTP_RATE_LIMIT_FAMILIES)
                * (2 * node->len + NGX_HTTP_RATE_LIMIT_LINE);
    }

    b = ngx_create_temp_buf(r->pool, size);

    if (b == NULL) {
        if (sh) {
            ngx_shmtx_unlock(&ctx->pool->mutex);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_rate_limit_metrics_zones(b->last, rmcf);
    p = ngx_http_rate_limit_metrics_nodes(p, sh);

    if (sh) {
        ngx_shmtx_unlock(&ctx->pool->mutex);
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (b->last == b->pos) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static u_char *
ngx_http_rate_limit_metrics_zones(u_char *p,
    ngx_http_rate_limit_main_conf_t *rmcf)
{
    ngx_uint_t                           i, m;
    ngx_http_rate_limit_zone_t         **zones;
    ngx_http_rate_limit_zone_metrics_t  *zm;

    zones = rmcf->zones.elts;

    p = ngx_http_rate_limit_metrics_family(p,
                                           NGX_HTTP_RATE_LIMIT_F_REQUESTS);

    for (i = 0; i < rmcf->zones.nelts; i++) {
        zm = zones[i]->metrics;

        for (m = 0; zm && m < NGX_HTTP_RATE_LIMIT_M_OUTCOMES; m++) {
            p = ngx_sprintf(p, "nginx_rate_limit_requests_total{zone=\"%V\","
                            "outcome=\"%V\"} %uA\n", &zones[i]->name,
                            &ngx_http_rate_limit_outcome_labels[m],
                            zm->requests[m]);
        }
    }

    p = ngx_http_rate_limit_metrics_family(p, NGX_HTTP_RATE_LIMIT_F_CHARGED);

    for (i = 0; i < rmcf->zones.nelts; i++) {
        zm = zones[i]->metrics;

        if (zm) {
            /* zone names are of A-Za-z0-9_-: nothing to escape */
            p = ngx_sprintf(p, "nginx_rate_limit_charged_units_total"
                            "{zone=\"%V\"} %uA\n", &zones[i]->name,
                            zm->charged);
        }
    }

    return p;
}


static u_char *
ngx_http_rate_limit_metrics_nodes(u_char *p, ngx_http_rate_limit_shm_t *sh)
{
    ngx_uint_t                           f, i;
    ngx_uint_t                           live[NGX_HTTP_RATE_LIMIT_PROCS];
    ngx_queue_t                         *q;
    ngx_http_rate_limit_node_metrics_t  *node;

    /* which slots count: those of processes alive now */

    for (i = 0; i < NGX_HTTP_RATE_LIMIT_PROCS; i++) {
        live[i] = sh && sh->procs[i] != 0
                  && ngx_http_rate_limit_metrics_alive(
                                                (ngx_pid_t) sh->procs[i]);
    }

    for (f = NGX_HTTP_RATE_LIMIT_F_COMMANDS;
         f < NGX_HTTP_RATE_LIMIT_FAMILIES;
         f++)
    {
        p = ngx_http_rate_limit_metrics_family(p, f);

        for (q = sh ? ngx_queue_head(&sh->nodes) : NULL;
             sh && q != ngx_queue_sentinel(&sh->nodes);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_rate_limit_node_metrics_t,
                                  queue);
            p = ngx_http_rate_limit_metrics_node_lines(p, node, f, live);
        }
    }

    return p;
}


/* One node's lines of one family. */

static u_char *
ngx_http_rate_limit_metrics_node_lines(u_char *p,
    ngx_http_rate_limit_node_metrics_t *node, ngx_uint_t family,
    ngx_uint_t *live)
{
    u_char            *label, *end;
    size_t             llen;
    uint64_t           cum;
    ngx_int_t          g[NGX_HTTP_RATE_LIMIT_GAUGES];
    ngx_uint_t         i, s;
    ngx_atomic_uint_t  sum;

    const char        *name;

    name = ngx_http_rate_limit_families[family].name;

    /* the node's label value, escaped, written once and copied */

    label = p;
    end = ngx_http_rate_limit_metrics_escape(label, node->name, node->len);
    llen = end - label;
    p = end;

#define ngx_http_rate_limit_node_line(fmt, ...)                               \
    p = ngx_sprintf(p, "%s" fmt, name, __VA_ARGS__)

    switch (family) {

    case NGX_HTTP_RATE_LIMIT_F_COMMANDS:
        for (i = 0; i < NGX_HTTP_RATE_LIMIT_CMD_RESULTS; i++) {
            ngx_http_rate_limit_node_line("{node=\"%*s\",result=\"%V\"} "
                                          "%uA\n", llen, label,
                                          &ngx_http_rate_limit_result_labels[i],
                                          node->commands[i]);
        }
        break;

    case NGX_HTTP_RATE_LIMIT_F_LATENCY:
        /* _count is the +Inf bucket, read once: the two always agree */
        cum = 0;

        for (i = 0; i < NGX_HTTP_RATE_LIMIT_BUCKETS; i++) {
            cum += node->buckets[i];
            ngx_http_rate_limit_node_line("_bucket{node=\"%*s\",le=\"%V\"} "
                                          "%uL\n", llen, label,
                                          &ngx_http_rate_limit_bucket_labels[i],
                                          cum);
        }

        sum = node->sum_us;

        ngx_http_rate_limit_node_line("_sum{node=\"%*s\"} %uA.%06uA\n",
                                      llen, label, sum / 1000000,
                                      sum % 1000000);
        ngx_http_rate_limit_node_line("_count{node=\"%*s\"} %uL\n",
                                      llen, label, cum);
        break;

    default: /* the gauges */
        ngx_memzero(g, sizeof(g));

        for (s = 0; s < NGX_HTTP_RATE_LIMIT_PROCS; s++) {
            for (i = 0; live[s] && i < NGX_HTTP_RATE_LIMIT_GAUGES; i++) {
                g[i] += (ngx_atomic_int_t) node->gauges[s][i];
            }
        }

        for (i = 0; i < NGX_HTTP_RATE_LIMIT_GAUGES; i++) {
            g[i] = ngx_max(g[i], 0);
        }

        if (family == NGX_HTTP_RATE_LIMIT_F_PENDING) {
            ngx_http_rate_limit_node_line("{node=\"%*s\"} %i\n",
                                          llen, label,
                                          g[NGX_HTTP_RATE_LIMIT_G_PENDING]);
            break;
        }

        for (i = 0; i < NGX_HTTP_RATE_LIMIT_G_PENDING; i++) {
            ngx_http_rate_limit_node_line("{node=\"%*s\",state=\"%V\"} "
                                          "%i\n", llen, label,
                                          &ngx_http_rate_limit_state_labels[i],
                                          g[i]);
        }
    }

#undef ngx_http_rate_limit_node_line

    /* the lines were written after the label: move them over it */

    ngx_memmove(label, end, p - end);

    return label + (p - end);
}


static u_char *
ngx_http_rate_limit_metrics_family(u_char *p, ngx_uint_t family)
{
    ngx_http_rate_limit_family_t  *f;

    f = &ngx_http_rate_limit_families[family];

    return ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n",
                       f->name, f->help, f->name, f->type);
}


/* A label value as the text format wants it: \\, \" and \n escaped. */

static u_char *
ngx_http_rate_limit_metrics_escape(u_char *p, u_char *s, size_t len)
{
    while (len--) {
        switch (*s) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = *s;
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = *s;
        }

        s++;
    }

    return p;
}
