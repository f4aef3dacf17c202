
/*
 * ngx_http_rate_limit_module: the access phase handler.
 *
 * A request's zones are decided together by one script call.  While it
 * waits the handler returns NGX_AGAIN and takes no reference on the
 * request: ngx_http_test_reading notices a client that leaves, and the
 * request pool's cleanup detaches the pending command, whose late reply is
 * then dropped.  The reply, an error or the wait timer stores the outcome
 * and reruns the phases; the handler then returns the verdict, so NGINX's
 * access checker is the only one to finalize the request.  The states a
 * request goes through are ngx_http_rate_limit_state_e's (module.h); with
 * --with-debug each step is traced at the http debug level.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_link.h"
#include "ngx_http_rate_limit_log.h"
#include "ngx_http_rate_limit_shm.h"
#include "ngx_http_rate_limit_metrics.h"
#include "ngx_http_rate_limit_fallback.h"


typedef struct {
    ngx_uint_t                  ncaches;
    rl_core_cache_t           **caches;     /* by zone index, NULL: off */
} ngx_http_rate_limit_worker_t;


static ngx_int_t ngx_http_rate_limit_create_ctx(ngx_http_request_t *r,
    ngx_http_rate_limit_loc_conf_t *rlcf, ngx_http_rate_limit_ctx_t **ctxp);
static ngx_int_t ngx_http_rate_limit_from_cache(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static ngx_int_t ngx_http_rate_limit_send(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static void ngx_http_rate_limit_on_answer(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text);
static ngx_int_t ngx_http_rate_limit_read_answer(
    ngx_http_rate_limit_ctx_t *ctx, ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text);
static void ngx_http_rate_limit_wait_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_decide(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx, ngx_uint_t error);
static void ngx_http_rate_limit_fall_back(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static void ngx_http_rate_limit_fall_back_end(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static void ngx_http_rate_limit_resume(ngx_http_rate_limit_ctx_t *ctx);
static ngx_int_t ngx_http_rate_limit_hold(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static void ngx_http_rate_limit_delay_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_rate_limit_verdict(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static void ngx_http_rate_limit_log_rejection(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx);
static void ngx_http_rate_limit_cleanup(void *data);
static rl_core_cache_t *ngx_http_rate_limit_cache(
    ngx_http_rate_limit_zone_t *zone);
static uint64_t ngx_http_rate_limit_wall_msec(void);


static ngx_http_rate_limit_worker_t  ngx_http_rate_limit_worker;

#if (NGX_DEBUG)
/* by ngx_http_rate_limit_outcome_e, for the traces */
static const char  *ngx_http_rate_limit_outcome_names[] = {
    "none", "passed", "rejected", "rejected in dry run", "error"
};
#endif

/* what requests met: timeouts, lost and bad answers */
static ngx_http_rate_limit_throttle_t  ngx_http_rate_limit_throttle;


ngx_int_t
ngx_http_rate_limit_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_http_rate_limit_ctx_t        *ctx;
    ngx_http_rate_limit_loc_conf_t   *rlcf;
    ngx_http_rate_limit_main_conf_t  *rmcf;

    /* subrequests are never limited */

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_rate_limit_get_ctx(r);

    if (ctx != NULL) {

        switch (ctx->state) {

        case NGX_HTTP_RATE_LIMIT_STATE_WAITING:
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "rate limit: still waiting for redis");
            return NGX_AGAIN;

        case NGX_HTTP_RATE_LIMIT_STATE_DECIDED:
            /* the completion (or the end of the delay) reran the phases */
            return ngx_http_rate_limit_verdict(r, ctx);

        case NGX_HTTP_RATE_LIMIT_STATE_HELD:
            return NGX_AGAIN;

        default:
            /* decided before an internal redirect: once per request */
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "rate limit: decided before, declined");
            return NGX_DECLINED;
        }
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_rate_limit_module);

    if (rlcf->rules == NULL || rlcf->rules->nelts == 0) {
        return NGX_DECLINED;
    }

    rc = ngx_http_rate_limit_create_ctx(r, rlcf, &ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        /* every key is empty: no zone applies, no decision */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "rate limit: every key empty, no decision");
        return NGX_DECLINED;
    }

    /* ctx->state == NGX_HTTP_RATE_LIMIT_STATE_NEW */

    if (ctx->nzones == 0) {
        /* only bad values (logged): the fail policy */
        ngx_http_rate_limit_decide(r, ctx, 1);
        return ngx_http_rate_limit_verdict(r, ctx);
    }

    if (ngx_http_rate_limit_from_cache(r, ctx) == NGX_OK) {
        return ngx_http_rate_limit_verdict(r, ctx);
    }

    rc = ngx_http_rate_limit_send(r, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED || rc == NGX_BUSY) {
        /* down between attempts, or no room: the fail policy, at once */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "rate limit: not sent (%s), fail policy",
                       rc == NGX_BUSY ? "no room" : "redis down");
        ngx_http_rate_limit_decide(r, ctx, 1);
        return ngx_http_rate_limit_verdict(r, ctx);
    }

    /* rc == NGX_OK: wait */

    ctx->state = NGX_HTTP_RATE_LIMIT_STATE_WAITING;

    ctx->wait.handler = ngx_http_rate_limit_wait_handler;
    ctx->wait.data = ctx;
    ctx->wait.log = r->connection->log;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_rate_limit_module);

    ngx_add_timer(&ctx->wait, rmcf->redis->timeout);

    r->read_event_handler = ngx_http_test_reading;

    return NGX_AGAIN;
}


