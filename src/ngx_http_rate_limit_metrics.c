
/*
 * ngx_http_rate_limit_module: the metrics' records in shared memory, and
 * what the request path and the link count in them.
 *
 * Counters and histograms are shared by every process of the node and
 * only ever grow, by atomic adds.  Gauges (connections, pending commands)
 * are kept per process in a slot of each node's record, each process
 * writing only its own; the text (ngx_http_rate_limit_metrics_text.c)
 * sums the slots of processes that are alive, so a worker that crashed
 * leaves no connection counted.  Touches the shared memory only.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_shm.h"
#include "ngx_http_rate_limit_metrics.h"


/* nodes a node's shared memory names at most (cluster nodes come, go) */
#define NGX_HTTP_RATE_LIMIT_MAX_NODES  1024


static ngx_int_t ngx_http_rate_limit_metrics_zone_record(
    ngx_http_rate_limit_shm_ctx_t *ctx, ngx_http_rate_limit_zone_t *zone);


/* this process's gauge slot, -1: none */
static ngx_int_t  ngx_http_rate_limit_metrics_slot = -1;


/* the buckets' upper bounds in us (+Inf after them) */
static uint64_t  ngx_http_rate_limit_bucket_us[] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000
};


ngx_int_t
ngx_http_rate_limit_metrics_init_zone(ngx_http_rate_limit_shm_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_http_rate_limit_zone_t  **zones;

    zones = ctx->rmcf->zones.elts;
    rc = NGX_OK;

    /* old workers may be naming nodes meanwhile */

    ngx_shmtx_lock(&ctx->pool->mutex);

    for (i = 0; i < ctx->rmcf->zones.nelts; i++) {
        rc = ngx_http_rate_limit_metrics_zone_record(ctx, zones[i]);
        if (rc != NGX_OK) {
            break;
        }
    }

    ngx_shmtx_unlock(&ctx->pool->mutex);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_EMERG, ngx_cycle->log, 0,
                      "rate_limit: no room for the metrics of zone \"%V\" "
                      "in rate_limit_shm_size %uz", &zones[i]->name,
                      ctx->rmcf->shm_size);
    }

    return rc;
}


/* The zone's record: the one a former configuration made, or a new one. */

static ngx_int_t
ngx_http_rate_limit_metrics_zone_record(ngx_http_rate_limit_shm_ctx_t *ctx,
    ngx_http_rate_limit_zone_t *zone)
{
    ngx_queue_t                         *q;
    ngx_http_rate_limit_zone_metrics_t  *zm;

    for (q = ngx_queue_head(&ctx->sh->zones);
         q != ngx_queue_sentinel(&ctx->sh->zones);
         q = ngx_queue_next(q))
    {
        zm = ngx_queue_data(q, ngx_http_rate_limit_zone_metrics_t, queue);

        if (zm->len == zone->name.len
            && ngx_memcmp(zm->name, zone->name.data, zm->len) == 0)
        {
            zone->metrics = zm;
            return NGX_OK;
        }
    }

    zm = ngx_http_rate_limit_shm_alloc_locked(ctx,
                                   sizeof(ngx_http_rate_limit_zone_metrics_t));
    if (zm == NULL) {
        return NGX_ERROR;
    }

    zm->len = zone->name.len;
    ngx_memcpy(zm->name, zone->name.data, zm->len);
    ngx_queue_insert_tail(&ctx->sh->zones, &zm->queue);

    zone->metrics = zm;

    return NGX_OK;
}


void
ngx_http_rate_limit_metrics_init_worker(void)
{
    ngx_uint_t                           i;
    ngx_pid_t                            pid;
    ngx_queue_t                         *q;
    ngx_http_rate_limit_shm_t           *sh;
    ngx_http_rate_limit_shm_ctx_t       *ctx;
    ngx_http_rate_limit_node_metrics_t  *node;

    ctx = ngx_http_rate_limit_shm_get();
    if (ctx == NULL) {
        return;
    }

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->pool->mutex);

    for (i = 0; i < NGX_HTTP_RATE_LIMIT_PROCS; i++) {
        pid = (ngx_pid_t) sh->procs[i];

        if (pid == 0 || !ngx_http_rate_limit_metrics_alive(pid)) {
            break;
        }
    }

    if (i < NGX_HTTP_RATE_LIMIT_PROCS) {

        /* what a process that died left in the slot is not ours */

        for (q = ngx_queue_head(&sh->nodes);
             q != ngx_queue_sentinel(&sh->nodes);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_rate_limit_node_metrics_t,
                                  queue);
            ngx_memzero((void *) node->gauges[i], sizeof(node->gauges[i]));
        }

        sh->procs[i] = (ngx_atomic_uint_t) ngx_pid;
        ngx_http_rate_limit_metrics_slot = i;
    }

    ngx_shmtx_unlock(&ctx->pool->mutex);

    if (ngx_http_rate_limit_metrics_slot == -1) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "rate_limit: more than %d processes keep redis "
                      "gauges, this one's are not counted",
                      NGX_HTTP_RATE_LIMIT_PROCS);
    }
}


