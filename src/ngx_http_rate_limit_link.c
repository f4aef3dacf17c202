
/*
 * ngx_http_rate_limit_module: the per-worker Redis link.
 *
 * A node is one Redis address; it has `connections` persistent hiredis
 * connections, each made and watched here (the hiredis adapter only moves
 * bytes).  A connection's bookkeeping (states, counts, backoff, script
 * generations) is the core's rl_core_conn_t; this file does what it says.
 *
 * A connection's life:
 *   connecting  hiredis connects; the handshake is queued behind it:
 *               AUTH, SELECT, ROLE, INFO server, SCRIPT EXISTS, and
 *               SCRIPT LOAD only when the script is missing.  Any failure
 *               drops the connection before a script runs on it.
 *               connect_timeout bounds the whole of it.
 *   up          commands are written at the end of each event-loop turn,
 *               and as soon as a batch of them waits (so that Redis works
 *               on it while the worker reads the next requests), but only
 *               when hiredis holds nothing unwritten: the rest wait in the
 *               link, where a command whose request leaves is never
 *               written.  Batches already written do not hold the next
 *               one back.  The watchdog drops a connection whose oldest
 *               written command has had no reply for connect_timeout.
 *   down        a cancelable timer until the next attempt; the backoff
 *               grows with every attempt that saw no command answered.
 * Commands that wait (queued but not written) count against max_pending
 * with those written; a request that finds no room fails at once.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_rate_limit_link.h"
#include "ngx_http_rate_limit_hiredis.h"
#include "ngx_http_rate_limit_reader.h"
#include "ngx_http_rate_limit_log.h"
#include "ngx_http_rate_limit_tls.h"
#include "ngx_http_rate_limit_sentinel.h"
#include "ngx_http_rate_limit_metrics.h"
#include "ngx_http_rate_limit_cluster.h"
#include "ngx_http_rate_limit_cluster_map.h"


/* replies of the handshake: INFO's text is the longest, about 2 KiB */
#define NGX_HTTP_RATE_LIMIT_HANDSHAKE_REPLY  65536

/* a script reply: an error text, or its integers */
#define NGX_HTTP_RATE_LIMIT_ERROR_REPLY      4096
#define NGX_HTTP_RATE_LIMIT_INTEGER_REPLY    32

/*
 * Commands waiting on a connection that are written at once, from the
 * request that completes the batch, not at the end of the turn: small, so
 * that Redis starts early; not 1, so that a write still carries many.
 */
#define NGX_HTTP_RATE_LIMIT_BATCH            16


typedef struct ngx_http_rate_limit_node_s  ngx_http_rate_limit_node_t;


typedef struct {
    ngx_http_rate_limit_node_t         *node;
    ngx_uint_t                          number;

    redisAsyncContext                  *ac;     /* NULL when down */
    ngx_http_rate_limit_reader_t        reader;
    rl_core_conn_t                      st;

    ngx_queue_t                         waiting; /* ops, not yet written */
    ngx_queue_t                         sent;    /* ops, oldest first */

    ngx_event_t                         retry;   /* backoff */
    ngx_event_t                         connect; /* connect_timeout */
    ngx_event_t                         watchdog; /* the oldest reply */
    ngx_event_t                         flush;   /* posted: end of turn */

    ngx_http_rate_limit_conn_metrics_t  metrics;
} ngx_http_rate_limit_conn_t;


struct ngx_http_rate_limit_node_s {
    ngx_str_t                           name;   /* as written, for logs */
    char                               *host;   /* numeric */
    int                                 port;
    char                               *unix_path;
    ngx_str_t                           tls_name; /* checked, NUL-ended */

    ngx_uint_t                          nconns;
    ngx_uint_t                          next;   /* round robin */
    ngx_http_rate_limit_conn_t         *conns;

    ngx_http_rate_limit_throttle_t      throttle;

    ngx_http_rate_limit_node_metrics_t *metrics; /* NULL: not counted */

    unsigned                            started:1; /* connections made */
    unsigned                            retired:1; /* cluster: no slots */
};


typedef struct {
    ngx_log_t                          *log;

    /* copies: the link must not need the configuration's memory */
    ngx_int_t                           db;
    ngx_str_t                           username;
    ngx_str_t                           password;
    ngx_msec_t                          connect_timeout;
    ngx_uint_t                          max_pending;
    void                               *ssl_ctx; /* NULL: plain TCP */
    ngx_uint_t                          mode;   /* ngx_http_rate_limit_mode_e */

    ngx_uint_t                          connections; /* per node */
    ngx_str_t                           tls_name;

    ngx_uint_t                          nnodes;
    ngx_http_rate_limit_node_t        **nodes;

    unsigned                            exiting:1;
    unsigned                            moving:1; /* to another master */
} ngx_http_rate_limit_link_t;


typedef struct ngx_http_rate_limit_step_s  ngx_http_rate_limit_step_t;

typedef ngx_int_t (*ngx_http_rate_limit_step_pt)(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);

/* A handshake command: the shape first, as with every privdata */
struct ngx_http_rate_limit_step_s {
    ngx_http_rate_limit_shape_t         shape;
    const char                         *name;   /* never the password */
    ngx_http_rate_limit_step_pt         check;  /* NGX_ERROR: logged, drop */
};


static ngx_http_rate_limit_node_t *ngx_http_rate_limit_link_add(
    ngx_str_t *name);
static void ngx_http_rate_limit_link_start(ngx_http_rate_limit_node_t *node);
static ngx_int_t ngx_http_rate_limit_link_queue(
    ngx_http_rate_limit_node_t *node, ngx_http_rate_limit_op_t *op,
    ngx_log_t *log);
static void ngx_http_rate_limit_link_connect(
    ngx_http_rate_limit_conn_t *conn);
static void ngx_http_rate_limit_link_handshake(
    ngx_http_rate_limit_conn_t *conn);
static void ngx_http_rate_limit_link_step(ngx_http_rate_limit_conn_t *conn,
    const ngx_http_rate_limit_step_t *step, int argc, const char **argv,
    const size_t *argvlen);
static void ngx_http_rate_limit_link_load(ngx_http_rate_limit_conn_t *conn,
    const ngx_http_rate_limit_step_t *step);
static void ngx_http_rate_limit_link_asking(
    ngx_http_rate_limit_conn_t *conn);
static void ngx_http_rate_limit_link_ready(ngx_http_rate_limit_conn_t *conn);
static void ngx_http_rate_limit_link_lost(ngx_http_rate_limit_conn_t *conn);
static void ngx_http_rate_limit_link_drop(ngx_http_rate_limit_conn_t *conn);
static void ngx_http_rate_limit_link_stop(ngx_http_rate_limit_conn_t *conn);
static void ngx_http_rate_limit_link_move(const char *host, int port);
static void ngx_http_rate_limit_link_fail_waiting(
    ngx_http_rate_limit_conn_t *conn);
static ngx_http_rate_limit_conn_t *ngx_http_rate_limit_link_pick(
    ngx_http_rate_limit_node_t *node, ngx_uint_t *full);
static ngx_int_t ngx_http_rate_limit_link_resend(
    ngx_http_rate_limit_conn_t *conn, ngx_http_rate_limit_op_t *op);
static void ngx_http_rate_limit_link_answer(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text);

