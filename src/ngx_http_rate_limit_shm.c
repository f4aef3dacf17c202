
/*
 * ngx_http_rate_limit_module: the node's shared memory zone.
 *
 * Made whenever the module is configured (rate_limit_redis or
 * rate_limit_metrics): counting costs an atomic add, and a metrics
 * location added by a later reload then finds the counts since the start.
 * A reload with the same size keeps the zone and what is in it (NGINX
 * hands init_zone the old zone's data, as for limit_req); another size
 * starts a fresh one.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_shm.h"
#include "ngx_http_rate_limit_metrics.h"
#include "ngx_http_rate_limit_fallback.h"


static ngx_int_t ngx_http_rate_limit_shm_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* a name no limit_req or other zone of a configuration is likely to take */
static ngx_str_t  ngx_http_rate_limit_shm_name =
    ngx_string("ngx_http_rate_limit_module");


ngx_int_t
ngx_http_rate_limit_shm_add(ngx_conf_t *cf,
    ngx_http_rate_limit_main_conf_t *rmcf)
{
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_rate_limit_shm_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_rate_limit_shm_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->rmcf = rmcf;

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_rate_limit_shm_name,
                                     rmcf->shm_size,
                                     &ngx_http_rate_limit_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_rate_limit_shm_init_zone;
    shm_zone->data = ctx;

    rmcf->shm = shm_zone;

    return NGX_OK;
}


ngx_http_rate_limit_shm_ctx_t *
ngx_http_rate_limit_shm_get(void)
{
    ngx_http_rate_limit_main_conf_t  *rmcf;

    if (ngx_cycle->conf_ctx == NULL
        || ngx_cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NULL;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_rate_limit_module);

    if (rmcf == NULL || rmcf->shm == NULL) {
        return NULL;
    }

    return rmcf->shm->data;
}


static ngx_int_t
ngx_http_rate_limit_shm_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_rate_limit_shm_ctx_t  *octx = data;

    size_t                          len;
    ngx_http_rate_limit_shm_t      *sh;
    ngx_http_rate_limit_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: the same memory, the new configuration's zones */
        ctx->sh = octx->sh;
        ctx->pool = octx->pool;

        return ngx_http_rate_limit_metrics_init_zone(ctx);
    }

    ctx->pool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->pool->data;
        return ngx_http_rate_limit_metrics_init_zone(ctx);
    }

    sh = ngx_slab_alloc(ctx->pool, sizeof(ngx_http_rate_limit_shm_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_rate_limit_shm_t));

    ctx->sh = sh;
    ctx->pool->data = sh;

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_rate_limit_fallback_insert_value);
    ngx_queue_init(&sh->lru);
    ngx_queue_init(&sh->zones);
    ngx_queue_init(&sh->nodes);

    len = sizeof(" in rate_limit shared memory") - 1;

    ctx->pool->log_ctx = ngx_slab_alloc(ctx->pool, len + 1);
    if (ctx->pool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->pool->log_ctx, " in rate_limit shared memory%Z");

    /* a full slab is the fallback's to handle (eviction), and it logs */
    ctx->pool->log_nomem = 0;

    return ngx_http_rate_limit_metrics_init_zone(ctx);
}


void *
ngx_http_rate_limit_shm_alloc_locked(ngx_http_rate_limit_shm_ctx_t *ctx,
    size_t size)
{
    void  *p;

    for ( ;; ) {
        p = ngx_slab_alloc_locked(ctx->pool, size);

        if (p != NULL) {
            ngx_memzero(p, size);
            return p;
        }

        if (ngx_http_rate_limit_fallback_evict_locked(ctx) != NGX_OK) {
            return NULL;
        }
    }
}