/*
 * The main request's decision.  r->ctx is zeroed by an internal redirect,
 * but the pool cleanup that owns the decision stays: find it there, as the
 * realip module does.
 */

ngx_http_rate_limit_ctx_t *
ngx_http_rate_limit_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_rate_limit_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_rate_limit_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_rate_limit_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_rate_limit_module);
                break;
            }
        }
    }

    return ctx;
}


ngx_int_t
ngx_http_rate_limit_init_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    rl_core_cache_t                 **caches;
    ngx_http_rate_limit_zone_t      **zones;
    ngx_http_rate_limit_main_conf_t  *rmcf;

    /* the master, cache manager and cache loader never speak to Redis */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_rate_limit_module);

    if (rmcf == NULL || rmcf->redis == NULL) {
        return NGX_OK;
    }

    zones = rmcf->zones.elts;

    caches = ngx_calloc(rmcf->zones.nelts * sizeof(rl_core_cache_t *) + 1,
                        cycle->log);
    if (caches == NULL) {
        return NGX_ERROR;
    }

    ngx_http_rate_limit_worker.caches = caches;
    ngx_http_rate_limit_worker.ncaches = rmcf->zones.nelts;

    for (i = 0; i < rmcf->zones.nelts; i++) {
        if (zones[i]->cache == 0) {
            continue;
        }

        caches[i] = rl_core_cache_create(zones[i]->cache);

        if (caches[i] == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "rate_limit: no memory for the deny cache of "
                          "zone \"%V\"", &zones[i]->name);
            return NGX_ERROR;
        }
    }

    ngx_http_rate_limit_metrics_init_worker();
    ngx_http_rate_limit_lease_init(cycle);

    return ngx_http_rate_limit_link_init(cycle, rmcf->redis);
}


void
ngx_http_rate_limit_exit_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    /* before the link closes: the releases are written first */

    ngx_http_rate_limit_lease_exit();
    ngx_http_rate_limit_link_exit();
    ngx_http_rate_limit_metrics_exit_worker();

    for (i = 0; i < ngx_http_rate_limit_worker.ncaches; i++) {
        if (ngx_http_rate_limit_worker.caches[i]) {
            rl_core_cache_destroy(ngx_http_rate_limit_worker.caches[i]);
        }
    }

    ngx_free(ngx_http_rate_limit_worker.caches);

    ngx_http_rate_limit_worker.caches = NULL;
    ngx_http_rate_limit_worker.ncaches = 0;
}


