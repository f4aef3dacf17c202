
/*
 * ngx_http_rate_limit_module: the local fallback decision in shared
 * memory.
 *
 * GCRA as the script's gcra decides it, with this node's monotonic clock
 * (one for every worker) in microseconds: a state is the key's
 * theoretical arrival time.  A state whose time has passed is as good as
 * none, so the oldest such are dropped as new ones come; when the memory
 * is full the least recently used are dropped whatever their time, as
 * limit_req does.  Touches only the shared memory's tree and queue, under
 * its mutex.
 *
 * Concurrency zones (fallback=N) keep an in-progress count per key
 * instead of a time, taken at a local admission and given back when the
 * request ends.  The count is kept per process, in the process's gauge
 * slot of the shared memory (ngx_http_rate_limit_metrics.c), with the pid
 * that took it: only the counts of slots whose process still holds the
 * slot and lives are summed, and a dead process's count is cleared when
 * it is seen.  Why not one shared number: a worker that dies mid-request
 * never gives its count back, and one number could not tell whose it
 * was; a slot's owner is known (the gauges' way).  A concurrency state
 * with a count of a live process is never dropped, whatever the memory.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_shm.h"
#include "ngx_http_rate_limit_fallback.h"
#include "ngx_http_rate_limit_metrics.h"


/* passed states dropped per decision, beyond what room needs */
#define NGX_HTTP_RATE_LIMIT_EXPIRE  2


/* a concurrency state's counts, one per process slot */
typedef struct {
    uint32_t                    n[NGX_HTTP_RATE_LIMIT_PROCS];
    ngx_pid_t                   pid[NGX_HTTP_RATE_LIMIT_PROCS]; /* n's */
} ngx_http_rate_limit_held_t;


typedef struct {
    ngx_rbtree_node_t           node;   /* key: crc32 of zone and key */
    ngx_queue_t                 queue;  /* most recently used first */
    uint64_t                    tat;    /* us, monotonic */
    ngx_http_rate_limit_held_t *held;   /* concurrency; NULL: gcra */
    size_t                      zone_len;
    size_t                      key_len;
    u_char                      data[1];  /* zone name, then the key */
} ngx_http_rate_limit_state_t;


static ngx_http_rate_limit_state_t *ngx_http_rate_limit_fallback_get(
    ngx_http_rate_limit_shm_ctx_t *ctx, ngx_http_rate_limit_zone_t *zone,
    ngx_str_t *key, uint64_t now, ngx_uint_t held, ngx_log_t *log);
static uint32_t ngx_http_rate_limit_fallback_hash(ngx_str_t *zone,
    ngx_str_t *key);
static ngx_http_rate_limit_state_t *ngx_http_rate_limit_fallback_find(
    ngx_http_rate_limit_shm_t *sh, ngx_uint_t hash, ngx_str_t *zone,
    ngx_str_t *key);
static ngx_uint_t ngx_http_rate_limit_fallback_live(
    ngx_http_rate_limit_shm_t *sh, ngx_http_rate_limit_held_t *held);
static ngx_uint_t ngx_http_rate_limit_fallback_busy(
    ngx_http_rate_limit_shm_t *sh, ngx_http_rate_limit_state_t *st,
    uint64_t now);
static void ngx_http_rate_limit_fallback_drop(
    ngx_http_rate_limit_shm_ctx_t *ctx, ngx_http_rate_limit_state_t *st);
static ngx_int_t ngx_http_rate_limit_fallback_cmp(ngx_uint_t hash,
    u_char *zone, size_t zone_len, u_char *key, size_t key_len,
    ngx_http_rate_limit_state_t *st);
static void ngx_http_rate_limit_fallback_expire(
    ngx_http_rate_limit_shm_ctx_t *ctx, uint64_t now);
static void ngx_http_rate_limit_fallback_gcra(
    ngx_http_rate_limit_zone_t *zone, uint64_t *tat, uint64_t now,
    uint64_t cost, rl_core_zone_result_t *result);
static int64_t ngx_http_rate_limit_ceil_ms(uint64_t us);


/* "no room" once a second at most: it would come with every request */
static time_t  ngx_http_rate_limit_fallback_logged;