static void ngx_http_rate_limit_link_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_rate_limit_link_on_disconnect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_link_on_step(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_link_on_reply(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_link_read_done(void *data);

static ngx_int_t ngx_http_rate_limit_link_check_ok(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);
static ngx_int_t ngx_http_rate_limit_link_check_role(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);
static ngx_int_t ngx_http_rate_limit_link_check_info(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);
static ngx_int_t ngx_http_rate_limit_link_check_exists(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);
static ngx_int_t ngx_http_rate_limit_link_check_load(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);
static ngx_int_t ngx_http_rate_limit_link_check_reload(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);
static ngx_int_t ngx_http_rate_limit_link_check_sha(
    ngx_http_rate_limit_conn_t *conn, redisReply *r);

static void ngx_http_rate_limit_link_write(ngx_http_rate_limit_conn_t *conn,
    ngx_uint_t early);
static void ngx_http_rate_limit_link_flush_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_link_retry_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_link_connect_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_link_watchdog_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_link_event(ngx_event_t *ev,
    ngx_event_handler_pt handler, ngx_http_rate_limit_conn_t *conn,
    ngx_log_t *log);

static void ngx_http_rate_limit_link_free(ngx_http_rate_limit_link_t *link);
static void ngx_http_rate_limit_link_name_metrics(
    ngx_http_rate_limit_node_t *node);
static void ngx_http_rate_limit_link_count(ngx_http_rate_limit_conn_t *conn);
static ngx_http_rate_limit_cmd_result_e ngx_http_rate_limit_link_error_result(
    redisReply *r);
static void ngx_http_rate_limit_link_result(ngx_http_rate_limit_conn_t *conn,
    ngx_http_rate_limit_op_t *op, ngx_http_rate_limit_cmd_result_e result,
    uint64_t written_us);


static ngx_http_rate_limit_link_t  *ngx_http_rate_limit_link;


static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_auth = {
    { 0, 512 }, "AUTH", ngx_http_rate_limit_link_check_ok
};

static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_select = {
    { 0, 512 }, "SELECT", ngx_http_rate_limit_link_check_ok
};

/* a master lists its replicas: [role, offset, [[ip, port, offset] ...]] */
static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_role = {
    { 3, NGX_HTTP_RATE_LIMIT_HANDSHAKE_REPLY }, "ROLE",
    ngx_http_rate_limit_link_check_role
};

static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_info = {
    { 0, NGX_HTTP_RATE_LIMIT_HANDSHAKE_REPLY }, "INFO",
    ngx_http_rate_limit_link_check_info
};

static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_exists = {
    { 1, 512 }, "SCRIPT EXISTS", ngx_http_rate_limit_link_check_exists
};

static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_load = {
    { 0, 512 }, "SCRIPT LOAD", ngx_http_rate_limit_link_check_load
};

static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_asking = {
    { 0, 512 }, "ASKING", ngx_http_rate_limit_link_check_ok
};

/* after NOSCRIPT, on a connection that is up */
static const ngx_http_rate_limit_step_t  ngx_http_rate_limit_step_reload = {
    { 0, 512 }, "SCRIPT LOAD", ngx_http_rate_limit_link_check_reload
};


ngx_int_t
ngx_http_rate_limit_link_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf)
{
    ngx_str_t                    s;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_node_t  *node;

    link = ngx_calloc(sizeof(ngx_http_rate_limit_link_t), cycle->log);
    if (link == NULL) {
        return NGX_ERROR;
    }

    link->log = cycle->log;
    link->db = rcf->db;
    link->connect_timeout = rcf->connect_timeout;
    link->max_pending = rcf->max_pending;
    link->ssl_ctx = rcf->ssl_ctx;
    link->mode = rcf->mode;
    link->connections = rcf->connections;

    if (ngx_http_rate_limit_link_copy(&link->username, &rcf->username,
                                      cycle->log)
        != NGX_OK
        || ngx_http_rate_limit_link_copy(&link->password, &rcf->password,
                                         cycle->log)
           != NGX_OK
        || ngx_http_rate_limit_link_copy(&link->tls_name,
                                         &rcf->tls_server_name, cycle->log)
           != NGX_OK)
    {
        goto failed;
    }

    ngx_http_rate_limit_link = link;

    if (link->mode == NGX_HTTP_RATE_LIMIT_CLUSTER) {
        /* the nodes are the masters of the slot map, added as it comes */

        if (ngx_http_rate_limit_cluster_init(cycle, rcf) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    /* one node: sentinel moves it where the master is */

    node = ngx_http_rate_limit_link_add(
                      link->mode == NGX_HTTP_RATE_LIMIT_SENTINEL
                      ? &rcf->master : &rcf->name);
    if (node == NULL) {
        goto failed;
    }

    if (link->mode == NGX_HTTP_RATE_LIMIT_SENTINEL) {
        /* where the master is comes from the sentinels */

    } else if (rcf->unix_path.len) {
        if (ngx_http_rate_limit_link_copy(&s, &rcf->unix_path, cycle->log)
            != NGX_OK)
        {
            goto failed;
        }

        node->unix_path = (char *) s.data;

    } else {
        if (ngx_http_rate_limit_link_copy(&s, &rcf->host, cycle->log)
            != NGX_OK)
        {
            goto failed;
        }

        node->host = (char *) s.data;
        node->port = rcf->port;
    }

    if (link->mode == NGX_HTTP_RATE_LIMIT_STANDALONE) {
        ngx_http_rate_limit_link_name_metrics(node);
        ngx_http_rate_limit_link_start(node);
    }

    if (link->mode == NGX_HTTP_RATE_LIMIT_SENTINEL
        && ngx_http_rate_limit_sentinel_init(cycle, rcf,
                                             ngx_http_rate_limit_link_move)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_http_rate_limit_link = NULL;
    ngx_http_rate_limit_link_free(link);
    return NGX_ERROR;
}


/*
 * A node with its connections, none made yet, named name in the logs.
 * NULL when memory is short.
 */

static ngx_http_rate_limit_node_t *
ngx_http_rate_limit_link_add(ngx_str_t *name)
{
    ngx_uint_t                    i;
    ngx_http_rate_limit_conn_t   *conn;
    ngx_http_rate_limit_link_t   *link;
    ngx_http_rate_limit_node_t   *node, **nodes;

    link = ngx_http_rate_limit_link;

    nodes = ngx_alloc((link->nnodes + 1) * sizeof(ngx_http_rate_limit_node_t *),
                      link->log);
    node = ngx_calloc(sizeof(ngx_http_rate_limit_node_t), link->log);

    if (nodes == NULL || node == NULL) {
        ngx_free(nodes);
        ngx_free(node);
        return NULL;
    }

    if (link->nnodes) {
        ngx_memcpy(nodes, link->nodes,
                   link->nnodes * sizeof(ngx_http_rate_limit_node_t *));
    }

    ngx_free(link->nodes);
    link->nodes = nodes;
    link->nodes[link->nnodes++] = node;

    node->nconns = link->connections;
    node->conns = ngx_calloc(node->nconns
                             * sizeof(ngx_http_rate_limit_conn_t),
                             link->log);

    if (node->conns == NULL
        || ngx_http_rate_limit_link_copy(&node->name, name, link->log)
           != NGX_OK
        || ngx_http_rate_limit_link_copy(&node->tls_name, &link->tls_name,
                                         link->log)
           != NGX_OK)
    {
        /* freed with the link */
        node->nconns = 0;
        return NULL;
    }

    for (i = 0; i < node->nconns; i++) {
        conn = &node->conns[i];

        conn->node = node;
        conn->number = i;

        rl_core_conn_init(&conn->st, (uint32_t) link->max_pending);
        ngx_http_rate_limit_link_count(conn);

        ngx_queue_init(&conn->waiting);
        ngx_queue_init(&conn->sent);

        /* the worker must not wait for these when it quits */

        ngx_http_rate_limit_link_event(&conn->retry,
                                       ngx_http_rate_limit_link_retry_handler,
                                       conn, link->log);
        ngx_http_rate_limit_link_event(&conn->connect,
                                     ngx_http_rate_limit_link_connect_handler,
                                     conn, link->log);
        ngx_http_rate_limit_link_event(&conn->watchdog,
                                    ngx_http_rate_limit_link_watchdog_handler,
                                    conn, link->log);
        ngx_http_rate_limit_link_event(&conn->flush,
                                       ngx_http_rate_limit_link_flush_handler,
                                       conn, link->log);
    }

    return node;
}


static void
ngx_http_rate_limit_link_start(ngx_http_rate_limit_node_t *node)
{
    ngx_uint_t  i;

    node->started = 1;

    for (i = 0; i < node->nconns; i++) {
        ngx_http_rate_limit_link_connect(&node->conns[i]);
    }
}


void
ngx_http_rate_limit_link_exit(void)
{
    ngx_uint_t                   i, n;
    ngx_queue_t                 *q;
    redisAsyncContext           *ac;
    ngx_http_rate_limit_op_t    *op;
    ngx_http_rate_limit_conn_t  *conn;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_node_t  *node;

    link = ngx_http_rate_limit_link;
    if (link == NULL) {
        return;
    }

    /* from here no handler is called: nobody waits any more */

    link->exiting = 1;

    ngx_http_rate_limit_sentinel_exit();
    ngx_http_rate_limit_cluster_exit();

    for (n = 0; n < link->nnodes; n++) {
        node = link->nodes[n];

        for (i = 0; i < node->nconns; i++) {
            conn = &node->conns[i];

            while (!ngx_queue_empty(&conn->waiting)) {
                q = ngx_queue_head(&conn->waiting);
                ngx_queue_remove(q);
                op = ngx_queue_data(q, ngx_http_rate_limit_op_t, queue);
                ngx_free(op);
            }

            ac = conn->ac;

            if (ac) {
                /* every sent op is answered with NULL, and freed */
                conn->ac = NULL;
                redisAsyncFree(ac);
            }

            if (conn->retry.timer_set) {
                ngx_del_timer(&conn->retry);
            }

            ngx_http_rate_limit_link_stop(conn);

            ngx_http_rate_limit_metrics_conn(&conn->metrics, NULL, 0, 0);
        }
    }

    ngx_http_rate_limit_link_free(link);
    ngx_http_rate_limit_link = NULL;
}


ngx_int_t
ngx_http_rate_limit_link_send(ngx_http_rate_limit_op_t *op, ngx_log_t *log)
{
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;
    if (link == NULL || link->exiting) {
        return NGX_DECLINED;
    }

    op->route = NULL;
    op->asking = 0;

    if (link->mode == NGX_HTTP_RATE_LIMIT_CLUSTER) {
        /* split by slot and routed; op is answered per zone */
        return ngx_http_rate_limit_cluster_send(op, log);
    }

    return ngx_http_rate_limit_link_queue(link->nodes[0], op, log);
}


ngx_int_t
ngx_http_rate_limit_link_send_set(ngx_http_rate_limit_set_t *set,
    ngx_log_t *log)
{
    size_t                       i, *items;
    ngx_int_t                    rc;
    ngx_http_rate_limit_op_t    *op;
    ngx_http_rate_limit_link_t  *link;
    size_t                       stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];

    link = ngx_http_rate_limit_link;
    if (link == NULL || link->exiting || set->n == 0) {
        return NGX_DECLINED;
    }

    if (link->mode == NGX_HTTP_RATE_LIMIT_CLUSTER) {
        return ngx_http_rate_limit_cluster_send_set(set, log);
    }

    /* one server: one op of every item, in order */

    items = stack;

    if (set->n > NGX_HTTP_RATE_LIMIT_STACK_ZONES) {
        items = ngx_alloc(set->n * sizeof(size_t), log);
        if (items == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < set->n; i++) {
        items[i] = i;
    }

    op = set->build(set->data, items, set->n, log);

    if (items != stack) {
        ngx_free(items);
    }

    if (op == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_rate_limit_link_send(op, log);

    if (rc != NGX_OK) {
        ngx_free(op);
    }

    return rc;
}


ngx_int_t
ngx_http_rate_limit_link_send_to(ngx_http_rate_limit_op_t *op,
    ngx_uint_t node, ngx_log_t *log)
{
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;
    if (link == NULL || link->exiting || node >= link->nnodes
        || link->nodes[node]->retired)
    {
        return NGX_DECLINED;
    }

    /* a cluster master is connected to when a command first needs it */

    if (!link->nodes[node]->started) {
        ngx_http_rate_limit_link_start(link->nodes[node]);
    }

    return ngx_http_rate_limit_link_queue(link->nodes[node], op, log);
}


/*
 * The node at host:port (numeric), added if it is new, or used again if
 * it was retired; it connects when a command first goes there.
 * NGX_ERROR when memory is short.
 */

ngx_int_t
ngx_http_rate_limit_link_node(const char *host, int port, ngx_uint_t *index)
{
    u_char                       buf[NGX_SOCKADDR_STRLEN + NGX_INT_T_LEN + 4];
    ngx_str_t                    name, h;
    ngx_uint_t                   i;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_node_t  *node;

    link = ngx_http_rate_limit_link;

    for (i = 0; i < link->nnodes; i++) {
        node = link->nodes[i];

        if (node->host && node->port == port
            && ngx_strcmp(node->host, host) == 0)
        {
            *index = i;

            /* connected again when a command needs it */
            node->retired = 0;

            return NGX_OK;
        }
    }

    name.data = buf;
    name.len = ngx_snprintf(buf, sizeof(buf), "%s:%d", host, port) - buf;

    h.data = (u_char *) host;
    h.len = ngx_strlen(host);

    node = ngx_http_rate_limit_link_add(&name);
    if (node == NULL
        || ngx_http_rate_limit_link_copy(&name, &h, link->log) != NGX_OK)
    {
        return NGX_ERROR;
    }

    node->host = (char *) name.data;
    node->port = port;

    ngx_http_rate_limit_link_name_metrics(node);

    *index = link->nnodes - 1;

    ngx_log_error(NGX_LOG_INFO, link->log, 0,
                  "rate_limit: cluster master %V", &node->name);

    return NGX_OK;
}


/*
 * A node that serves no slot any more (a failed master, one emptied by
 * resharding): its connections close and are not made again until a map
 * names it; what waits there fails now.
 */

void
ngx_http_rate_limit_link_retire(ngx_uint_t index)
{
    ngx_uint_t                   i;
    ngx_http_rate_limit_conn_t  *conn;
    ngx_http_rate_limit_node_t  *node;

    node = ngx_http_rate_limit_link->nodes[index];

    if (node->retired) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_http_rate_limit_link->log, 0,
                  "rate_limit: %V serves no slot, closed", &node->name);

    node->retired = 1;
    node->started = 0;

    for (i = 0; i < node->nconns; i++) {
        conn = &node->conns[i];

        ngx_http_rate_limit_link_drop(conn);

        if (conn->retry.timer_set) {
            ngx_del_timer(&conn->retry);
        }

        ngx_http_rate_limit_link_fail_waiting(conn);
    }
}


ngx_uint_t
ngx_http_rate_limit_link_nodes(void)
{
    return ngx_http_rate_limit_link->nnodes;
}


static ngx_int_t
ngx_http_rate_limit_link_queue(ngx_http_rate_limit_node_t *node,
    ngx_http_rate_limit_op_t *op, ngx_log_t *log)
{
    ngx_uint_t                   full;
    ngx_http_rate_limit_conn_t  *conn;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    conn = ngx_http_rate_limit_link_pick(node, &full);

    if (conn == NULL) {
        if (full) {
            ngx_http_rate_limit_log_error(&node->throttle,
                                          NGX_HTTP_RATE_LIMIT_LOG_NO_ROOM,
                                          log,
                                          "rate_limit: redis \"%V\": "
                                          "max_pending reached (%ui "
                                          "commands on each connection)",
                                          &node->name, link->max_pending);
            ngx_http_rate_limit_metrics_command(node->metrics,
                                              NGX_HTTP_RATE_LIMIT_CMD_NO_ROOM,
                                              0);
            return NGX_BUSY;
        }

        ngx_http_rate_limit_log_error(&node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_DOWN, log,
                                      "rate_limit: redis \"%V\" is not "
                                      "connected", &node->name);
        return NGX_DECLINED;
    }

    (void) rl_core_conn_queue(&conn->st);

    op->shape.depth = 1;
    op->shape.size = NGX_HTTP_RATE_LIMIT_ERROR_REPLY
                     + op->nvalues * NGX_HTTP_RATE_LIMIT_INTEGER_REPLY;
    op->conn = conn;
    op->sent = 0;
    op->resent = 0;
    op->timed_out = 0;

    ngx_queue_insert_tail(&conn->waiting, &op->queue);
    ngx_http_rate_limit_link_count(conn);

    if (conn->st.state == RL_CORE_CONN_UP) {
        if (!conn->flush.posted) {
            ngx_post_event(&conn->flush, &ngx_posted_events);
        }

        if (conn->st.waiting >= NGX_HTTP_RATE_LIMIT_BATCH) {
            ngx_http_rate_limit_link_write(conn, 1);
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "rate_limit: op %p queued on redis connection %ui, "
                   "%uD pending", op, conn->number,
                   conn->st.waiting + conn->st.sent);

    return NGX_OK;
}


void
ngx_http_rate_limit_link_cancel(ngx_http_rate_limit_op_t *op)
{
    ngx_http_rate_limit_conn_t  *conn = op->conn;

    if (op->route) {
        /* split by the cluster layer: its parts are its to cancel */
        ngx_http_rate_limit_cluster_cancel(op);
        return;
    }

    if (op->sent) {
        /* written: the reply must still be read; it finds nobody */
        op->data = NULL;
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "rate_limit: op %p cancelled before it was written", op);

    ngx_queue_remove(&op->queue);
    rl_core_conn_unqueue(&conn->st);
    ngx_http_rate_limit_link_count(conn);
    ngx_free(op);
}


void
ngx_http_rate_limit_link_timeout(ngx_http_rate_limit_op_t *op)
{
    ngx_http_rate_limit_conn_t  *conn = op->conn;

    ngx_http_rate_limit_metrics_command(conn->node->metrics,
                                        NGX_HTTP_RATE_LIMIT_CMD_TIMEOUT, 0);

    /* a late reply still tells the latency, not a second result */
    op->timed_out = 1;

    ngx_http_rate_limit_link_cancel(op);
}


/*
 * Round robin over the connections that are up and have room; else one
 * being made that has room.  *full says whether some connection is usable
 * but has none.
 */

static ngx_http_rate_limit_conn_t *
ngx_http_rate_limit_link_pick(ngx_http_rate_limit_node_t *node,
    ngx_uint_t *full)
{
    ngx_uint_t                   i, n;
    ngx_http_rate_limit_conn_t  *conn, *making;

    *full = 0;
    making = NULL;

    for (i = 0; i < node->nconns; i++) {
        n = (node->next + i) % node->nconns;
        conn = &node->conns[n];

        if (conn->st.state == RL_CORE_CONN_DOWN) {
            continue;
        }

        if (!rl_core_conn_room(&conn->st)) {
            *full = 1;
            continue;
        }

        if (conn->st.state == RL_CORE_CONN_UP) {
            node->next = n + 1;
            return conn;
        }

        if (making == NULL) {
            /* a request that meets a connection being made waits for it */
            making = conn;
        }
    }

    return making;
}


static void
ngx_http_rate_limit_link_connect(ngx_http_rate_limit_conn_t *conn)
{
    redisAsyncContext           *ac;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_node_t  *node;

    link = ngx_http_rate_limit_link;
    node = conn->node;

    if (node->host == NULL && node->unix_path == NULL) {
        /* the sentinels have not said where the master is yet */
        return;
    }

    (void) rl_core_conn_connect(&conn->st);
    ngx_http_rate_limit_link_count(conn);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, link->log, 0,
                   "rate_limit: redis \"%V\" connection %ui connecting",
                   &node->name, conn->number);

    /* numeric addresses only: hiredis does no DNS lookup for them */

    if (node->unix_path) {
        ac = redisAsyncConnectUnix(node->unix_path);

    } else {
        ac = redisAsyncConnect(node->host, node->port);
    }

    if (ac == NULL || ac->err) {
        ngx_http_rate_limit_log_error(&node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_CONNECT,
                                      link->log,
                                      "rate_limit: cannot connect to redis "
                                      "\"%V\": %s", &node->name,
                                      ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_rate_limit_link_lost(conn);
        return;
    }

    /* the TLS handshake runs in hiredis's reads and writes, not here */

    if (link->ssl_ctx
        && ngx_http_rate_limit_tls_start(ac, link->ssl_ctx, &node->tls_name,
                                         link->log)
           != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_link_lost(conn);
        return;
    }

    ngx_http_rate_limit_reader_attach(&conn->reader, ac);
    ac->data = conn;

    /*
     * Attach before setting the connect callback: that call arms the
     * write event which tells when the connection is made.
     */

    if (ngx_http_rate_limit_hiredis_attach(ac, link->log,
                                           ngx_http_rate_limit_link_read_done,
                                           conn)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_link_lost(conn);
        return;
    }

    conn->ac = ac;

    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_rate_limit_link_on_disconnect);
    redisAsyncSetConnectCallback(ac, ngx_http_rate_limit_link_on_connect);

    ngx_add_timer(&conn->connect, link->connect_timeout);

    ngx_http_rate_limit_link_handshake(conn);
}


/*
 * hiredis writes these in order once connected, and Redis answers them in
 * order: each is checked as it is answered, and the first that fails drops
 * the connection before anything later could run.  SCRIPT LOAD follows
 * only if SCRIPT EXISTS says the script is missing.
 */

static void
ngx_http_rate_limit_link_handshake(ngx_http_rate_limit_conn_t *conn)
{
    int                          argc;
    char                         db[NGX_INT_T_LEN];
    size_t                       argvlen[3];
    const char                  *argv[3];
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    argc = ngx_http_rate_limit_link_auth(&link->username, &link->password,
                                         argv, argvlen);
    if (argc) {
        ngx_http_rate_limit_link_step(conn, &ngx_http_rate_limit_step_auth,
                                      argc, argv, argvlen);
    }

    if (link->db >= 0) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = db;
        argvlen[1] = ngx_sprintf((u_char *) db, "%i", link->db)
                     - (u_char *) db;

        ngx_http_rate_limit_link_step(conn, &ngx_http_rate_limit_step_select,
                                      2, argv, argvlen);
    }

    argv[0] = "ROLE";
    argvlen[0] = 4;
    ngx_http_rate_limit_link_step(conn, &ngx_http_rate_limit_step_role,
                                  1, argv, argvlen);

    argv[0] = "INFO";
    argvlen[0] = 4;
    argv[1] = "server";
    argvlen[1] = 6;
    ngx_http_rate_limit_link_step(conn, &ngx_http_rate_limit_step_info,
                                  2, argv, argvlen);

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "EXISTS";
    argvlen[1] = 6;
    argv[2] = rl_core_script_sha1();
    argvlen[2] = 40;
    ngx_http_rate_limit_link_step(conn, &ngx_http_rate_limit_step_exists,
                                  3, argv, argvlen);
}


static void
ngx_http_rate_limit_link_step(ngx_http_rate_limit_conn_t *conn,
    const ngx_http_rate_limit_step_t *step, int argc, const char **argv,
    const size_t *argvlen)
{
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_http_rate_limit_link->log, 0,
                   "rate_limit: redis \"%V\" connection %ui: %s",
                   &conn->node->name, conn->number, step->name);

    /* fails only on a context being torn down, which answers nothing */

    (void) redisAsyncCommandArgv(conn->ac, ngx_http_rate_limit_link_on_step,
                                 (void *) step, argc, argv, argvlen);
}


/*
 * ASK: the next command, and only that one, may touch a slot that is
 * being imported here.  Written right before it on the same connection.
 */

static void
ngx_http_rate_limit_link_asking(ngx_http_rate_limit_conn_t *conn)
{
    size_t       argvlen[1];
    const char  *argv[1];

    argv[0] = "ASKING";
    argvlen[0] = 6;

    ngx_http_rate_limit_link_step(conn, &ngx_http_rate_limit_step_asking,
                                  1, argv, argvlen);
}


/* SCRIPT LOAD of the embedded script, checked by step. */

static void
ngx_http_rate_limit_link_load(ngx_http_rate_limit_conn_t *conn,
    const ngx_http_rate_limit_step_t *step)
{
    size_t       len;
    size_t       argvlen[3];
    const char  *argv[3];

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = rl_core_script(&len);
    argvlen[2] = len;

    ngx_http_rate_limit_link_step(conn, step, 3, argv, argvlen);
}


static void
ngx_http_rate_limit_link_ready(ngx_http_rate_limit_conn_t *conn)
{
    if (rl_core_conn_ready(&conn->st) != RL_CORE_OK) {
        return;
    }

    ngx_http_rate_limit_link_count(conn);

    if (conn->connect.timer_set) {
        ngx_del_timer(&conn->connect);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_http_rate_limit_link->log, 0,
                   "rate_limit: redis \"%V\" connection %ui up, "
                   "%uD commands waiting", &conn->node->name, conn->number,
                   conn->st.waiting);

    if (!ngx_queue_empty(&conn->waiting) && !conn->flush.posted) {
        ngx_post_event(&conn->flush, &ngx_posted_events);
    }
}


/*
 * The connection is gone or never came (conn->ac is already NULL): back
 * off, then try again.  Commands that wait keep waiting only if the next
 * attempt is made at once; otherwise their requests get the fail policy
 * now rather than at their timeout.
 */

static void
ngx_http_rate_limit_link_lost(ngx_http_rate_limit_conn_t *conn)
{
    ngx_msec_t                   delay;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    delay = (ngx_msec_t) rl_core_conn_lost(&conn->st);
    ngx_http_rate_limit_link_count(conn);

    ngx_http_rate_limit_link_stop(conn);

    if (link->exiting || conn->node->retired) {
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, link->log, 0,
                   "rate_limit: redis \"%V\" connection %ui down, "
                   "retry in %M ms", &conn->node->name, conn->number, delay);

    if (!conn->retry.timer_set) {
        ngx_add_timer(&conn->retry, delay);
    }

    if (delay > 0) {
        ngx_http_rate_limit_link_fail_waiting(conn);
    }

    /* the master may have moved: a failover, a replica, READONLY */

    if (link->mode == NGX_HTTP_RATE_LIMIT_SENTINEL && !link->moving) {
        ngx_http_rate_limit_sentinel_refresh();
    }

    /* a failed master: its replica takes its slots */

    if (link->mode == NGX_HTTP_RATE_LIMIT_CLUSTER) {
        ngx_http_rate_limit_slots_refresh();
    }
}


/*
 * The sentinels name the master: every connection goes there, at once
 * and with a fresh backoff, unless it is there already.
 */

static void
ngx_http_rate_limit_link_move(const char *host, int port)
{
    u_char                      *p, *name;
    size_t                       len;
    ngx_uint_t                   i, same;
    ngx_http_rate_limit_conn_t  *conn;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_node_t  *node;

    link = ngx_http_rate_limit_link;
    node = link->nodes[0];

    same = node->host != NULL && node->port == port
           && ngx_strcmp(node->host, host) == 0;

    if (!same) {
        len = ngx_strlen(host);

        /* the host, and the name the logs give the node: "host:port" */

        p = ngx_alloc(len + 1, link->log);
        name = ngx_alloc(len + 1 + NGX_INT_T_LEN, link->log);

        if (p == NULL || name == NULL) {
            ngx_free(p);
            ngx_free(name);
            return;
        }

        ngx_free(node->host);
        ngx_free(node->name.data);

        node->host = (char *) p;
        ngx_memcpy(p, host, len + 1);
        node->port = port;

        node->name.data = name;
        node->name.len = ngx_sprintf(name, "%s:%d", host, port) - name;

        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "rate_limit: the master is at %V", &node->name);

        ngx_http_rate_limit_link_name_metrics(node);
    }

    link->moving = 1;

    for (i = 0; i < node->nconns; i++) {
        conn = &node->conns[i];

        if (same && conn->st.state != RL_CORE_CONN_DOWN) {
            continue;
        }

        ngx_http_rate_limit_link_drop(conn);

        conn->st.failures = 0;

        if (conn->retry.timer_set) {
            ngx_del_timer(&conn->retry);
        }

        ngx_add_timer(&conn->retry, 0);
    }

    link->moving = 0;
}


/*
 * Drops a connection that misbehaves.  Inside a hiredis callback the free
 * is deferred by hiredis until the callback returns; either way every
 * written command is answered with NULL.
 */

static void
ngx_http_rate_limit_link_drop(ngx_http_rate_limit_conn_t *conn)
{
    redisAsyncContext  *ac;

    ac = conn->ac;
    if (ac == NULL) {
        return;
    }

    conn->ac = NULL;

    ngx_http_rate_limit_link_lost(conn);

    redisAsyncFree(ac);
}


/* The events of a connection that is gone: all but the retry. */

static void
ngx_http_rate_limit_link_stop(ngx_http_rate_limit_conn_t *conn)
{
    if (conn->connect.timer_set) {
        ngx_del_timer(&conn->connect);
    }

    if (conn->watchdog.timer_set) {
        ngx_del_timer(&conn->watchdog);
    }

    if (conn->flush.posted) {
        ngx_delete_posted_event(&conn->flush);
    }
}


static void
ngx_http_rate_limit_link_fail_waiting(ngx_http_rate_limit_conn_t *conn)
{
    ngx_queue_t               *q;
    ngx_http_rate_limit_op_t  *op;

    /* a handler may queue again: take one at a time from the head */

    while (!ngx_queue_empty(&conn->waiting)) {
        q = ngx_queue_head(&conn->waiting);
        ngx_queue_remove(q);
        rl_core_conn_unqueue(&conn->st);

        op = ngx_queue_data(q, ngx_http_rate_limit_op_t, queue);
        ngx_http_rate_limit_link_count(conn);
        ngx_http_rate_limit_metrics_command(conn->node->metrics,
                                            NGX_HTTP_RATE_LIMIT_CMD_ERROR, 0);
        ngx_http_rate_limit_link_answer(op, NGX_HTTP_RATE_LIMIT_ANSWER_LOST,
                                        NULL);
    }
}


static void
ngx_http_rate_limit_link_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_rate_limit_conn_t  *conn = ac->data;

    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    if (conn->ac != ac) {
        return;
    }

    if (status == REDIS_OK) {
        (void) rl_core_conn_connected(&conn->st);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, link->log, 0,
                       "rate_limit: redis \"%V\" connection %ui connected",
                       &conn->node->name, conn->number);
        return;
    }

    ngx_http_rate_limit_log_error(&conn->node->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT, link->log,
                                  "rate_limit: cannot connect to redis "
                                  "\"%V\": %s", &conn->node->name,
                                  ac->errstr);

    /* hiredis frees the context right after this returns */

    conn->ac = NULL;
    ngx_http_rate_limit_link_lost(conn);
}