/*
 * Evaluates every rule: its zone, the zone's key and the cost; zones whose
 * key is empty are left out, and so are bad values (logged), which mark
 * the request for the fail policy.  NGX_OK with *ctxp set, NGX_DECLINED
 * when no zone applies, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_rate_limit_create_ctx(ngx_http_request_t *r,
    ngx_http_rate_limit_loc_conf_t *rlcf, ngx_http_rate_limit_ctx_t **ctxp)
{
    uint64_t                      cost;
    ngx_int_t                     rc;
    ngx_str_t                     key;
    ngx_uint_t                    i, j, n;
    ngx_pool_cleanup_t           *cln;
    ngx_http_rate_limit_ctx_t    *ctx;
    ngx_http_rate_limit_rule_t   *rules;
    ngx_http_rate_limit_zone_t   *zone;

    n = rlcf->rules->nelts;
    rules = rlcf->rules->elts;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_rate_limit_ctx_t)
                               + n * (sizeof(rl_core_zone_result_t)
                                      + sizeof(uint64_t)
                                      + sizeof(ngx_http_rate_limit_zone_t *)
                                      + sizeof(ngx_str_t) + 1));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->results = (rl_core_zone_result_t *) (ctx + 1);
    ctx->costs = (uint64_t *) (ctx->results + n);
    ctx->zones = (ngx_http_rate_limit_zone_t **) (ctx->costs + n);
    ctx->keys = (ngx_str_t *) (ctx->zones + n);
    ctx->answered = (u_char *) (ctx->keys + n);

    /*
     * The keys are kept raw, as the request holds them: the core hashes
     * long keys (and those that look hashed) where it names Redis keys and
     * deny cache entries, so no client key is ever hashed twice.
     */

    for (i = 0; i < n; i++) {
        rc = ngx_http_rate_limit_rule_eval(r, &rules[i], 0, &zone, &key,
                                           &cost);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_ABORT) {
            ctx->bad = 1;
            continue;
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "rate limit: zone \"%V\" cost %uL", &zone->name, cost);

        /*
         * A zone decides a request once, whatever number of lines name it
         * (a variable and a name, say): the largest cost of them.  Twice
         * in one script call, both would see the state before either.
         */

        for (j = 0; j < ctx->nzones; j++) {
            if (ctx->zones[j] == zone) {
                break;
            }
        }

        if (j < ctx->nzones) {
            ctx->costs[j] = ngx_max(ctx->costs[j], cost);
            continue;
        }

        ctx->zones[ctx->nzones] = zone;
        ctx->keys[ctx->nzones] = key;
        ctx->costs[ctx->nzones] = cost;
        ctx->nzones++;
    }

    if (ctx->nzones == 0 && !ctx->bad) {
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_rate_limit_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->lcf = rlcf;
    ctx->state = NGX_HTTP_RATE_LIMIT_STATE_NEW;

    ngx_http_set_ctx(r, ctx, ngx_http_rate_limit_module);

    *ctxp = ctx;

    return NGX_OK;
}


/*
 * A key that Redis rejected stays rejected at least until the command's
 * send time plus its wait: a rejection consumes nothing and other requests
 * only push its next allowed time later.  So it is rejected here without a
 * round trip; zones not asked are left out of the answer.
 */