ngx_int_t
ngx_http_rate_limit_fallback_decide(ngx_http_rate_limit_shm_ctx_t *ctx,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *key, uint64_t cost,
    ngx_log_t *log, rl_core_zone_result_t *result)
{
    uint64_t                      now;
    ngx_http_rate_limit_state_t  *st;

    ngx_shmtx_lock(&ctx->pool->mutex);

    now = ngx_http_rate_limit_monotonic_usec();

    st = ngx_http_rate_limit_fallback_get(ctx, zone, key, now, 0, log);
    if (st == NULL) {
        ngx_shmtx_unlock(&ctx->pool->mutex);
        return NGX_DECLINED;
    }

    ngx_http_rate_limit_fallback_gcra(zone, &st->tat, now, cost, result);

    ngx_shmtx_unlock(&ctx->pool->mutex);

    return NGX_OK;
}


/*
 * A concurrency zone: admitted iff fewer than fallback=N of the key are in
 * progress on this node; the answer is the script's, with the lease's
 * length for the times a lease's expiry would give (no lease is taken).
 */

ngx_int_t
ngx_http_rate_limit_fallback_count(ngx_http_rate_limit_shm_ctx_t *ctx,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *key, ngx_log_t *log,
    rl_core_zone_result_t *result)
{
    ngx_int_t                     slot;
    ngx_uint_t                    live;
    ngx_http_rate_limit_held_t   *held;
    ngx_http_rate_limit_state_t  *st;

    slot = ngx_http_rate_limit_metrics_own_slot();

    if (slot == -1) {
        /* a count nobody could tell from a dead process's */
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&ctx->pool->mutex);

    st = ngx_http_rate_limit_fallback_get(ctx, zone, key,
                                          ngx_http_rate_limit_monotonic_usec(),
                                          1, log);
    if (st == NULL) {
        ngx_shmtx_unlock(&ctx->pool->mutex);
        return NGX_DECLINED;
    }

    held = st->held;
    live = ngx_http_rate_limit_fallback_live(ctx->sh, held);

    result->allowed = live < zone->fallback_count;

    if (result->allowed) {
        if (held->pid[slot] != ngx_pid) {
            held->pid[slot] = ngx_pid;
            held->n[slot] = 0;
        }

        held->n[slot]++;
        live++;
    }

    ngx_shmtx_unlock(&ctx->pool->mutex);

    result->limit = zone->fallback_count;
    result->remaining = zone->fallback_count - ngx_min(live,
                                                       zone->fallback_count);
    result->reset_after_ms = (int64_t) zone->limit.period_s * 1000;
    result->retry_after_ms = result->remaining ? 0 : result->reset_after_ms;

    return NGX_OK;
}


void
ngx_http_rate_limit_fallback_release(ngx_http_rate_limit_shm_ctx_t *ctx,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *key)
{
    ngx_int_t                     slot;
    ngx_http_rate_limit_held_t   *held;
    ngx_http_rate_limit_state_t  *st;

    slot = ngx_http_rate_limit_metrics_own_slot();

    if (slot == -1) {
        return;
    }

    ngx_shmtx_lock(&ctx->pool->mutex);

    st = ngx_http_rate_limit_fallback_find(ctx->sh,
                                   ngx_http_rate_limit_fallback_hash(
                                       &zone->name, key),
                                   &zone->name, key);

    /* never dropped while counted: found, unless a new shm size came */

    if (st != NULL && st->held != NULL) {
        held = st->held;

        if (held->pid[slot] == ngx_pid && held->n[slot] > 0) {
            held->n[slot]--;
        }
    }

    ngx_shmtx_unlock(&ctx->pool->mutex);
}


/*
 * The state of zone and key, made when there is none (held: with counts),
 * first in the queue; with the mutex held.  NULL when there is no room
 * (logged once a second).
 */