static void
ngx_http_rate_limit_link_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_conn_t  *conn = ac->data;

    const char                  *why, *tls;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    if (conn->ac != ac) {
        /* dropped by us, and logged then */
        return;
    }

    if (status != REDIS_OK) {
        why = ngx_http_rate_limit_reader_refusal(&conn->reader);
        tls = link->ssl_ctx ? ngx_http_rate_limit_tls_reason() : NULL;

        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_CLOSED,
                                      link->log,
                                      "rate_limit: redis \"%V\" closed the "
                                      "connection: %s%s%s", &conn->node->name,
                                      why ? why : ac->errstr,
                                      tls ? ": TLS: " : "", tls ? tls : "");
    }

    conn->ac = NULL;
    ngx_http_rate_limit_link_lost(conn);
}


static void
ngx_http_rate_limit_link_on_step(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                        *r = reply;
    ngx_http_rate_limit_conn_t        *conn = ac->data;
    const ngx_http_rate_limit_step_t  *step = privdata;

    if (r == NULL || conn->ac != ac) {
        /* torn down: the connection is being dropped already */
        return;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" refused %s: "
                                      "%*s", &conn->node->name, step->name,
                                      (size_t) ngx_min(r->len, 256), r->str);
        ngx_http_rate_limit_link_drop(conn);
        return;
    }

    if (step->check(conn, r) != NGX_OK) {
        ngx_http_rate_limit_link_drop(conn);
    }
}