static ngx_int_t
ngx_http_rate_limit_from_cache(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    uint64_t                     now;
    ngx_uint_t                   i, hit;
    rl_core_cache_t             *cache;
    ngx_http_rate_limit_zone_t  *zone;

    hit = 0;
    now = 0;

    for (i = 0; i < ctx->nzones; i++) {
        zone = ctx->zones[i];
        cache = ngx_http_rate_limit_cache(zone);

        if (cache == NULL) {
            continue;
        }

        /*
         * A clock read now, not ngx_current_msec: the event loop's time
         * can be a whole turn old, and an entry would outlive Redis's own
         * rejection by that much.
         */

        if (now == 0) {
            now = ngx_http_rate_limit_monotonic_usec();
        }

        if (rl_core_cache_lookup(cache, (char *) ctx->keys[i].data,
                                 ctx->keys[i].len, now, &ctx->results[i]))
        {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "rate limit: zone \"%V\" deny cache hit, "
                           "retry after %L ms",
                           &zone->name, ctx->results[i].retry_after_ms);
            ctx->answered[i] = NGX_HTTP_RATE_LIMIT_BY_REDIS;
            hit = 1;
        }
    }

    if (!hit) {
        return NGX_DECLINED;
    }

    ctx->cached = 1;
    ngx_http_rate_limit_decide(r, ctx, 0);

    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_send(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    u_char                      *p;
    size_t                       bytes, size;
    uint64_t                     sent;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    rl_core_zone_request_t      *zreq;
    ngx_http_rate_limit_op_t    *op;
    ngx_http_rate_limit_zone_t  *zone;
    rl_core_zone_request_t       stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];

    /* only needed while the core writes the command */

    zreq = stack;

    if (ctx->nzones > NGX_HTTP_RATE_LIMIT_STACK_ZONES) {
        zreq = ngx_palloc(r->pool,
                          ctx->nzones * sizeof(rl_core_zone_request_t));
        if (zreq == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < ctx->nzones; i++) {
        zone = ctx->zones[i];

        zreq[i].prefix = (char *) zone->prefix.data;
        zreq[i].prefix_len = zone->prefix.len;
        zreq[i].zone = (char *) zone->name.data;
        zreq[i].zone_len = zone->name.len;
        zreq[i].key = (char *) ctx->keys[i].data;
        zreq[i].key_len = ctx->keys[i].len;
        zreq[i].limit = &zone->limit;
        zreq[i].cost = ctx->costs[i];
    }

    if (ngx_http_rate_limit_lease_member(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (rl_core_request_size(zreq, ctx->nzones, ctx->member.len, &bytes)
        != RL_CORE_OK)
    {
        return NGX_ERROR;
    }

    /*
     * The op, the reply's integers and the command in one block, not from
     * the request's pool: the command may outlive the request (a client
     * that leaves), and the link frees it then.
     */

    size = sizeof(ngx_http_rate_limit_op_t)
           + ctx->nzones * RL_CORE_REPLY_VALUES * sizeof(int64_t)
           + ctx->nzones
           + bytes;

    op = ngx_alloc(size, r->connection->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) (op + 1);

    op->handler = ngx_http_rate_limit_on_answer;
    op->data = ctx;
    op->nvalues = ctx->nzones * RL_CORE_REPLY_VALUES;
    op->values = (int64_t *) p;
    p += op->nvalues * sizeof(int64_t);
    op->answered = p;
    p += ctx->nzones;
    op->cmd = (char *) p;

    /* mode=cluster splits the zones by slot */

    ngx_memset(op->answered, 1, ctx->nzones);
    op->zones = zreq;
    op->nzones = ctx->nzones;
    op->lease = (char *) ctx->member.data;
    op->lease_len = ctx->member.len;
    op->now_ms = ngx_http_rate_limit_wall_msec();
    op->fail_closed = !(ctx->lcf->fail_open || ctx->lcf->dry_run);

    if (rl_core_request_build(zreq, ctx->nzones, RL_CORE_MODE_CHECK,
                              op->lease, op->lease_len, op->now_ms,
                              op->cmd, bytes, &op->len)
        != RL_CORE_OK)
    {
        ngx_free(op);
        return NGX_ERROR;
    }

    /*
     * The deny cache counts a rejection's wait from here: a clock read
     * before the command goes out, so never later than Redis's decision.
     */

    sent = ngx_http_rate_limit_monotonic_usec();

    rc = ngx_http_rate_limit_link_send(op, r->connection->log);

    if (rc != NGX_OK) {
        ngx_free(op);
        return rc;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "rate limit: sent %p, %ui zones, %uz bytes",
                   op, ctx->nzones, op->len);

    ctx->op = op;
    ctx->sent = sent;

    return NGX_OK;
}


static void
ngx_http_rate_limit_on_answer(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    ngx_int_t                   rc;
    ngx_http_rate_limit_ctx_t  *ctx;

    ctx = op->data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "rate limit: answered %p, %s", op,
                   answer == NGX_HTTP_RATE_LIMIT_ANSWER_OK ? "a reply"
                                                           : "no reply");

    rc = ngx_http_rate_limit_read_answer(ctx, op, answer, text);

    ctx->op = NULL;
    ngx_free(op);

    ngx_http_rate_limit_decide(ctx->request, ctx, rc != NGX_OK);
    ngx_http_rate_limit_resume(ctx);
}


/* Any answer but the script's well-formed reply is a Redis error. */

static ngx_int_t
ngx_http_rate_limit_read_answer(ngx_http_rate_limit_ctx_t *ctx,
    ngx_http_rate_limit_op_t *op, ngx_http_rate_limit_answer_e answer,
    ngx_str_t *text)
{
    ngx_uint_t   i;
    ngx_log_t   *log;

    log = ctx->request->connection->log;

    switch (answer) {

    case NGX_HTTP_RATE_LIMIT_ANSWER_OK:
        break;

    case NGX_HTTP_RATE_LIMIT_ANSWER_LOST:
        ngx_http_rate_limit_log_error(&ngx_http_rate_limit_throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_LOST, log,
                                      "rate_limit: redis connection lost "
                                      "before the answer");
        return NGX_ERROR;

    case NGX_HTTP_RATE_LIMIT_ANSWER_ERROR:
        ngx_http_rate_limit_log_error(&ngx_http_rate_limit_throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_REPLY, log,
                                      "rate_limit: redis error: \"%*s\"",
                                      (size_t) ngx_min(text->len, 256),
                                      text->data);
        return NGX_ERROR;

    default: /* NGX_HTTP_RATE_LIMIT_ANSWER_MALFORMED */
        ngx_http_rate_limit_log_error(&ngx_http_rate_limit_throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_REPLY, log,
                                      "rate_limit: malformed reply from "
                                      "redis (%V)", text);
        return NGX_ERROR;
    }

    if (rl_core_decode_reply(op->values, op->nvalues, ctx->nzones,
                             ctx->results)
        != RL_CORE_OK)
    {
        ngx_http_rate_limit_log_error(&ngx_http_rate_limit_throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_REPLY, log,
                                      "rate_limit: malformed reply from "
                                      "redis (values out of range)");
        return NGX_ERROR;
    }

    /* in a cluster, the zones of a slot that failed are not answered */

    for (i = 0; i < ctx->nzones; i++) {
        ctx->answered[i] = op->answered[i] ? NGX_HTTP_RATE_LIMIT_BY_REDIS : 0;
    }

    return NGX_OK;
}


static void
ngx_http_rate_limit_wait_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_ctx_t  *ctx = ev->data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "rate limit: timed out waiting for %p", ctx->op);

    ngx_http_rate_limit_log_error(&ngx_http_rate_limit_throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_TIMEOUT,
                                  ctx->request->connection->log,
                                  "rate_limit: redis timed out");

    /* not written yet: never written; else its late reply finds nobody */

    if (ctx->op) {
        ngx_http_rate_limit_link_timeout(ctx->op);
        ctx->op = NULL;
    }

    ngx_http_rate_limit_decide(ctx->request, ctx, 1);
    ngx_http_rate_limit_resume(ctx);
}


