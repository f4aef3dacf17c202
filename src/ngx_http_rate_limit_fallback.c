
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
 * Concurrency zones (fallback=N, an in-progress count) would keep a count
 * per key here instead of a time, and give it back at the request's end.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_shm.h"
#include "ngx_http_rate_limit_fallback.h"


/* passed states dropped per decision, beyond what room needs */
#define NGX_HTTP_RATE_LIMIT_EXPIRE  2


typedef struct {
    ngx_rbtree_node_t           node;   /* key: crc32 of zone and key */
    ngx_queue_t                 queue;  /* most recently used first */
    uint64_t                    tat;    /* us, monotonic */
    size_t                      zone_len;
    size_t                      key_len;
    u_char                      data[1];  /* zone name, then the key */
} ngx_http_rate_limit_state_t;


static ngx_http_rate_limit_state_t *ngx_http_rate_limit_fallback_find(
    ngx_http_rate_limit_shm_t *sh, ngx_uint_t hash, ngx_str_t *zone,
    ngx_str_t *key);
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
    uint32_t                      hash;
    uint64_t                      now;
    ngx_http_rate_limit_shm_t    *sh;
    ngx_http_rate_limit_state_t  *st;

    sh = ctx->sh;

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, zone->name.data, zone->name.len);
    ngx_crc32_update(&hash, (u_char *) "", 1);
    ngx_crc32_update(&hash, key->data, key->len);
    ngx_crc32_final(hash);

    ngx_shmtx_lock(&ctx->pool->mutex);

    now = ngx_http_rate_limit_monotonic_usec();

    ngx_http_rate_limit_fallback_expire(ctx, now);

    st = ngx_http_rate_limit_fallback_find(sh, hash, &zone->name, key);

    if (st != NULL) {
        ngx_queue_remove(&st->queue);

    } else {
        st = ngx_http_rate_limit_shm_alloc_locked(ctx,
                             offsetof(ngx_http_rate_limit_state_t, data)
                             + zone->name.len + key->len);
        if (st == NULL) {
            ngx_shmtx_unlock(&ctx->pool->mutex);

            if (ngx_http_rate_limit_fallback_logged != ngx_time()) {
                ngx_http_rate_limit_fallback_logged = ngx_time();
                ngx_log_error(NGX_LOG_ERR, log, 0,
                              "rate_limit: no room in rate_limit_shm_size "
                              "for a fallback state of zone \"%V\", "
                              "fail policy", &zone->name);
            }

            return NGX_DECLINED;
        }

        st->node.key = hash;
        st->zone_len = zone->name.len;
        st->key_len = key->len;
        ngx_memcpy(st->data, zone->name.data, zone->name.len);
        ngx_memcpy(st->data + zone->name.len, key->data, key->len);
        st->tat = now;

        ngx_rbtree_insert(&sh->rbtree, &st->node);
    }

    ngx_queue_insert_head(&sh->lru, &st->queue);

    ngx_http_rate_limit_fallback_gcra(zone, &st->tat, now, cost, result);

    ngx_shmtx_unlock(&ctx->pool->mutex);

    return NGX_OK;
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

        if (st->tat > now) {
            return;
        }

        (void) ngx_http_rate_limit_fallback_evict_locked(ctx);
    }
}


ngx_int_t
ngx_http_rate_limit_fallback_evict_locked(ngx_http_rate_limit_shm_ctx_t *ctx)
{
    ngx_queue_t                  *q;
    ngx_http_rate_limit_state_t  *st;

    if (ngx_queue_empty(&ctx->sh->lru)) {
        return NGX_DECLINED;
    }

    q = ngx_queue_last(&ctx->sh->lru);
    st = ngx_queue_data(q, ngx_http_rate_limit_state_t, queue);

    ngx_queue_remove(q);
    ngx_rbtree_delete(&ctx->sh->rbtree, &st->node);
    ngx_slab_free_locked(ctx->pool, st);

    return NGX_OK;
}


static int64_t
ngx_http_rate_limit_ceil_ms(uint64_t us)
{
    return (int64_t) ((us + 999) / 1000);
}
