
/*
 * ngx_http_rate_limit_module: distributed rate limiting decided by Redis.
 *
 * This file ties the module together: its tables, the access phase
 * registration and the per-worker life.  The directives live in
 * ngx_http_rate_limit_conf.c (the rules in ngx_http_rate_limit_rule.c), the
 * decision in ngx_http_rate_limit_handler.c, the charges after the response
 * in ngx_http_rate_limit_charge.c, the Redis link in
 * ngx_http_rate_limit_link.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_rate_limit_module.h"


static ngx_int_t ngx_http_rate_limit_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_rate_limit_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_rate_limit_init_module(ngx_cycle_t *cycle);
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
    ngx_http_rate_limit_init_module,       /* init module */
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
     * array.  A module loaded after this one may still push its own:
     * init_module moves the handler to the front once the phase engine
     * is built.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_rate_limit_handler;

    /* rate_limit_charge, after the response */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_rate_limit_charge_handler;

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


/*
 * The handler must run first in the access phase, before allow, deny,
 * auth_basic, auth_request and any other module's, whatever the
 * load_module order (a dynamic module's postconfiguration runs in that
 * order, and a later one's handler would run before ours).  The phase
 * engine is built when the http block ends, before init_module: there
 * the handler is moved to the first of the access phase's entries.  All
 * those entries share the checker and the next phase's index, so only the
 * handlers move.
 */

static ngx_int_t
ngx_http_rate_limit_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i, first, ours;
    ngx_http_handler_pt         h;
    ngx_http_phase_handler_t   *ph;
    ngx_http_core_main_conf_t  *cmcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);

    if (cmcf == NULL || cmcf->phase_engine.handlers == NULL) {
        return NGX_OK;
    }

    ph = cmcf->phase_engine.handlers;
    first = NGX_CONF_UNSET_UINT;
    ours = NGX_CONF_UNSET_UINT;

    /* the engine ends with an entry whose checker is NULL */

    for (i = 0; ph[i].checker; i++) {
        if (ph[i].checker != ngx_http_core_access_phase) {
            continue;
        }

        if (first == NGX_CONF_UNSET_UINT) {
            first = i;
        }

        if (ph[i].handler == ngx_http_rate_limit_handler) {
            ours = i;
            break;
        }
    }

    if (ours == NGX_CONF_UNSET_UINT) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "rate_limit: the access handler is not in the "
                      "phase engine");
        return NGX_ERROR;
    }

    h = ph[ours].handler;

    for (i = ours; i > first; i--) {
        ph[i].handler = ph[i - 1].handler;
    }

    ph[first].handler = h;

    return NGX_OK;
}