/*
 * Stores the outcome from the answered zones, or from an error: then the
 * zones with a fallback are decided locally, and those left get the fail
 * policy unless another zone rejects.
 */

static void
ngx_http_rate_limit_decide(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx, ngx_uint_t error)
{
    ngx_uint_t        i, left;
    rl_core_cache_t  *cache;

    ctx->state = NGX_HTTP_RATE_LIMIT_STATE_DECIDED;

    if (error) {
        ngx_memzero(ctx->answered, ctx->nzones);
    }

    /*
     * Zones with no Redis answer (all of them on an error; in a cluster,
     * those of a slot that failed) are decided locally where they have a
     * fallback; the deny cache answers only the zones it holds.
     */

    left = 0;

    for (i = 0; !ctx->cached && i < ctx->nzones; i++) {
        left += !ctx->answered[i];
    }

    if (left) {
        ngx_http_rate_limit_fall_back(r, ctx);

        left = 0;

        for (i = 0; i < ctx->nzones; i++) {
            left += !ctx->answered[i];
        }

        if (left == ctx->nzones) {
            ctx->outcome = NGX_HTTP_RATE_LIMIT_ERROR;
            return;
        }
    }

    if (rl_core_verdict(ctx->results, ctx->answered, ctx->nzones,
                        &ctx->verdict)
        != RL_CORE_OK)
    {
        ctx->outcome = NGX_HTTP_RATE_LIMIT_ERROR;
        return;
    }

    if (!ctx->verdict.rejected) {
        /* a zone left out for a bad value: the fail policy */
        ctx->outcome = (left || ctx->bad) ? NGX_HTTP_RATE_LIMIT_ERROR
                                          : NGX_HTTP_RATE_LIMIT_PASSED;

        /*
         * Not rejected: every zone Redis answered took what it admits,
         * leases too (held until the request ends; no memory: they
         * expire after their length).
         */
        (void) ngx_http_rate_limit_lease_admitted(ctx);

        if (ctx->outcome == NGX_HTTP_RATE_LIMIT_ERROR || ctx->lcf->dry_run) {
            return;
        }

        /*
         * the longest wait the script gave its zones (delay_ms: gcra
         * delay=); the local fallback and the deny cache never hold, nor
         * does a dry run
         */

        for (i = 0; i < ctx->nzones; i++) {
            if (ctx->answered[i] == NGX_HTTP_RATE_LIMIT_BY_REDIS) {
                ctx->delay_ms = ngx_max(ctx->delay_ms,
                                        (ngx_msec_t)
                                            ctx->results[i].delay_ms);
            }
        }

        return;
    }

    ctx->outcome = ctx->lcf->dry_run ? NGX_HTTP_RATE_LIMIT_REJECTED_DRY_RUN
                                     : NGX_HTTP_RATE_LIMIT_REJECTED;

    /* remember Redis's fresh rejections (not the cache's, not local) */

    if (!ctx->cached) {
        for (i = 0; i < ctx->nzones; i++) {
            cache = ngx_http_rate_limit_cache(ctx->zones[i]);

            if (cache == NULL
                || ctx->answered[i] != NGX_HTTP_RATE_LIMIT_BY_REDIS
                || ctx->results[i].allowed)
            {
                continue;
            }

            (void) rl_core_cache_insert(cache, (char *) ctx->keys[i].data,
                                        ctx->keys[i].len, ctx->sent,
                                        &ctx->results[i]);
        }
    }

    ngx_http_rate_limit_log_rejection(r, ctx);
}


