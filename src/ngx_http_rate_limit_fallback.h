
/*
 * ngx_http_rate_limit_module: the local fallback decision.
 *
 * A zone with fallback= whose Redis decision failed is decided here, in
 * the node's shared memory, by every worker alike: GCRA at the fallback
 * rate (an in-progress count for concurrency zones), one state per zone
 * and client key, in a red-black tree with the
 * least recently used state last in a queue (as limit_req keeps its
 * states), evicted when the memory is full.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_FALLBACK_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_FALLBACK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_shm.h"


/*
 * Decides zone for key now, taking cost units (0: checks), and fills
 * *result as the script would (the same invariants, milliseconds rounded
 * up).  NGX_OK, or NGX_DECLINED when
 * there is no room even after eviction (the caller applies the fail
 * policy; logged here once a second).
 */
ngx_int_t ngx_http_rate_limit_fallback_decide(
    ngx_http_rate_limit_shm_ctx_t *ctx, ngx_http_rate_limit_zone_t *zone,
    ngx_str_t *key, uint64_t cost, ngx_log_t *log,
    rl_core_zone_result_t *result);

/*
 * A concurrency zone (fallback=N) for key: admitted iff fewer than N of
 * the key are in progress on this node, and then counted for this
 * process until ngx_http_rate_limit_fallback_release.  *result as the
 * script's concurrency reply.  NGX_OK, or NGX_DECLINED when there is no
 * room, or this process has no slot to count in (the fail policy).
 */
ngx_int_t ngx_http_rate_limit_fallback_count(
    ngx_http_rate_limit_shm_ctx_t *ctx, ngx_http_rate_limit_zone_t *zone,
    ngx_str_t *key, ngx_log_t *log, rl_core_zone_result_t *result);

/* Gives back one count that ngx_http_rate_limit_fallback_count took. */
void ngx_http_rate_limit_fallback_release(
    ngx_http_rate_limit_shm_ctx_t *ctx, ngx_http_rate_limit_zone_t *zone,
    ngx_str_t *key);

/* The tree's insert function, for the zone's init. */
void ngx_http_rate_limit_fallback_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);

/*
 * Drops the least recently used state (never one counting requests in
 * progress), with the mutex held.  NGX_OK, or
 * NGX_DECLINED when there is none.
 */
ngx_int_t ngx_http_rate_limit_fallback_evict_locked(
    ngx_http_rate_limit_shm_ctx_t *ctx);


#endif /* _NGX_HTTP_RATE_LIMIT_FALLBACK_H_INCLUDED_ */
