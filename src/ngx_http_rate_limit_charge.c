
/*
 * ngx_http_rate_limit_module: rate_limit_charge, costs known only after
 * the response.
 *
 * In the log phase the location's charges (zone, the zone's key, the
 * value) go to Redis as one script call in mode charge, for all of them
 * (in a cluster one call per slot, see link_send_set).  Nothing waits for it and nothing of the response changes: the reply is
 * only counted.  A charge that cannot be sent (Redis down, no room on the
 * link) or that gets no good reply is counted and logged, once a second,
 * and never sent again.  This file touches only its own op and counters.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_link.h"
#include "ngx_http_rate_limit_log.h"
#include "ngx_http_rate_limit_metrics.h"


static void ngx_http_rate_limit_charge_done(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text);
static void ngx_http_rate_limit_charge_failed(ngx_log_t *log,
    const char *why, ngx_str_t *text);
static const rl_core_zone_request_t *ngx_http_rate_limit_charge_zone(
    void *data, size_t i);
static ngx_http_rate_limit_op_t *ngx_http_rate_limit_charge_build(void *data,
    const size_t *items, size_t n, ngx_log_t *log);


/* what became of this worker's charge commands */
static ngx_uint_t  ngx_http_rate_limit_charges_sent;
static ngx_uint_t  ngx_http_rate_limit_charges_failed;

static ngx_http_rate_limit_throttle_t  ngx_http_rate_limit_charge_throttle;


ngx_int_t
ngx_http_rate_limit_charge_handler(ngx_http_request_t *r)
{
    uint64_t                         cost;
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_uint_t                       i, n, nrules;
    ngx_http_rate_limit_set_t        set;
    ngx_http_rate_limit_rule_t      *rules;
    ngx_http_rate_limit_zone_t      *zone;
    rl_core_zone_request_t          *zreq;
    ngx_http_rate_limit_loc_conf_t  *rlcf;
    ngx_http_rate_limit_zone_t     **zones;
    rl_core_zone_request_t           stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];
    ngx_http_rate_limit_zone_t      *zstack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_rate_limit_module);

    if (rlcf->charges == NULL || r != r->main) {
        return NGX_OK;
    }

    nrules = rlcf->charges->nelts;
    rules = rlcf->charges->elts;

    /* only needed while the core writes the command */

    zreq = stack;
    zones = zstack;

    if (nrules > NGX_HTTP_RATE_LIMIT_STACK_ZONES) {
        zreq = ngx_palloc(r->pool, nrules * sizeof(rl_core_zone_request_t));
        zones = ngx_palloc(r->pool, nrules * sizeof(void *));
        if (zreq == NULL || zones == NULL) {
            return NGX_OK;
        }
    }

    n = 0;

    for (i = 0; i < nrules; i++) {
        rc = ngx_http_rate_limit_rule_eval(r, &rules[i], 1, &zone, &key,
                                           &cost);

        if (rc == NGX_ERROR) {
            return NGX_OK;
        }

        if (rc != NGX_OK) {
            /* nothing to charge, or a bad value (logged) */
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "rate limit: charge zone \"%V\" %uL units",
                       &zone->name, cost);

        zreq[n].prefix = (char *) zone->prefix.data;
        zreq[n].prefix_len = zone->prefix.len;
        zreq[n].zone = (char *) zone->name.data;
        zreq[n].zone_len = zone->name.len;
        zreq[n].key = (char *) key.data;
        zreq[n].key_len = key.len;
        zreq[n].limit = &zone->limit;
        zreq[n].cost = cost;
        zones[n] = zone;
        n++;
    }

    if (n == 0) {
        return NGX_OK;
    }

    set.n = n;
    set.zone = ngx_http_rate_limit_charge_zone;
    set.build = ngx_http_rate_limit_charge_build;
    set.data = zreq;

    rc = ngx_http_rate_limit_link_send_set(&set, r->connection->log);

    if (rc != NGX_OK) {
        /* down or no room: the link logged why; never sent again */
        ngx_http_rate_limit_charge_failed(r->connection->log,
                                          rc == NGX_BUSY ? "no room"
                                                         : "redis down",
                                          NULL);
        return NGX_OK;
    }

    ngx_http_rate_limit_charges_sent++;

    for (i = 0; i < n; i++) {
        ngx_http_rate_limit_metrics_charged(zones[i], zreq[i].cost);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "rate limit: charge sent, %ui zones", n);

    return NGX_OK;
}