/* The zones with fallback=, decided in the node's shared memory. */

static void
ngx_http_rate_limit_fall_back(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_uint_t                        i;
    ngx_http_rate_limit_zone_t       *zone;
    ngx_http_rate_limit_shm_ctx_t    *shm;
    ngx_http_rate_limit_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_rate_limit_module);

    if (rmcf->shm == NULL) {
        return;
    }

    shm = rmcf->shm->data;

    for (i = 0; i < ctx->nzones; i++) {
        zone = ctx->zones[i];

        if (ctx->answered[i]) {
            continue;
        }

        if (zone->fallback_count) {
            /* an in-progress count, given back at the request's end */
            rc = ngx_http_rate_limit_fallback_count(shm, zone, &ctx->keys[i],
                                                    r->connection->log,
                                                    &ctx->results[i]);
            if (rc == NGX_OK && ctx->results[i].allowed) {
                ctx->local_held = 1;
            }

        } else if (zone->fallback_t_us) {
            rc = ngx_http_rate_limit_fallback_decide(shm, zone,
                                                     &ctx->keys[i],
                                                     ctx->costs[i],
                                                     r->connection->log,
                                                     &ctx->results[i]);
        } else {
            continue;
        }

        if (rc != NGX_OK) {
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "rate limit: zone \"%V\" decided locally, %s",
                       &zone->name,
                       ctx->results[i].allowed ? "allowed" : "rejected");

        ctx->answered[i] = NGX_HTTP_RATE_LIMIT_BY_LOCAL;
        ctx->local = 1;
    }

    /*
     * Another zone rejects: the request takes no slot, as the script's
     * check of a rejected request only reports the slots as they stay.
     */

    for (i = 0; ctx->local_held && i < ctx->nzones; i++) {
        if (ctx->answered[i] && !ctx->results[i].allowed) {
            ngx_http_rate_limit_fall_back_end(r, ctx);

            for (i = 0; i < ctx->nzones; i++) {
                if (ctx->answered[i] == NGX_HTTP_RATE_LIMIT_BY_LOCAL
                    && ctx->zones[i]->fallback_count
                    && ctx->results[i].allowed)
                {
                    ctx->results[i].remaining++;
                    ctx->results[i].retry_after_ms = 0;
                }
            }

            break;
        }
    }
}


