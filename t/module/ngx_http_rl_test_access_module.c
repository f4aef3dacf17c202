
/*
 * A test fixture, not part of the module: a dynamic module with an access
 * phase handler and no ngx_module_order, so NGINX runs its
 * postconfiguration (which pushes the handler) in load_module order, as
 * it would for many third-party modules.  "rl_test_deny CODE;" in a
 * location makes the handler answer CODE.  t/061-module-order.t loads it
 * before and after the rate limit module.
 *
 * Built by the Makefile against the configured NGINX tree in build/nginx,
 * whose headers give it the same module signature.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_int_t  deny;
} ngx_http_rl_test_access_loc_conf_t;


static ngx_int_t ngx_http_rl_test_access_handler(ngx_http_request_t *r);
static void *ngx_http_rl_test_access_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_rl_test_access_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_rl_test_access_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_rl_test_access_commands[] = {

    { ngx_string("rl_test_deny"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_rl_test_access_loc_conf_t, deny),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_rl_test_access_module_ctx = {
    NULL,                                    /* preconfiguration */
    ngx_http_rl_test_access_init,            /* postconfiguration */
    NULL,                                    /* create main configuration */
    NULL,                                    /* init main configuration */
    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */
    ngx_http_rl_test_access_create_loc_conf, /* create location configuration */
    ngx_http_rl_test_access_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_rl_test_access_module = {
    NGX_MODULE_V1,
    &ngx_http_rl_test_access_module_ctx,     /* module context */
    ngx_http_rl_test_access_commands,        /* module directives */
    NGX_HTTP_MODULE,                         /* module type */
    NULL,                                    /* init master */
    NULL,                                    /* init module */
    NULL,                                    /* init process */
    NULL,                                    /* init thread */
    NULL,                                    /* exit thread */
    NULL,                                    /* exit process */
    NULL,                                    /* exit master */
    NGX_MODULE_V1_PADDING
};


/* what NGINX's configure writes into objs/ for a dynamic module */

ngx_module_t  *ngx_modules[] = {
    &ngx_http_rl_test_access_module,
    NULL
};

char  *ngx_module_names[] = {
    "ngx_http_rl_test_access_module",
    NULL
};


static ngx_int_t
ngx_http_rl_test_access_handler(ngx_http_request_t *r)
{
    ngx_http_rl_test_access_loc_conf_t  *conf;

    conf = ngx_http_get_module_loc_conf(r, ngx_http_rl_test_access_module);

    return conf->deny > 0 ? conf->deny : NGX_DECLINED;
}


static void *
ngx_http_rl_test_access_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_rl_test_access_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_rl_test_access_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->deny = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_rl_test_access_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_rl_test_access_loc_conf_t *prev = parent;
    ngx_http_rl_test_access_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->deny, prev->deny, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_rl_test_access_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_rl_test_access_handler;

    return NGX_OK;
}
