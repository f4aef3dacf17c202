
/*
 * ngx_http_rate_limit_module: distributed rate limiting decided by Redis.
 *
 * This file ties the module together: its tables, the access phase
 * registration and the per-worker life.  The directives live in
 * ngx_http_rate_limit_conf.c, the decision in ngx_http_rate_limit_handler.c,
 * the Redis link in ngx_http_rate_limit_redis.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"


static ngx_int_t ngx_http_rate_limit_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_rate_limit_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_rate_limit_init_process(ngx_cycle_t *cycle);
static void ngx_http_rate_limit_exit_process(ngx_cycle_t *cycle);


static ngx_http_module_t  ngx_http_rate_limit_module_ctx = {
    ngx_http_rate_limit_preconfiguration,  /* preconfiguration */
    ngx_http_rate_limit_postconfiguration, /* postconfiguration */

    ngx_http_rate_limit_create_main_conf,  /* create main configuration */
    ngx_http_rate_limit_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_rate_limit_create_loc_conf,   /* create location configuration */
    ngx_http_rate_limit_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_rate_limit_module = {
    NGX_MODULE_V1,
    &ngx_http_rate_limit_module_ctx,       /* module context */
    ngx_http_rate_limit_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_rate_limit_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_rate_limit_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_rate_limit_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_rate_limit_add_variables(cf);
}


static ngx_int_t
ngx_http_rate_limit_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * The access phase runs its handlers in the reverse order of this
     * array, and a dynamic module's postconfiguration comes after every
     * static module's: pushed last, the handler runs first, before allow,
     * deny, auth_basic and auth_request.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_rate_limit_handler;

    return ngx_http_rate_limit_filter_init(cf);
}


static ngx_int_t
ngx_http_rate_limit_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_rate_limit_init_worker(cycle);
}


static void
ngx_http_rate_limit_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_rate_limit_exit_worker(cycle);
}