static const rl_core_zone_request_t *
ngx_http_rate_limit_charge_zone(void *data, size_t i)
{
    rl_core_zone_request_t  *zreq = data;

    return &zreq[i];
}


/* One command of these charges: the op, a reply integer a zone, RESP. */

static ngx_http_rate_limit_op_t *
ngx_http_rate_limit_charge_build(void *data, const size_t *items, size_t n,
    ngx_log_t *log)
{
    size_t                     i, bytes;
    rl_core_zone_request_t    *zreq = data;
    rl_core_zone_request_t    *sub;
    ngx_http_rate_limit_op_t  *op;
    rl_core_zone_request_t     stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];

    if (n == 0) {
        return NULL;
    }

    sub = stack;

    if (n > NGX_HTTP_RATE_LIMIT_STACK_ZONES) {
        sub = ngx_alloc(n * sizeof(rl_core_zone_request_t), log);
        if (sub == NULL) {
            return NULL;
        }

    } else {
        /* GCC 14 cannot tell that the loop below fills what is read */
        ngx_memzero(stack, sizeof(stack));
    }

    for (i = 0; i < n; i++) {
        sub[i] = zreq[items[i]];
    }

    op = NULL;

    if (rl_core_request_size(sub, n, 0, &bytes) != RL_CORE_OK) {
        goto done;
    }

    op = ngx_alloc(sizeof(ngx_http_rate_limit_op_t) + n * sizeof(int64_t)
                   + bytes, log);
    if (op == NULL) {
        goto done;
    }

    ngx_memzero(op, sizeof(ngx_http_rate_limit_op_t));

    op->handler = ngx_http_rate_limit_charge_done;
    op->data = NULL;
    op->nvalues = n;
    op->values = (int64_t *) (op + 1);
    op->cmd = (char *) (op->values + n);

    if (rl_core_request_build(sub, n, RL_CORE_MODE_CHARGE, NULL, 0,
                              (uint64_t) ngx_time() * 1000, op->cmd, bytes,
                              &op->len)
        != RL_CORE_OK)
    {
        ngx_free(op);
        op = NULL;
    }

done:

    if (sub != stack) {
        ngx_free(sub);
    }

    return op;
}


/* The reply is only counted: the response is long gone. */

static void
ngx_http_rate_limit_charge_done(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "rate limit: charge %p answered (%d)", op, answer);

    ngx_free(op);

    switch (answer) {

    case NGX_HTTP_RATE_LIMIT_ANSWER_OK:
        return;

    case NGX_HTTP_RATE_LIMIT_ANSWER_LOST:
        ngx_http_rate_limit_charge_failed(ngx_cycle->log,
                                          "connection lost", NULL);
        return;

    default: /* an error reply, or a malformed one */
        ngx_http_rate_limit_charge_failed(ngx_cycle->log, "redis error",
                                          text);
        return;
    }
}


static void
ngx_http_rate_limit_charge_failed(ngx_log_t *log, const char *why,
    ngx_str_t *text)
{
    ngx_http_rate_limit_charges_failed++;

    ngx_http_rate_limit_log_error(&ngx_http_rate_limit_charge_throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CHARGE, log,
                                  "rate_limit_charge: not taken (%s%s%*s), "
                                  "%ui charges not taken by this worker "
                                  "so far, %ui sent", why,
                                  text ? ": " : "",
                                  text ? (size_t) ngx_min(text->len, 256)
                                       : (size_t) 0,
                                  text ? text->data : (u_char *) "",
                                  ngx_http_rate_limit_charges_failed,
                                  ngx_http_rate_limit_charges_sent);
}