void
ngx_http_rate_limit_metrics_exit_worker(void)
{
    ngx_http_rate_limit_shm_ctx_t  *ctx;

    ctx = ngx_http_rate_limit_shm_get();

    if (ctx == NULL || ngx_http_rate_limit_metrics_slot == -1) {
        return;
    }

    /* the link has taken back its connections: the slot is all zero */

    ctx->sh->procs[ngx_http_rate_limit_metrics_slot] = 0;
    ngx_http_rate_limit_metrics_slot = -1;
}


ngx_http_rate_limit_node_metrics_t *
ngx_http_rate_limit_metrics_node(ngx_str_t *name, ngx_log_t *log)
{
    ngx_queue_t                         *q;
    ngx_http_rate_limit_shm_t           *sh;
    ngx_http_rate_limit_shm_ctx_t       *ctx;
    ngx_http_rate_limit_node_metrics_t  *node;

    ctx = ngx_http_rate_limit_shm_get();
    if (ctx == NULL) {
        return NULL;
    }

    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->pool->mutex);

    for (q = ngx_queue_head(&sh->nodes);
         q != ngx_queue_sentinel(&sh->nodes);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_rate_limit_node_metrics_t, queue);

        if (node->len == name->len
            && ngx_memcmp(node->name, name->data, name->len) == 0)
        {
            goto done;
        }
    }

    node = NULL;

    if (sh->nnodes < NGX_HTTP_RATE_LIMIT_MAX_NODES) {
        node = ngx_http_rate_limit_shm_alloc_locked(ctx,
                              sizeof(ngx_http_rate_limit_node_metrics_t)
                              + name->len);
    }

    if (node != NULL) {
        node->len = name->len;
        ngx_memcpy(node->name, name->data, name->len);
        ngx_queue_insert_tail(&sh->nodes, &node->queue);
        sh->nnodes++;
    }

done:

    ngx_shmtx_unlock(&ctx->pool->mutex);

    if (node == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "rate_limit: no room in rate_limit_shm_size for the "
                      "metrics of redis \"%V\", not counted", name);
    }

    return node;
}


/*
 * Each zone counts what it did to the request: the zones that refused it
 * count the refusal, and when it went on, every zone counts how it let it
 * through.  A zone that allowed a request that another refused counts
 * nothing, nor does a zone the deny cache left unasked.
 */

void
ngx_http_rate_limit_metrics_request(ngx_http_rate_limit_ctx_t *ctx)
{
    ngx_uint_t                          i, m, went_on, policy_passes;
    ngx_http_rate_limit_zone_metrics_t  *zm;

    policy_passes = ctx->lcf->fail_open || ctx->lcf->dry_run;

    switch (ctx->outcome) {

    case NGX_HTTP_RATE_LIMIT_PASSED:
    case NGX_HTTP_RATE_LIMIT_REJECTED_DRY_RUN:
        went_on = 1;
        break;

    case NGX_HTTP_RATE_LIMIT_ERROR:
        went_on = policy_passes;
        break;

    default:
        went_on = 0;
    }

    for (i = 0; i < ctx->nzones; i++) {
        zm = ctx->zones[i]->metrics;

        if (zm == NULL) {
            continue;
        }

        if (!ctx->answered[i]) {
            if (ctx->cached || ctx->outcome != NGX_HTTP_RATE_LIMIT_ERROR) {
                continue;
            }

            m = policy_passes ? NGX_HTTP_RATE_LIMIT_M_ERROR_PASSED
                              : NGX_HTTP_RATE_LIMIT_M_ERROR_REJECTED;

        } else if (!ctx->results[i].allowed) {
            if (ctx->lcf->dry_run) {
                m = NGX_HTTP_RATE_LIMIT_M_DRY_RUN_REJECTED;

            } else if (ctx->cached) {
                m = NGX_HTTP_RATE_LIMIT_M_REJECTED_CACHED;

            } else if (ctx->answered[i] == NGX_HTTP_RATE_LIMIT_BY_LOCAL) {
                m = NGX_HTTP_RATE_LIMIT_M_LOCAL_REJECTED;

            } else {
                m = NGX_HTTP_RATE_LIMIT_M_REJECTED;
            }

        } else if (!went_on) {
            continue;

        } else if (ctx->answered[i] == NGX_HTTP_RATE_LIMIT_BY_LOCAL) {
            m = NGX_HTTP_RATE_LIMIT_M_LOCAL_PASSED;

        } else if (ctx->delay_ms && ctx->results[i].delay_ms) {
            m = NGX_HTTP_RATE_LIMIT_M_DELAYED;

        } else {
            m = NGX_HTTP_RATE_LIMIT_M_PASSED;
        }

        (void) ngx_atomic_fetch_add(&zm->requests[m], 1);
    }
}