/* Gives back the in-progress counts the request took locally, once. */

static void
ngx_http_rate_limit_fall_back_end(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_uint_t                        i;
    ngx_http_rate_limit_main_conf_t  *rmcf;

    if (!ctx->local_held) {
        return;
    }

    ctx->local_held = 0;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_rate_limit_module);

    for (i = 0; i < ctx->nzones; i++) {
        if (ctx->answered[i] == NGX_HTTP_RATE_LIMIT_BY_LOCAL
            && ctx->zones[i]->fallback_count
            && ctx->results[i].allowed)
        {
            ngx_http_rate_limit_fallback_release(rmcf->shm->data,
                                                 ctx->zones[i],
                                                 &ctx->keys[i]);
        }
    }
}


/* Reruns the phases from outside the phase engine: a reply or a timer. */

static void
ngx_http_rate_limit_resume(ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "rate limit: resumed, phases run again");

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_set_log_request(c->log, r);

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/* The handler's return for a decided request, which is then done. */

static ngx_int_t
ngx_http_rate_limit_verdict(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->delay_ms && ctx->state == NGX_HTTP_RATE_LIMIT_STATE_DECIDED
        && !ctx->held)
    {
        return ngx_http_rate_limit_hold(r, ctx);
    }

    if (!ctx->held) {
        ngx_http_rate_limit_metrics_request(ctx);
    }

    ctx->state = NGX_HTTP_RATE_LIMIT_STATE_DONE;

    switch (ctx->outcome) {

    case NGX_HTTP_RATE_LIMIT_REJECTED:
        rc = ctx->lcf->status;
        break;

    case NGX_HTTP_RATE_LIMIT_ERROR:
        rc = (ctx->lcf->fail_open || ctx->lcf->dry_run)
             ? NGX_DECLINED : NGX_HTTP_SERVICE_UNAVAILABLE;
        break;

    default:
        /* passed, or rejected in dry run: a pass grants nothing */
        rc = NGX_DECLINED;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "rate limit: verdict: %s%s, returns %i",
                   ngx_http_rate_limit_outcome_names[ctx->outcome],
                   ctx->cached ? " by the deny cache" : "", rc);

    return rc;
}


