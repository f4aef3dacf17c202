
/*
 * ngx_http_rate_limit_module: the node's shared memory.
 *
 * One slab zone per node (rate_limit_shm_size), shared by the workers and
 * kept across reloads as limit_req keeps its zones: the metrics' records
 * (ngx_http_rate_limit_metrics.c) and the fallback's states
 * (ngx_http_rate_limit_fallback.c) live in it.  This file makes the zone,
 * lays out its header and allocates from it; it knows nothing of what the
 * records mean.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_SHM_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_SHM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"


/*
 * Processes that keep gauges at once: workers, and old workers that
 * finish their requests after a reload.  A process beyond them counts
 * everything but its gauges.
 */
#define NGX_HTTP_RATE_LIMIT_PROCS  32


typedef struct {
    /* fallback states: by key, and least recently used last */
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 lru;

    /* metrics records, never freed: the same names find them again */
    ngx_queue_t                 zones;
    ngx_queue_t                 nodes;
    ngx_uint_t                  nnodes;

    /* the process that keeps each gauge slot, 0: free */
    ngx_atomic_t                procs[NGX_HTTP_RATE_LIMIT_PROCS];
} ngx_http_rate_limit_shm_t;


typedef struct {
    ngx_http_rate_limit_shm_t  *sh;
    ngx_slab_pool_t            *pool;
    ngx_http_rate_limit_main_conf_t  *rmcf;  /* the cycle's */
} ngx_http_rate_limit_shm_ctx_t;


/* Adds the zone to the cycle being configured; at init_main_conf. */
ngx_int_t ngx_http_rate_limit_shm_add(ngx_conf_t *cf,
    ngx_http_rate_limit_main_conf_t *rmcf);

/* The zone of the running cycle, NULL when there is none. */
ngx_http_rate_limit_shm_ctx_t *ngx_http_rate_limit_shm_get(void);

/*
 * Allocates size bytes, zeroed, with the pool's mutex held by the caller.
 * When the slab is full the least recently used fallback states are
 * dropped to make room; NULL when even that is not enough.
 */
void *ngx_http_rate_limit_shm_alloc_locked(ngx_http_rate_limit_shm_ctx_t *ctx,
    size_t size);


#endif /* _NGX_HTTP_RATE_LIMIT_SHM_H_INCLUDED_ */