static ngx_int_t
ngx_http_rate_limit_link_check_ok(ngx_http_rate_limit_conn_t *conn,
    redisReply *r)
{
    if (r->type == REDIS_REPLY_STATUS) {
        return NGX_OK;
    }

    ngx_http_rate_limit_log_error(&conn->node->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: redis \"%V\" answered AUTH, "
                                  "SELECT or ASKING with a reply of type %d",
                                  &conn->node->name, r->type);
    return NGX_ERROR;
}


/*
 * A replica refuses writes (READONLY): after a failover a name may point
 * at one, and it is not used until it is a master again.
 */

static ngx_int_t
ngx_http_rate_limit_link_check_role(ngx_http_rate_limit_conn_t *conn,
    redisReply *r)
{
    redisReply  *role;

    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" answered "
                                      "ROLE with a reply of type %d",
                                      &conn->node->name, r->type);
        return NGX_ERROR;
    }

    role = r->element[0];

    if (role->len == 6 && ngx_strncmp(role->str, "master", 6) == 0) {
        return NGX_OK;
    }

    if (role->len == 5 && ngx_strncmp(role->str, "slave", 5) == 0) {
        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" is a "
                                      "replica, not used",
                                      &conn->node->name);
        return NGX_ERROR;
    }

    ngx_http_rate_limit_log_error(&conn->node->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: redis \"%V\" has the role "
                                  "\"%*s\", not master, not used",
                                  &conn->node->name,
                                  (size_t) ngx_min(role->len, 32), role->str);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_rate_limit_link_check_info(ngx_http_rate_limit_conn_t *conn,
    redisReply *r)
{
    rl_core_version_t  v;

    if (r->type != REDIS_REPLY_STRING
        || rl_core_redis_version(r->str, r->len, &v) != RL_CORE_OK)
    {
        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" did not "
                                      "report its version in INFO server",
                                      &conn->node->name);
        return NGX_ERROR;
    }

    if (!rl_core_redis_version_supported(&v)) {
        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" is version "
                                      "%ud.%ud.%ud, older than 5.0, not used",
                                      &conn->node->name, v.major, v.minor,
                                      v.patch);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_link_check_exists(ngx_http_rate_limit_conn_t *conn,
    redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1
        || r->element[0]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" answered "
                                      "SCRIPT EXISTS with a reply of type %d",
                                      &conn->node->name, r->type);
        return NGX_ERROR;
    }

    if (r->element[0]->integer == 1) {
        ngx_http_rate_limit_link_ready(conn);
        return NGX_OK;
    }

    ngx_http_rate_limit_link_load(conn, &ngx_http_rate_limit_step_load);

    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_link_check_load(ngx_http_rate_limit_conn_t *conn,
    redisReply *r)
{
    if (ngx_http_rate_limit_link_check_sha(conn, r) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_rate_limit_link_ready(conn);
    return NGX_OK;
}


static ngx_int_t
ngx_http_rate_limit_link_check_reload(ngx_http_rate_limit_conn_t *conn,
    redisReply *r)
{
    return ngx_http_rate_limit_link_check_sha(conn, r);
}


static ngx_int_t
ngx_http_rate_limit_link_check_sha(ngx_http_rate_limit_conn_t *conn,
    redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING && r->len == 40
        && ngx_strncmp(r->str, rl_core_script_sha1(), 40) == 0)
    {
        return NGX_OK;
    }

    /* a Redis that hashes differently: EVALSHA can never work */

    ngx_log_error(NGX_LOG_ALERT, ngx_http_rate_limit_link->log, 0,
                  "rate_limit: redis \"%V\" answered SCRIPT LOAD with "
                  "\"%*s\", expected \"%s\"", &conn->node->name,
                  (size_t) (r->str ? ngx_min(r->len, 64) : 0),
                  r->str ? r->str : "", rl_core_script_sha1());

    return NGX_ERROR;
}


