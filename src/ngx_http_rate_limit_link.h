
/*
 * ngx_http_rate_limit_module: the per-worker Redis link.
 *
 * Nodes, their persistent connections, each connection's handshake,
 * states, pending commands, backoff and timers.  Callers hand it an op and
 * get the answer decoded, never a hiredis type: the reply's integers, an
 * error text, or the news that the connection lost it.  Sentinel and
 * cluster routing belong on top of this layer.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_LINK_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_LINK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_module.h"


typedef enum {
    NGX_HTTP_RATE_LIMIT_ANSWER_OK = 0,      /* op->values hold the reply */
    NGX_HTTP_RATE_LIMIT_ANSWER_ERROR,       /* an error reply: text */
    NGX_HTTP_RATE_LIMIT_ANSWER_MALFORMED,   /* not op->nvalues integers:
                                               text says what came */
    NGX_HTTP_RATE_LIMIT_ANSWER_LOST         /* the connection went away */
} ngx_http_rate_limit_answer_e;


typedef void (*ngx_http_rate_limit_op_handler_pt)(
    ngx_http_rate_limit_op_t *op, ngx_http_rate_limit_answer_e answer,
    ngx_str_t *text);


/*
 * A command and the one waiting for it.  Allocated by the caller with
 * ngx_alloc() (never from a request's pool: it may outlive the request),
 * as one block with what cmd and values point to.
 */
struct ngx_http_rate_limit_op_s {
    /* first: every command's hiredis privdata begins with its shape */
    ngx_http_rate_limit_shape_t         shape;

    /* the caller's */
    ngx_http_rate_limit_op_handler_pt   handler;
    void                               *data;   /* the waiter */
    char                               *cmd;    /* EVALSHA, in RESP */
    size_t                              len;
    int64_t                            *values; /* room for nvalues */
    ngx_uint_t                          nvalues;

    /* the link's */
    ngx_queue_t                         queue;  /* waiting or sent */
    void                               *conn;
    ngx_msec_t                          written;
    uint32_t                            gen;    /* script generation */
    unsigned                            sent:1;
    unsigned                            resent:1;
};


/*
 * The link follows the worker's life: init in init_process (connections
 * start at once), exit in exit_process (everything closed; no handler is
 * called any more, and every op still held is freed).
 */
ngx_int_t ngx_http_rate_limit_link_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf);
void ngx_http_rate_limit_link_exit(void);

/*
 * Queues op.  NGX_OK: op->handler will be called exactly once, with the
 * answer, unless op is cancelled first.  NGX_DECLINED: no connection is up
 * or being made (between attempts); NGX_BUSY: every usable connection
 * holds max_pending commands.  Both are logged (on log, once a second),
 * the caller keeps op and applies the fail policy at once.
 */
ngx_int_t ngx_http_rate_limit_link_send(ngx_http_rate_limit_op_t *op,
    ngx_log_t *log);

/*
 * The waiter is gone (timed out, left): a command not yet written is
 * never written, and op is freed now or when its reply comes.  The handler
 * is not called.
 */
void ngx_http_rate_limit_link_cancel(ngx_http_rate_limit_op_t *op);

/*
 * At exit, before link_exit: writes what waits, once, without waiting
 * (best effort).
 */
void ngx_http_rate_limit_link_flush_now(void);

/*
 * A copy of src in memory of the link's own (ngx_alloc, NUL-terminated,
 * freed with ngx_free): what the link keeps must not need the
 * configuration's pools.  An empty src gives a null string.
 */
ngx_int_t ngx_http_rate_limit_link_copy(ngx_str_t *dst, ngx_str_t *src,
    ngx_log_t *log);


#endif /* _NGX_HTTP_RATE_LIMIT_LINK_H_INCLUDED_ */