void
ngx_http_rate_limit_metrics_charged(ngx_http_rate_limit_zone_t *zone,
    uint64_t units)
{
    if (zone->metrics) {
        (void) ngx_atomic_fetch_add(&zone->metrics->charged,
                                    (ngx_atomic_int_t) units);
    }
}


void
ngx_http_rate_limit_metrics_command(ngx_http_rate_limit_node_metrics_t *node,
    ngx_http_rate_limit_cmd_result_e result, uint64_t written_us)
{
    uint64_t    us;
    ngx_uint_t  b;

    if (node == NULL) {
        return;
    }

    /* NGX_HTTP_RATE_LIMIT_CMD_RESULTS: only the latency */

    if (result < NGX_HTTP_RATE_LIMIT_CMD_RESULTS) {
        (void) ngx_atomic_fetch_add(&node->commands[result], 1);
    }

    if (written_us == 0) {
        return;
    }

    us = ngx_http_rate_limit_monotonic_usec() - written_us;

    for (b = 0; b < NGX_HTTP_RATE_LIMIT_BUCKETS - 1; b++) {
        if (us <= ngx_http_rate_limit_bucket_us[b]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&node->buckets[b], 1);
    (void) ngx_atomic_fetch_add(&node->sum_us, (ngx_atomic_int_t) us);
}


void
ngx_http_rate_limit_metrics_conn(ngx_http_rate_limit_conn_metrics_t *cm,
    ngx_http_rate_limit_node_metrics_t *node, ngx_uint_t state,
    ngx_uint_t pending)
{
    ngx_int_t      s;
    ngx_uint_t     g;
    ngx_atomic_t  *old, *now;

    s = ngx_http_rate_limit_metrics_slot;

    if (s == -1) {
        return;
    }

    switch (state) {

    case RL_CORE_CONN_UP:
        g = NGX_HTTP_RATE_LIMIT_G_UP;
        break;

    case RL_CORE_CONN_DOWN:
        g = NGX_HTTP_RATE_LIMIT_G_DOWN;
        break;

    default: /* connecting, handshake */
        g = NGX_HTTP_RATE_LIMIT_G_CONNECTING;
    }

    if (node == NULL) {
        pending = 0;
    }

    if (cm->node == node && cm->state == g + 1 && cm->pending == pending) {
        return;
    }

    /* this slot is this process's alone: the adds never race */

    if (cm->node) {
        old = cm->node->gauges[s];
        (void) ngx_atomic_fetch_add(&old[cm->state - 1], -1);
        (void) ngx_atomic_fetch_add(&old[NGX_HTTP_RATE_LIMIT_G_PENDING],
                                    - (ngx_atomic_int_t) cm->pending);
    }

    cm->node = node;
    cm->state = 0;
    cm->pending = 0;

    if (node == NULL) {
        return;
    }

    now = node->gauges[s];
    (void) ngx_atomic_fetch_add(&now[g], 1);
    (void) ngx_atomic_fetch_add(&now[NGX_HTTP_RATE_LIMIT_G_PENDING],
                                (ngx_atomic_int_t) pending);

    cm->state = g + 1;
    cm->pending = pending;
}


ngx_int_t
ngx_http_rate_limit_metrics_own_slot(void)
{
    return ngx_http_rate_limit_metrics_slot;
}


ngx_uint_t
ngx_http_rate_limit_metrics_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno == NGX_EPERM;
}