static ngx_http_rate_limit_state_t *
ngx_http_rate_limit_fallback_get(ngx_http_rate_limit_shm_ctx_t *ctx,
    ngx_http_rate_limit_zone_t *zone, ngx_str_t *key, uint64_t now,
    ngx_uint_t held, ngx_log_t *log)
{
    size_t                        size;
    uint32_t                      hash;
    ngx_http_rate_limit_shm_t    *sh;
    ngx_http_rate_limit_state_t  *st;

    sh = ctx->sh;
    hash = ngx_http_rate_limit_fallback_hash(&zone->name, key);

    ngx_http_rate_limit_fallback_expire(ctx, now);

    st = ngx_http_rate_limit_fallback_find(sh, hash, &zone->name, key);

    if (st != NULL) {
        ngx_queue_remove(&st->queue);
        ngx_queue_insert_head(&sh->lru, &st->queue);
        return st;
    }

    size = offsetof(ngx_http_rate_limit_state_t, data) + zone->name.len
           + key->len;

    if (held) {
        size += NGX_ALIGNMENT + sizeof(ngx_http_rate_limit_held_t);
    }

    st = ngx_http_rate_limit_shm_alloc_locked(ctx, size);

    if (st == NULL) {
        if (ngx_http_rate_limit_fallback_logged != ngx_time()) {
            ngx_http_rate_limit_fallback_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "rate_limit: no room in rate_limit_shm_size "
                          "for a fallback state of zone \"%V\", "
                          "fail policy", &zone->name);
        }

        return NULL;
    }

    st->node.key = hash;
    st->zone_len = zone->name.len;
    st->key_len = key->len;
    ngx_memcpy(st->data, zone->name.data, zone->name.len);
    ngx_memcpy(st->data + zone->name.len, key->data, key->len);
    st->tat = now;

    if (held) {
        /* zeroed by the allocation: no counts */
        st->held = (ngx_http_rate_limit_held_t *)
                       ngx_align_ptr(st->data + zone->name.len + key->len,
                                     NGX_ALIGNMENT);
    }

    ngx_rbtree_insert(&sh->rbtree, &st->node);
    ngx_queue_insert_head(&sh->lru, &st->queue);

    return st;
}


static uint32_t
ngx_http_rate_limit_fallback_hash(ngx_str_t *zone, ngx_str_t *key)
{
    uint32_t  hash;

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, zone->data, zone->len);
    ngx_crc32_update(&hash, (u_char *) "", 1);
    ngx_crc32_update(&hash, key->data, key->len);
    ngx_crc32_final(hash);

    return hash;
}


/*
 * The requests in progress: the counts of processes that still hold their
 * slot and live.  A dead one's count is cleared here, once seen.
 */

static ngx_uint_t
ngx_http_rate_limit_fallback_live(ngx_http_rate_limit_shm_t *sh,
    ngx_http_rate_limit_held_t *held)
{
    ngx_uint_t  i, live;
    ngx_pid_t   pid;

    live = 0;

    for (i = 0; i < NGX_HTTP_RATE_LIMIT_PROCS; i++) {
        if (held->n[i] == 0) {
            continue;
        }

        pid = held->pid[i];

        if (pid != (ngx_pid_t) sh->procs[i]
            || (pid != ngx_pid && !ngx_http_rate_limit_metrics_alive(pid)))
        {
            held->n[i] = 0;
            continue;
        }

        live += held->n[i];
    }

    return live;
}


/* A state that decides something: a time ahead, or requests in progress. */

static ngx_uint_t
ngx_http_rate_limit_fallback_busy(ngx_http_rate_limit_shm_t *sh,
    ngx_http_rate_limit_state_t *st, uint64_t now)
{
    if (st->held == NULL) {
        return st->tat > now;
    }

    return ngx_http_rate_limit_fallback_live(sh, st->held) != 0;
}


/*
 * T, the emission interval, and tau = burst x T come from the fallback
 * rate.  Admitted when the arrival time is at most tau ahead; the answer
 * is the script's: remaining is what could still pass now, retry the time
 * until one more could.
 */

static void
ngx_http_rate_limit_fallback_gcra(ngx_http_rate_limit_zone_t *zone,
    uint64_t *tat, uint64_t now, uint64_t cost, rl_core_zone_result_t *result)
{
    uint64_t  t, tau, at, wait, room;

    t = zone->fallback_t_us;
    tau = zone->fallback_tau_us;

    at = ngx_max(*tat, now);
    wait = at - now;

    result->limit = zone->fallback_burst + 1;

    /*
     * As the script's gcra: a cost of C takes C emission intervals and
     * passes only if all C fit now (0 checks that one would); a request
     * that does not fit takes nothing.
     */

    room = wait <= tau ? (tau - wait) / t + 1 : 0;

    if (cost > room || room == 0) {
        result->allowed = 0;
        result->remaining = room;
        result->reset_after_ms = ngx_http_rate_limit_ceil_ms(wait);
        result->retry_after_ms = room
                                 ? 0
                                 : ngx_http_rate_limit_ceil_ms(wait - tau);
        return;
    }

    at += cost * t;
    *tat = at;
    wait = at - now;

    result->allowed = 1;
    result->remaining = wait <= tau ? (int64_t) ((tau - wait) / t + 1) : 0;
    result->reset_after_ms = ngx_http_rate_limit_ceil_ms(wait);
    result->retry_after_ms = result->remaining
                             ? 0
                             : ngx_http_rate_limit_ceil_ms(wait - tau);
}