/*
 * Admitted, and already counted in Redis, but beyond delay= of some zone:
 * it waits its turn on the request's timer, as limit_req ... delay= does,
 * with no second Redis trip.  A client that leaves meanwhile ends the
 * request (ngx_http_test_reading), and the pool cleanup takes the timer.
 */

static ngx_int_t
ngx_http_rate_limit_hold(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "rate limit: passed, held for %M ms", ctx->delay_ms);

    ngx_http_rate_limit_metrics_request(ctx);

    ctx->held = 1;
    ctx->state = NGX_HTTP_RATE_LIMIT_STATE_HELD;

    ctx->wait.handler = ngx_http_rate_limit_delay_handler;
    ctx->wait.data = ctx;
    ctx->wait.log = r->connection->log;

    ngx_add_timer(&ctx->wait, ctx->delay_ms);

    r->read_event_handler = ngx_http_test_reading;

    return NGX_AGAIN;
}


static void
ngx_http_rate_limit_delay_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_ctx_t  *ctx = ev->data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "rate limit: delay over");

    ctx->state = NGX_HTTP_RATE_LIMIT_STATE_DECIDED;
    ngx_http_rate_limit_resume(ctx);
}


static void
ngx_http_rate_limit_log_rejection(ngx_http_request_t *r,
    ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_uint_t                   t;
    ngx_http_rate_limit_zone_t  *zone;

    if (r->connection->log->log_level < ctx->lcf->log_level) {
        return;
    }

    t = ctx->verdict.tightest;
    zone = ctx->zones[t];

    ngx_log_error(ctx->lcf->log_level, r->connection->log, 0,
                  "limiting requests%s by zone \"%V\", retry after %L s%s",
                  ctx->lcf->dry_run ? ", dry run," : "", &zone->name,
                  ctx->verdict.retry_after_s,
                  ctx->cached ? " (deny cache)"
                              : ctx->local ? " (local fallback)" : "");
}


static void
ngx_http_rate_limit_cleanup(void *data)
{
    ngx_http_rate_limit_ctx_t  *ctx = data;

    /* the request is going away: its command must not find it */

    if (ctx->op) {
        ngx_http_rate_limit_link_cancel(ctx->op);
        ctx->op = NULL;
    }

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    if (ctx->wait.posted) {
        ngx_delete_posted_event(&ctx->wait);
    }

    /* every way a request ends comes here: its leases end with it */

    ngx_http_rate_limit_lease_end(ctx);
    ngx_http_rate_limit_fall_back_end(ctx->request, ctx);
}


/*
 * The worker's deny cache of a zone.  Without a master process a reload
 * keeps the worker and its caches (see the README), so a zone of the new
 * configuration may have no cache here.
 */

static rl_core_cache_t *
ngx_http_rate_limit_cache(ngx_http_rate_limit_zone_t *zone)
{
    if (zone->index >= ngx_http_rate_limit_worker.ncaches) {
        return NULL;
    }

    return ngx_http_rate_limit_worker.caches[zone->index];
}


/* Names the window keys only; the script decides with Redis's clock. */

static uint64_t
ngx_http_rate_limit_wall_msec(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/*
 * The deny cache's clock: monotonic (a wall clock step must not stretch a
 * rejection), in 64-bit us (no wrap), read when asked.
 */

uint64_t
ngx_http_rate_limit_monotonic_usec(void)
{
#if (NGX_HAVE_CLOCK_MONOTONIC)
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
#else
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (uint64_t) tv.tv_sec * 1000000 + (uint64_t) tv.tv_usec;
#endif
}