static void
ngx_http_rate_limit_link_on_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                  *r = reply;
    ngx_http_rate_limit_op_t    *op = privdata;

    size_t                       i;
    u_char                       shape[64];
    ngx_str_t                    text;
    ngx_http_rate_limit_conn_t  *conn;
    rl_core_redis_error_e        kind;

    conn = op->conn;

    ngx_queue_remove(&op->queue);
    op->sent = 0;

    if (ngx_http_rate_limit_link == NULL
        || ngx_http_rate_limit_link->exiting)
    {
        ngx_free(op);
        return;
    }

    if (r == NULL) {
        rl_core_conn_replied(&conn->st, 0);
        ngx_http_rate_limit_link_count(conn);
        ngx_http_rate_limit_link_result(conn, op, NGX_HTTP_RATE_LIMIT_CMD_ERROR,
                                        0);
        ngx_http_rate_limit_link_answer(op, NGX_HTTP_RATE_LIMIT_ANSWER_LOST,
                                        NULL);
        return;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        kind = rl_core_classify_error(r->str, r->len);

        if (kind == RL_CORE_REDIS_ERR_NOSCRIPT && !op->resent
            && op->data != NULL && conn->ac == ac
            && ngx_http_rate_limit_link_resend(conn, op) == NGX_OK)
        {
            return;
        }

        rl_core_conn_replied(&conn->st, 1);
        ngx_http_rate_limit_link_count(conn);

        ngx_http_rate_limit_link_result(conn, op,
                                       ngx_http_rate_limit_link_error_result(r),
                                       op->written_us);

        if (kind == RL_CORE_REDIS_ERR_RECONNECT && conn->ac == ac) {
            ngx_http_rate_limit_log_error(&conn->node->throttle,
                                          NGX_HTTP_RATE_LIMIT_LOG_RECONNECT,
                                          ngx_http_rate_limit_link->log,
                                          "rate_limit: redis \"%V\" "
                                          "answered \"%*s\", reconnecting",
                                          &conn->node->name,
                                          (size_t) ngx_min(r->len, 256),
                                          r->str);
            ngx_http_rate_limit_link_drop(conn);
        }

        text.data = (u_char *) r->str;
        text.len = r->len;

        ngx_http_rate_limit_link_answer(op, NGX_HTTP_RATE_LIMIT_ANSWER_ERROR,
                                        &text);
        return;
    }

    rl_core_conn_replied(&conn->st, 1);
    ngx_http_rate_limit_link_count(conn);

    if (r->type != REDIS_REPLY_ARRAY || r->elements != op->nvalues) {
        goto malformed;
    }

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER) {
            goto malformed;
        }

        op->values[i] = r->element[i]->integer;
    }

    ngx_http_rate_limit_link_result(conn, op, NGX_HTTP_RATE_LIMIT_CMD_OK,
                                    op->written_us);
    ngx_http_rate_limit_link_answer(op, NGX_HTTP_RATE_LIMIT_ANSWER_OK, NULL);
    return;

