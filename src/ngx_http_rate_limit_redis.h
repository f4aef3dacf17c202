
/*
 * ngx_http_rate_limit_module: the per-worker Redis link.
 *
 * A few persistent hiredis async connections per worker, each driven by an
 * NGINX connection made from hiredis's socket, carrying many requests'
 * commands at once.  Callers hand it an op (allocated with ngx_alloc(), not
 * from a request pool) and get the reply through op->handler, exactly once,
 * unless the send itself fails.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_REDIS_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>

#include "ngx_http_rate_limit_module.h"


typedef void (*ngx_http_rate_limit_op_handler_pt)(
    ngx_http_rate_limit_op_t *op, redisReply *reply);


struct ngx_http_rate_limit_op_s {
    /* called once with the reply, or NULL when the link lost it */
    ngx_http_rate_limit_op_handler_pt   handler;
    void                               *data;   /* NULL: nobody waits */

    /* the command in RESP: EVALSHA, then from tail the arguments */
    char                               *cmd;
    size_t                              len;
    size_t                              tail;
    unsigned                            eval:1; /* resent as EVAL */
};


/*
 * The link's life follows the worker's: init in init_process (connections
 * start at once), exit in exit_process (everything closed, pending ops
 * answered with NULL).
 */
ngx_int_t ngx_http_rate_limit_redis_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf);
void ngx_http_rate_limit_redis_exit(void);

/*
 * Queues op on a connection that is up or still connecting.  NGX_OK: the
 * handler will be called.  NGX_DECLINED: no connection can take it now
 * (down, between attempts): apply the fail policy at once.  The handler is
 * not called unless NGX_OK.
 */
ngx_int_t ngx_http_rate_limit_redis_send(ngx_http_rate_limit_op_t *op);

/* 1 while the worker is exiting: answers are no longer wanted. */
ngx_uint_t ngx_http_rate_limit_redis_exiting(void);

/* Logs at error level, at most once a second per cause. */
void ngx_http_rate_limit_redis_log(ngx_uint_t cause, ngx_log_t *log,
    const char *fmt, ...);


/*
 * Causes: what happened to a connection is kept apart from what it did to
 * the requests on it, so that the requests' lines, which come first, never
 * hide why the connection went away.
 */
enum {
    /* connections */
    NGX_HTTP_RATE_LIMIT_LOG_CONNECT = 0,
    NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
    NGX_HTTP_RATE_LIMIT_LOG_CLOSED,     /* closed by redis or an error */
    NGX_HTTP_RATE_LIMIT_LOG_RECONNECT,  /* an error reply that drops it */
    NGX_HTTP_RATE_LIMIT_LOG_IDLE,       /* the idle watchdog */

    /* requests */
    NGX_HTTP_RATE_LIMIT_LOG_LOST,
    NGX_HTTP_RATE_LIMIT_LOG_TIMEOUT,
    NGX_HTTP_RATE_LIMIT_LOG_REPLY,
    NGX_HTTP_RATE_LIMIT_LOG_DOWN,

    NGX_HTTP_RATE_LIMIT_LOG_CAUSES
};


#endif /* _NGX_HTTP_RATE_LIMIT_REDIS_H_INCLUDED_ */
