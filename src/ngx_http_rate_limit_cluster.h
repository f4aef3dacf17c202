
/*
 * ngx_http_rate_limit_module: mode=cluster, routing on top of the link.
 *
 * The slot map (ngx_http_rate_limit_cluster_map.h) says which master
 * serves a slot; the link keeps data connections to those masters.  A
 * decision's zones are grouped by slot, one script call per group, each
 * sent to its slot's master; MOVED and ASK are followed, TRYAGAIN,
 * CLUSTERDOWN and a node that is down are errors of that group's zones.
 * The caller sees one op answered per zone (link.h).  A set nobody waits
 * for (link_send_set) is grouped and routed the same way.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_CLUSTER_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_CLUSTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"
#include "ngx_http_rate_limit_link.h"


ngx_int_t ngx_http_rate_limit_cluster_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf);
void ngx_http_rate_limit_cluster_exit(void);

/* link_send and link_cancel of an op with zones, in mode=cluster. */
ngx_int_t ngx_http_rate_limit_cluster_send(ngx_http_rate_limit_op_t *op,
    ngx_log_t *log);
void ngx_http_rate_limit_cluster_cancel(ngx_http_rate_limit_op_t *op);

/* link_send_set in mode=cluster: one op per slot group, routed. */
ngx_int_t ngx_http_rate_limit_cluster_send_set(ngx_http_rate_limit_set_t *set,
    ngx_log_t *log);


#endif /* _NGX_HTTP_RATE_LIMIT_CLUSTER_H_INCLUDED_ */