malformed:

    ngx_http_rate_limit_link_result(conn, op, NGX_HTTP_RATE_LIMIT_CMD_ERROR,
                                    op->written_us);

    /* what came instead, for the waiter's log line */

    text.data = shape;
    text.len = ngx_snprintf(shape, sizeof(shape), "type %d, %uz elements",
                            r->type, (size_t) r->elements)
               - shape;

    ngx_http_rate_limit_link_answer(op, NGX_HTTP_RATE_LIMIT_ANSWER_MALFORMED,
                                    &text);
}


/*
 * NOSCRIPT (a restart, SCRIPT FLUSH): the script is loaded once on this
 * connection, and the command is written again behind the load, as
 * EVALSHA: Redis runs a connection's commands in order.
 */

static ngx_int_t
ngx_http_rate_limit_link_resend(ngx_http_rate_limit_conn_t *conn,
    ngx_http_rate_limit_op_t *op)
{
    if (rl_core_conn_resend(&conn->st, &op->gen)) {
        ngx_http_rate_limit_link_load(conn, &ngx_http_rate_limit_step_reload);
    }

    if (op->asking) {
        ngx_http_rate_limit_link_asking(conn);
    }

    if (redisAsyncFormattedCommand(conn->ac,
                                   ngx_http_rate_limit_link_on_reply, op,
                                   op->cmd, op->len)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_http_rate_limit_link->log, 0,
                   "rate_limit: op %p resent after NOSCRIPT", op);

    op->resent = 1;
    op->sent = 1;
    op->written = ngx_current_msec;
    op->written_us = ngx_http_rate_limit_monotonic_usec();
    ngx_queue_insert_tail(&conn->sent, &op->queue);

    return NGX_OK;
}


