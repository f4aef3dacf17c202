
/*
 * ngx_http_rate_limit_module: where the master is, as the sentinels say.
 *
 * One connection per worker to one sentinel at a time (in turn, skipping
 * those that fail): SENTINEL GET-MASTER-ADDR-BY-NAME, then a subscription
 * to +switch-master on the same connection.  Every address learned is
 * handed to the link, which moves its connections there; the link asks
 * again (ngx_http_rate_limit_sentinel_refresh) whenever a data connection
 * fails, a replica answers, or READONLY comes.  It sends no data command.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_SENTINEL_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_SENTINEL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"


/* The master is at host (numeric, NUL-terminated) and port. */
typedef void (*ngx_http_rate_limit_sentinel_master_pt)(const char *host,
    int port);


ngx_int_t ngx_http_rate_limit_sentinel_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf,
    ngx_http_rate_limit_sentinel_master_pt master);
void ngx_http_rate_limit_sentinel_exit(void);

/* Asks again soon, unless a question is already on its way. */
void ngx_http_rate_limit_sentinel_refresh(void);


#endif /* _NGX_HTTP_RATE_LIMIT_SENTINEL_H_INCLUDED_ */
