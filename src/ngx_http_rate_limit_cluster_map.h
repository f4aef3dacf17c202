
/*
 * ngx_http_rate_limit_module: mode=cluster's slot map, read from the
 * cluster and kept per worker.
 *
 * Which link node serves a slot, from CLUSTER SHARDS (CLUSTER SLOTS on a
 * server older than 7.0) asked of a seed or a known master; the map's
 * masters are made link nodes, those it no longer names retired.  It
 * routes nothing itself (ngx_http_rate_limit_cluster.c does).
 */


#ifndef _NGX_HTTP_RATE_LIMIT_CLUSTER_MAP_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_CLUSTER_MAP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"


/*
 * Starts the first fetch.  release() is called whenever a fetch ends,
 * with a new map or without.
 */
ngx_int_t ngx_http_rate_limit_slots_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf, void (*release)(void));
void ngx_http_rate_limit_slots_exit(void);

/*
 * The link node of slot's master: NGX_OK with *node set.  Else, with
 * wait, the map is read again (refresh) and NGX_AGAIN says a fetch is on
 * its way (release follows); NGX_DECLINED: no master now.
 */
ngx_int_t ngx_http_rate_limit_slots_node(uint16_t slot, ngx_uint_t wait,
    ngx_uint_t *node);

/*
 * Reads the map again soon, at most a few times a second: after MOVED,
 * CLUSTERDOWN, a lost data connection, a slot with no master.
 */
void ngx_http_rate_limit_slots_refresh(void);


#endif /* _NGX_HTTP_RATE_LIMIT_CLUSTER_MAP_H_INCLUDED_ */