/* Hands the answer to the waiter, or frees an op nobody waits for. */

static void
ngx_http_rate_limit_link_answer(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    if (op->data == NULL) {
        ngx_free(op);
        return;
    }

    op->handler(op, answer, text);
}


static void
ngx_http_rate_limit_link_read_done(void *data)
{
    ngx_http_rate_limit_conn_t  *conn = data;

    if (conn->ac == NULL) {
        return;
    }

    if (ngx_http_rate_limit_reader_check(&conn->reader) != NGX_OK) {
        ngx_http_rate_limit_log_error(&conn->node->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_CLOSED,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" sent %s, "
                                      "reconnecting", &conn->node->name,
                                      ngx_http_rate_limit_reader_refusal(
                                                              &conn->reader));
        ngx_http_rate_limit_link_drop(conn);
        return;
    }

    /* replies made room, and a write that waited may be done */

    if (!ngx_queue_empty(&conn->waiting) && !conn->flush.posted) {
        ngx_post_event(&conn->flush, &ngx_posted_events);
    }
}


/*
 * Hands hiredis the commands that wait, only when it has written
 * everything before: what stays here can still be taken back when its
 * request leaves.  early: from link_send, in a request's handler, so it
 * writes at once and answers nobody (a refused command waits for the end
 * of the turn); else at the end of the turn, where hiredis's posted write
 * follows.
 */

static void
ngx_http_rate_limit_link_write(ngx_http_rate_limit_conn_t *conn,
    ngx_uint_t early)
{
    uint32_t                     gen;
    uint64_t                     now;   /* us, monotonic */
    ngx_uint_t                   n;
    ngx_queue_t                 *q;
    redisAsyncContext           *ac;
    ngx_http_rate_limit_op_t    *op;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;
    ac = conn->ac;

    /* TLS: only hiredis's own write drives OpenSSL's state */

    if (ac == NULL || conn->st.state != RL_CORE_CONN_UP
        || sdslen(ac->c.obuf) != 0 || (early && link->ssl_ctx != NULL))
    {
        return;
    }

    n = 0;
    now = ngx_http_rate_limit_monotonic_usec();

    while (!ngx_queue_empty(&conn->waiting)) {
        q = ngx_queue_head(&conn->waiting);
        op = ngx_queue_data(q, ngx_http_rate_limit_op_t, queue);

        if (!rl_core_conn_write(&conn->st, &gen)) {
            break;
        }

        ngx_queue_remove(q);

        if (op->asking) {
            ngx_http_rate_limit_link_asking(conn);
        }

        if (redisAsyncFormattedCommand(ac, ngx_http_rate_limit_link_on_reply,
                                       op, op->cmd, op->len)
            != REDIS_OK)
        {
            /* only a context being torn down refuses */
            rl_core_conn_replied(&conn->st, 0);

            if (early) {
                (void) rl_core_conn_queue(&conn->st);
                ngx_queue_insert_head(&conn->waiting, q);
                ngx_http_rate_limit_link_count(conn);
                break;
            }

            ngx_http_rate_limit_link_count(conn);
            ngx_http_rate_limit_link_answer(op,
                                            NGX_HTTP_RATE_LIMIT_ANSWER_LOST,
                                            NULL);
            break;
        }

        op->gen = gen;
        op->sent = 1;
        op->written = ngx_current_msec;
        op->written_us = now;
        ngx_queue_insert_tail(&conn->sent, q);
        n++;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, link->log, 0,
                   "rate_limit: redis connection %ui wrote %ui commands%s, "
                   "%uD sent", conn->number, n, early ? " at once" : "",
                   conn->st.sent);

    if (n == 0) {
        return;
    }

    if (!conn->watchdog.timer_set) {
        ngx_add_timer(&conn->watchdog, link->connect_timeout);
    }

    if (early) {
        ngx_http_rate_limit_hiredis_write_now(ac);
    }
}