static ngx_http_rate_limit_state_t *
ngx_http_rate_limit_fallback_find(ngx_http_rate_limit_shm_t *sh,
    ngx_uint_t hash, ngx_str_t *zone, ngx_str_t *key)
{
    ngx_int_t                     rc;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_rate_limit_state_t  *st;

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {
        st = (ngx_http_rate_limit_state_t *) node;

        rc = ngx_http_rate_limit_fallback_cmp(hash, zone->data, zone->len,
                                              key->data, key->len, st);
        if (rc == 0) {
            return st;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


void
ngx_http_rate_limit_fallback_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_rate_limit_state_t   *st;

    st = (ngx_http_rate_limit_state_t *) node;

    for ( ;; ) {
        p = ngx_http_rate_limit_fallback_cmp(node->key, st->data,
                                             st->zone_len,
                                             st->data + st->zone_len,
                                             st->key_len,
                                             (ngx_http_rate_limit_state_t *)
                                             temp)
            < 0 ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * One order for the tree, so equal hashes find each other whatever the
 * rotations did: the hash, then the zone name, then the key.
 */

static ngx_int_t
ngx_http_rate_limit_fallback_cmp(ngx_uint_t hash, u_char *zone,
    size_t zone_len, u_char *key, size_t key_len,
    ngx_http_rate_limit_state_t *st)
{
    ngx_int_t  rc;

    if (hash != st->node.key) {
        return hash < st->node.key ? -1 : 1;
    }

    rc = ngx_memn2cmp(zone, st->data, zone_len, st->zone_len);
    if (rc != 0) {
        return rc;
    }

    return ngx_memn2cmp(key, st->data + st->zone_len, key_len, st->key_len);
}


/* A few of the oldest states whose time has passed: they decide nothing. */

static void
ngx_http_rate_limit_fallback_expire(ngx_http_rate_limit_shm_ctx_t *ctx,
    uint64_t now)
{
    ngx_uint_t                    n;
    ngx_queue_t                  *q;
    ngx_http_rate_limit_state_t  *st;

    for (n = 0; n < NGX_HTTP_RATE_LIMIT_EXPIRE; n++) {
        if (ngx_queue_empty(&ctx->sh->lru)) {
            return;
        }

        q = ngx_queue_last(&ctx->sh->lru);
        st = ngx_queue_data(q, ngx_http_rate_limit_state_t, queue);

        if (ngx_http_rate_limit_fallback_busy(ctx->sh, st, now)) {
            return;
        }

        ngx_http_rate_limit_fallback_drop(ctx, st);
    }
}


/*
 * The least recently used state that may go: a gcra state whatever its
 * time (as limit_req), a concurrency state only with no requests in
 * progress.  A counted one is moved first, so that each is passed over
 * once until the queue comes round to it again.
 */

ngx_int_t
ngx_http_rate_limit_fallback_evict_locked(ngx_http_rate_limit_shm_ctx_t *ctx)
{
    ngx_queue_t                  *q;
    ngx_http_rate_limit_state_t  *st, *first;

    first = NULL;

    while (!ngx_queue_empty(&ctx->sh->lru)) {
        q = ngx_queue_last(&ctx->sh->lru);
        st = ngx_queue_data(q, ngx_http_rate_limit_state_t, queue);

        if (st == first) {
            break;      /* every state is counted */
        }

        if (st->held == NULL
            || ngx_http_rate_limit_fallback_live(ctx->sh, st->held) == 0)
        {
            ngx_http_rate_limit_fallback_drop(ctx, st);
            return NGX_OK;
        }

        if (first == NULL) {
            first = st;
        }

        ngx_queue_remove(q);
        ngx_queue_insert_head(&ctx->sh->lru, q);
    }

    return NGX_DECLINED;
}


static void
ngx_http_rate_limit_fallback_drop(ngx_http_rate_limit_shm_ctx_t *ctx,
    ngx_http_rate_limit_state_t *st)
{
    ngx_queue_remove(&st->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, &st->node);
    ngx_slab_free_locked(ctx->pool, st);
}


static int64_t
ngx_http_rate_limit_ceil_ms(uint64_t us)
{
    return (int64_t) ((us + 999) / 1000);
}
