
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

    /*
     * The zones of a decision (nvalues: RL_CORE_REPLY_VALUES per zone),
     * for mode=cluster, which splits it by slot: borrowed for link_send
     * only.  answered has a byte per zone, all 1 when sent; a zone left 0
     * got an error (its values are not to be read): the answer is OK when
     * some zone answered.  fail_closed: the caller rejects a request that
     * errs, so what it consumed elsewhere is given back.
     */
    const rl_core_zone_request_t       *zones;
    ngx_uint_t                          nzones;
    const char                         *lease;  /* the lease member */
    size_t                              lease_len;
    uint64_t                            now_ms;
    u_char                             *answered;
    unsigned                            fail_closed:1;

    /* the link's */
    ngx_queue_t                         queue;  /* waiting or sent */
    void                               *conn;
    ngx_msec_t                          written;
    uint64_t                            written_us; /* for the metrics */
    uint32_t                            gen;    /* script generation */
    void                               *route;  /* the cluster's split */
    unsigned                            sent:1;
    unsigned                            resent:1;
    unsigned                            timed_out:1; /* counted so */
    unsigned                            asking:1; /* ASKING first */
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
 * A set of commands nobody waits for (charges, lease renewals and
 * releases): n items, zone(data, i) the zone whose keys item i touches,
 * build(data, items, count, log) the caller's op (ngx_alloc'd, NULL on
 * failure) of the items whose indexes are in items.  Outside a cluster
 * one op has them all and goes as link_send says (NGX_DECLINED, NGX_BUSY:
 * the op is freed here, the caller counts it).  In a cluster one op per
 * slot (a script touches one slot only), each sent to its slot's master,
 * MOVED and ASK followed; an op that cannot go is answered an error.
 * Every op that went gets its handler called once.
 */
typedef struct {
    size_t                              n;
    const rl_core_zone_request_t     *(*zone)(void *data, size_t i);
    ngx_http_rate_limit_op_t         *(*build)(void *data,
                                               const size_t *items,
                                               size_t count, ngx_log_t *log);
    void                               *data;
} ngx_http_rate_limit_set_t;

ngx_int_t ngx_http_rate_limit_link_send_set(ngx_http_rate_limit_set_t *set,
    ngx_log_t *log);

/*
 * The waiter is gone (timed out, left): a command not yet written is
 * never written, and op is freed now or when its reply comes.  The handler
 * is not called.
 */
void ngx_http_rate_limit_link_cancel(ngx_http_rate_limit_op_t *op);

/* As cancel, for a waiter whose timeout came: counted as a timeout. */
void ngx_http_rate_limit_link_timeout(ngx_http_rate_limit_op_t *op);

/*
 * For the cluster layer: op to the node of that index (as link_send
 * says; NGX_DECLINED also for a retired node; the node's connections are
 * made when the first op goes there), the node at a numeric host:port
 * (added when new), a node that serves no slot any more (closed), and
 * how many nodes there are.
 */
ngx_int_t ngx_http_rate_limit_link_send_to(ngx_http_rate_limit_op_t *op,
    ngx_uint_t node, ngx_log_t *log);
ngx_int_t ngx_http_rate_limit_link_node(const char *host, int port,
    ngx_uint_t *index);
void ngx_http_rate_limit_link_retire(ngx_uint_t index);
ngx_uint_t ngx_http_rate_limit_link_nodes(void);

/*
 * AUTH [username] password in argv and argvlen (3 entries): its argc, or
 * 0 when there is no password (nothing to send).
 */
int ngx_http_rate_limit_link_auth(ngx_str_t *username, ngx_str_t *password,
    const char **argv, size_t *argvlen);

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