static void
ngx_http_rate_limit_link_flush_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_link_write(ev->data, 0);
}


/*
 * The worker is about to exit (exit_process, before link_exit): what
 * waits is handed to hiredis and written with one nonblocking write per
 * connection, without waiting for room or answers (concurrency leases
 * released at exit).  What does not fit is lost: leases expire anyway.
 */

void
ngx_http_rate_limit_link_flush_now(void)
{
    ngx_uint_t                   i, n;
    ngx_http_rate_limit_conn_t  *conn;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;
    if (link == NULL) {
        return;
    }

    for (n = 0; n < link->nnodes; n++) {
        for (i = 0; i < link->nodes[n]->nconns; i++) {
            conn = &link->nodes[n]->conns[i];

            if (conn->ac == NULL || conn->st.state != RL_CORE_CONN_UP) {
                continue;
            }

            if (sdslen(conn->ac->c.obuf) != 0) {
                redisAsyncHandleWrite(conn->ac);
            }

            if (conn->ac != NULL) {
                ngx_http_rate_limit_link_flush_handler(&conn->flush);
            }

            if (conn->ac != NULL && sdslen(conn->ac->c.obuf) != 0) {
                redisAsyncHandleWrite(conn->ac);
            }
        }
    }
}


static void
ngx_http_rate_limit_link_retry_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_conn_t  *conn = ev->data;

    if (ngx_http_rate_limit_link->exiting || conn->ac != NULL) {
        return;
    }

    ngx_http_rate_limit_link_connect(conn);
}


static void
ngx_http_rate_limit_link_connect_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_conn_t  *conn = ev->data;

    ngx_http_rate_limit_log_error(&conn->node->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: redis \"%V\" did not connect "
                                  "and answer the handshake within %M ms",
                                  &conn->node->name,
                                  ngx_http_rate_limit_link->connect_timeout);

    ngx_http_rate_limit_link_drop(conn);
}


/*
 * Set when commands are written and not moved on every reply: when it
 * fires early, it waits again for what the oldest command has left.  Only
 * a reply to that command keeps the connection: bytes of a reply that
 * never ends do not.
 */

static void
ngx_http_rate_limit_link_watchdog_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_conn_t  *conn = ev->data;

    ngx_msec_t                   age, limit;
    ngx_http_rate_limit_op_t    *op;

    if (conn->ac == NULL || ngx_queue_empty(&conn->sent)) {
        return;
    }

    limit = ngx_http_rate_limit_link->connect_timeout;

    op = ngx_queue_data(ngx_queue_head(&conn->sent), ngx_http_rate_limit_op_t,
                        queue);
    age = ngx_current_msec - op->written;

    if (age < limit) {
        ngx_add_timer(&conn->watchdog, limit - age);
        return;
    }

    ngx_http_rate_limit_log_error(&conn->node->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_WATCHDOG,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: redis \"%V\" has not "
                                  "answered for %M ms with %uD commands "
                                  "pending, reconnecting", &conn->node->name,
                                  age, conn->st.sent);

    ngx_http_rate_limit_link_drop(conn);
}


static void
ngx_http_rate_limit_link_event(ngx_event_t *ev, ngx_event_handler_pt handler,
    ngx_http_rate_limit_conn_t *conn, ngx_log_t *log)
{
    ev->handler = handler;
    ev->data = conn;
    ev->log = log;
    ev->cancelable = 1;
}


int
ngx_http_rate_limit_link_auth(ngx_str_t *username, ngx_str_t *password,
    const char **argv, size_t *argvlen)
{
    int  argc;

    if (password->len == 0) {
        return 0;
    }

    argc = 0;
    argv[argc] = "AUTH";
    argvlen[argc++] = 4;

    if (username->len) {
        argv[argc] = (char *) username->data;
        argvlen[argc++] = username->len;
    }

    argv[argc] = (char *) password->data;
    argvlen[argc++] = password->len;

    return argc;
}


ngx_int_t
ngx_http_rate_limit_link_copy(ngx_str_t *dst, ngx_str_t *src,
    ngx_log_t *log)
{
    if (src->len == 0) {
        ngx_str_null(dst);
        return NGX_OK;
    }

    /* NUL-terminated: hiredis takes C strings for addresses */

    dst->data = ngx_alloc(src->len + 1, log);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->data, src->len);
    dst->data[src->len] = '\0';
    dst->len = src->len;

    return NGX_OK;
}


static void
ngx_http_rate_limit_link_free(ngx_http_rate_limit_link_t *link)
{
    ngx_uint_t                   n;
    ngx_http_rate_limit_node_t  *node;

    for (n = 0; link->nodes && n < link->nnodes; n++) {
        node = link->nodes[n];

        ngx_free(node->name.data);
        ngx_free(node->host);
        ngx_free(node->unix_path);
        ngx_free(node->tls_name.data);
        ngx_free(node->conns);
        ngx_free(node);
    }

    ngx_free(link->nodes);
    ngx_free(link->tls_name.data);
    ngx_free(link->username.data);
    ngx_free(link->password.data);
    ngx_free(link);
}


/*
 * The node's metrics record, by the label the metrics give it: the
 * socket path, or the numeric "host:port" it is reached at.
 */

static void
ngx_http_rate_limit_link_name_metrics(ngx_http_rate_limit_node_t *node)
{
    u_char     *p;
    ngx_str_t   label;
    u_char      buf[NGX_SOCKADDR_STRLEN + NGX_INT_T_LEN + 2];

    if (node->unix_path) {
        label.data = (u_char *) node->unix_path;
        label.len = ngx_strlen(node->unix_path);

    } else if (node->host) {
        p = ngx_snprintf(buf, sizeof(buf), "%s:%d", node->host, node->port);
        label.data = buf;
        label.len = p - buf;

    } else {
        /* the sentinels have not named the master yet */
        return;
    }

    node->metrics = ngx_http_rate_limit_metrics_node(&label, ngx_cycle->log);
}


/* The connection's state and pending commands, as the gauges show them. */

static void
ngx_http_rate_limit_link_count(ngx_http_rate_limit_conn_t *conn)
{
    ngx_http_rate_limit_metrics_conn(&conn->metrics, conn->node->metrics,
                                     conn->st.state,
                                     conn->st.waiting + conn->st.sent);
}


/* A cluster's redirections are results of their own. */

static ngx_http_rate_limit_cmd_result_e
ngx_http_rate_limit_link_error_result(redisReply *r)
{
    if (r->len > 6 && ngx_strncmp(r->str, "MOVED ", 6) == 0) {
        return NGX_HTTP_RATE_LIMIT_CMD_MOVED;
    }

    if (r->len > 4 && ngx_strncmp(r->str, "ASK ", 4) == 0) {
        return NGX_HTTP_RATE_LIMIT_CMD_ASK;
    }

    return NGX_HTTP_RATE_LIMIT_CMD_ERROR;
}


/*
 * A written command's end.  One whose request timed out was counted then:
 * its reply adds only its latency.
 */

static void
ngx_http_rate_limit_link_result(ngx_http_rate_limit_conn_t *conn,
    ngx_http_rate_limit_op_t *op, ngx_http_rate_limit_cmd_result_e result,
    uint64_t written_us)
{
    ngx_http_rate_limit_metrics_command(conn->node->metrics,
                                        op->timed_out
                                        ? NGX_HTTP_RATE_LIMIT_CMD_RESULTS
                                        : result,
                                        written_us);
}
