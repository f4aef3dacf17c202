
/*
 * ngx_http_rate_limit_module: the per-worker Redis link.
 *
 * Each connection is a hiredis async context whose socket is wrapped in an
 * ngx_connection_t.  The adapter follows hiredis's rules: read events are
 * level-triggered, because hiredis reads at most 16 KiB per call and an
 * edge would strand the rest; adds and deletes are idempotent; the socket
 * is closed once, by NGINX, in cleanup.  Writes are not made from inside
 * addWrite: a posted event flushes once per event-loop turn, so commands of
 * requests that arrive together share one write.
 *
 * States: connecting (handshake queued: AUTH, SELECT, SCRIPT LOAD; requests
 * may queue behind it), up (after SCRIPT LOAD answered), down (a cancelable
 * backoff timer until the next attempt; requests fail at once).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_rate_limit_redis.h"


typedef enum {
    NGX_HTTP_RATE_LIMIT_DOWN = 0,
    NGX_HTTP_RATE_LIMIT_CONNECTING,
    NGX_HTTP_RATE_LIMIT_UP
} ngx_http_rate_limit_conn_state_e;


typedef struct {
    redisAsyncContext                  *ac;     /* NULL when down */
    ngx_connection_t                   *c;      /* hiredis's socket */
    redisAsyncContext                  *attached; /* until its cleanup */

    ngx_event_t                         retry;  /* backoff, cancelable */
    ngx_event_t                         connect; /* connect_timeout */
    ngx_event_t                         idle;   /* pending, nothing read */
    ngx_event_t                         flush;  /* posted: one write */

    ngx_http_rate_limit_conn_state_e    state;
    ngx_uint_t                          failures; /* since the last up */
    ngx_uint_t                          pending;  /* request commands */
    ngx_uint_t                          number;

    unsigned                            flushing:1;
    unsigned                            unasked:1; /* refused a reply */
} ngx_http_rate_limit_conn_t;


typedef struct {
    ngx_log_t                          *log;

    /* copies: the link outlives nothing, but must not need the conf */
    char                               *host;
    int                                 port;
    char                               *unix_path;
    ngx_int_t                           db;
    ngx_str_t                           username;
    ngx_str_t                           password;
    ngx_str_t                           name;
    ngx_msec_t                          connect_timeout;

    ngx_uint_t                          nconns;
    ngx_uint_t                          next;   /* round robin */
    ngx_http_rate_limit_conn_t         *conns;

    ngx_uint_t                          exiting;
} ngx_http_rate_limit_link_t;


static void ngx_http_rate_limit_redis_connect(ngx_http_rate_limit_conn_t *rc);
static ngx_int_t ngx_http_rate_limit_redis_attach(
    ngx_http_rate_limit_conn_t *rc, redisAsyncContext *ac);
static void ngx_http_rate_limit_redis_handshake(
    ngx_http_rate_limit_conn_t *rc);
static void ngx_http_rate_limit_redis_lost(ngx_http_rate_limit_conn_t *rc);
static void ngx_http_rate_limit_redis_drop(ngx_http_rate_limit_conn_t *rc);

static void ngx_http_rate_limit_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_rate_limit_redis_on_disconnect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_redis_on_handshake(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_redis_on_script(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_redis_on_reply(redisAsyncContext *ac,
    void *reply, void *privdata);
static ngx_int_t ngx_http_rate_limit_redis_eval(redisAsyncContext *ac,
    ngx_http_rate_limit_op_t *op);

static void ngx_http_rate_limit_redis_add_read(void *privdata);
static void ngx_http_rate_limit_redis_del_read(void *privdata);
static void ngx_http_rate_limit_redis_add_write(void *privdata);
static void ngx_http_rate_limit_redis_del_write(void *privdata);
static void ngx_http_rate_limit_redis_cleanup(void *privdata);

static void ngx_http_rate_limit_redis_read_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_redis_write_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_redis_flush_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_redis_flush(ngx_http_rate_limit_conn_t *rc);
static void ngx_http_rate_limit_redis_retry_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_redis_connect_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_redis_idle_handler(ngx_event_t *ev);

static void *ngx_http_rate_limit_redis_create_string(
    const redisReadTask *task, char *str, size_t len);
static void *ngx_http_rate_limit_redis_create_array(
    const redisReadTask *task, int elements);
static void *ngx_http_rate_limit_redis_create_integer(
    const redisReadTask *task, long long value);
static void *ngx_http_rate_limit_redis_create_nil(const redisReadTask *task);
static ngx_uint_t ngx_http_rate_limit_redis_unasked(
    const redisReadTask *task);

static char *ngx_http_rate_limit_strdup(ngx_str_t *s, ngx_log_t *log);


static ngx_http_rate_limit_link_t  *ngx_http_rate_limit_link;
static time_t  ngx_http_rate_limit_logged[NGX_HTTP_RATE_LIMIT_LOG_CAUSES];


/*
 * hiredis asserts (and so aborts the worker) when a reply comes that no
 * command asked for, which only a broken server or proxy sends.  The
 * reader's object functions are wrapped to refuse such a reply instead:
 * the reader then fails, and hiredis drops the connection.
 */

static redisReplyObjectFunctions  *ngx_http_rate_limit_hiredis_fn;

static redisReplyObjectFunctions  ngx_http_rate_limit_reply_fn = {
    ngx_http_rate_limit_redis_create_string,
    ngx_http_rate_limit_redis_create_array,
    ngx_http_rate_limit_redis_create_integer,
    ngx_http_rate_limit_redis_create_nil,
    NULL                                    /* hiredis's, at first use */
};


ngx_int_t
ngx_http_rate_limit_redis_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf)
{
    ngx_uint_t                   i;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_conn_t  *rc;

    link = ngx_calloc(sizeof(ngx_http_rate_limit_link_t), cycle->log);
    if (link == NULL) {
        return NGX_ERROR;
    }

    link->log = cycle->log;
    link->port = rcf->port;
    link->db = rcf->db;
    link->connect_timeout = rcf->connect_timeout;
    link->nconns = rcf->connections;

    link->name.data = (u_char *) ngx_http_rate_limit_strdup(&rcf->name,
                                                            cycle->log);
    link->name.len = rcf->name.len;

    if (rcf->unix_path.len) {
        link->unix_path = ngx_http_rate_limit_strdup(&rcf->unix_path,
                                                     cycle->log);
    } else {
        link->host = ngx_http_rate_limit_strdup(&rcf->host, cycle->log);
    }

    if (rcf->username.len) {
        link->username.data = (u_char *) ngx_http_rate_limit_strdup(
                                                 &rcf->username, cycle->log);
        link->username.len = rcf->username.len;
    }

    if (rcf->password.len) {
        link->password.data = (u_char *) ngx_http_rate_limit_strdup(
                                                 &rcf->password, cycle->log);
        link->password.len = rcf->password.len;
    }

    link->conns = ngx_calloc(link->nconns * sizeof(ngx_http_rate_limit_conn_t),
                             cycle->log);

    if (link->name.data == NULL
        || (link->unix_path == NULL && link->host == NULL)
        || (rcf->username.len && link->username.data == NULL)
        || (rcf->password.len && link->password.data == NULL)
        || link->conns == NULL)
    {
        ngx_free(link->name.data);
        ngx_free(link->host);
        ngx_free(link->unix_path);
        ngx_free(link->username.data);
        ngx_free(link->password.data);
        ngx_free(link->conns);
        ngx_free(link);
        return NGX_ERROR;
    }

    ngx_http_rate_limit_link = link;

    for (i = 0; i < link->nconns; i++) {
        rc = &link->conns[i];
        rc->number = i;

        /* the worker must not wait for reconnect timers when quitting */

        rc->retry.handler = ngx_http_rate_limit_redis_retry_handler;
        rc->retry.data = rc;
        rc->retry.log = cycle->log;
        rc->retry.cancelable = 1;

        rc->connect.handler = ngx_http_rate_limit_redis_connect_handler;
        rc->connect.data = rc;
        rc->connect.log = cycle->log;
        rc->connect.cancelable = 1;

        rc->idle.handler = ngx_http_rate_limit_redis_idle_handler;
        rc->idle.data = rc;
        rc->idle.log = cycle->log;
        rc->idle.cancelable = 1;

        rc->flush.handler = ngx_http_rate_limit_redis_flush_handler;
        rc->flush.data = rc;
        rc->flush.log = cycle->log;

        ngx_http_rate_limit_redis_connect(rc);
    }

    return NGX_OK;
}


void
ngx_http_rate_limit_redis_exit(void)
{
    ngx_uint_t                   i;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_conn_t  *rc;

    link = ngx_http_rate_limit_link;
    if (link == NULL) {
        return;
    }

    link->exiting = 1;

    for (i = 0; i < link->nconns; i++) {
        rc = &link->conns[i];

        if (rc->ac) {
            /* answers every pending callback with NULL, then cleanup */
            redisAsyncFree(rc->ac);
            rc->ac = NULL;
        }

        if (rc->retry.timer_set) {
            ngx_del_timer(&rc->retry);
        }

        if (rc->connect.timer_set) {
            ngx_del_timer(&rc->connect);
        }

        if (rc->idle.timer_set) {
            ngx_del_timer(&rc->idle);
        }

        if (rc->flush.posted) {
            ngx_delete_posted_event(&rc->flush);
        }
    }

    ngx_free(link->name.data);
    ngx_free(link->host);
    ngx_free(link->unix_path);
    ngx_free(link->username.data);
    ngx_free(link->password.data);
    ngx_free(link->conns);
    ngx_free(link);

    ngx_http_rate_limit_link = NULL;
}


ngx_uint_t
ngx_http_rate_limit_redis_exiting(void)
{
    return ngx_http_rate_limit_link == NULL
           || ngx_http_rate_limit_link->exiting;
}


ngx_int_t
ngx_http_rate_limit_redis_send(ngx_http_rate_limit_op_t *op)
{
    ngx_uint_t                   i, n;
    ngx_http_rate_limit_link_t  *link;
    ngx_http_rate_limit_conn_t  *rc, *connecting;

    link = ngx_http_rate_limit_link;
    if (link == NULL || link->exiting) {
        return NGX_DECLINED;
    }

    /* round robin over the connections that are up */

    rc = NULL;
    connecting = NULL;

    for (i = 0; i < link->nconns; i++) {
        n = (link->next + i) % link->nconns;

        if (link->conns[n].state == NGX_HTTP_RATE_LIMIT_UP) {
            rc = &link->conns[n];
            link->next = n + 1;
            break;
        }

        if (connecting == NULL
            && link->conns[n].state == NGX_HTTP_RATE_LIMIT_CONNECTING)
        {
            connecting = &link->conns[n];
        }
    }

    if (rc == NULL) {
        /* a request that meets a connection attempt waits for it */
        rc = connecting;
    }

    if (rc == NULL) {
        return NGX_DECLINED;
    }

    /* formatted already: hiredis appends it to its buffer as it is */

    if (redisAsyncFormattedCommand(rc->ac, ngx_http_rate_limit_redis_on_reply,
                                   op, op->cmd, op->len)
        != REDIS_OK)
    {
        /* no callback will ever come for this command */
        return NGX_DECLINED;
    }

    rc->pending++;

    if (!rc->idle.timer_set) {
        ngx_add_timer(&rc->idle, link->connect_timeout);
    }

    return NGX_OK;
}


void
ngx_http_rate_limit_redis_log(ngx_uint_t cause, ngx_log_t *log,
    const char *fmt, ...)
{
    u_char   *p, buf[NGX_MAX_ERROR_STR];
    va_list   args;

    if (log->log_level < NGX_LOG_ERR
        || ngx_http_rate_limit_logged[cause] == ngx_time())
    {
        return;
    }

    ngx_http_rate_limit_logged[cause] = ngx_time();

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_ERR, log, 0, "%*s", p - buf, buf);
}


static void
ngx_http_rate_limit_redis_connect(ngx_http_rate_limit_conn_t *rc)
{
    redisAsyncContext           *ac;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    /* numeric addresses only: hiredis does no DNS lookup for them */

    if (link->unix_path) {
        ac = redisAsyncConnectUnix(link->unix_path);

    } else {
        ac = redisAsyncConnect(link->host, link->port);
    }

    if (ac == NULL || ac->err) {
        ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_CONNECT,
                                      link->log,
                                      "rate_limit: cannot connect to redis "
                                      "\"%V\": %s", &link->name,
                                      ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_rate_limit_redis_lost(rc);
        return;
    }

    /*
     * Attach before setting the connect callback: that call arms the
     * write event which tells when the connection is made.
     */

    if (ngx_http_rate_limit_redis_attach(rc, ac) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_rate_limit_redis_lost(rc);
        return;
    }

    rc->ac = ac;
    rc->state = NGX_HTTP_RATE_LIMIT_CONNECTING;
    rc->pending = 0;

    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_rate_limit_redis_on_disconnect);
    redisAsyncSetConnectCallback(ac, ngx_http_rate_limit_redis_on_connect);

    ngx_add_timer(&rc->connect, link->connect_timeout);

    ngx_http_rate_limit_redis_handshake(rc);
}


static ngx_int_t
ngx_http_rate_limit_redis_attach(ngx_http_rate_limit_conn_t *rc,
    redisAsyncContext *ac)
{
    ngx_connection_t            *c;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    c = ngx_get_connection(ac->c.fd, link->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = rc;
    c->log = link->log;
    c->read->log = link->log;
    c->write->log = link->log;
    c->read->handler = ngx_http_rate_limit_redis_read_handler;
    c->write->handler = ngx_http_rate_limit_redis_write_handler;

    rc->c = c;
    rc->attached = ac;
    rc->unasked = 0;

    if (ngx_http_rate_limit_hiredis_fn == NULL) {
        ngx_http_rate_limit_hiredis_fn = ac->c.reader->fn;
        ngx_http_rate_limit_reply_fn.freeObject =
                                    ngx_http_rate_limit_hiredis_fn->freeObject;
    }

    ac->c.reader->fn = &ngx_http_rate_limit_reply_fn;
    ac->c.reader->privdata = ac;

    ac->data = rc;
    ac->ev.data = rc;
    ac->ev.addRead = ngx_http_rate_limit_redis_add_read;
    ac->ev.delRead = ngx_http_rate_limit_redis_del_read;
    ac->ev.addWrite = ngx_http_rate_limit_redis_add_write;
    ac->ev.delWrite = ngx_http_rate_limit_redis_del_write;
    ac->ev.cleanup = ngx_http_rate_limit_redis_cleanup;

    return NGX_OK;
}


/*
 * hiredis sends these in order before anything queued later, so requests
 * may queue behind them while the connection is still being made.
 */

static void
ngx_http_rate_limit_redis_handshake(ngx_http_rate_limit_conn_t *rc)
{
    int                          argc;
    char                         db[NGX_INT_T_LEN];
    size_t                       argvlen[3], len;
    const char                  *argv[3], *script;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    if (link->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (link->username.len) {
            argv[argc] = (char *) link->username.data;
            argvlen[argc++] = link->username.len;
        }

        argv[argc] = (char *) link->password.data;
        argvlen[argc++] = link->password.len;

        redisAsyncCommandArgv(rc->ac, ngx_http_rate_limit_redis_on_handshake,
                              (void *) "AUTH", argc, argv, argvlen);
    }

    if (link->db >= 0) {
        len = ngx_sprintf((u_char *) db, "%i", link->db) - (u_char *) db;

        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = db;
        argvlen[1] = len;

        redisAsyncCommandArgv(rc->ac, ngx_http_rate_limit_redis_on_handshake,
                              (void *) "SELECT", 2, argv, argvlen);
    }

    script = rl_core_script(&len);

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = script;
    argvlen[2] = len;

    redisAsyncCommandArgv(rc->ac, ngx_http_rate_limit_redis_on_script, NULL,
                          3, argv, argvlen);
}


/* The connection is gone or never came: back off, then try again. */

static void
ngx_http_rate_limit_redis_lost(ngx_http_rate_limit_conn_t *rc)
{
    ngx_msec_t                   delay;
    ngx_http_rate_limit_link_t  *link;

    link = ngx_http_rate_limit_link;

    rc->ac = NULL;
    rc->state = NGX_HTTP_RATE_LIMIT_DOWN;
    rc->pending = 0;

    if (rc->connect.timer_set) {
        ngx_del_timer(&rc->connect);
    }

    if (rc->idle.timer_set) {
        ngx_del_timer(&rc->idle);
    }

    if (rc->flush.posted) {
        ngx_delete_posted_event(&rc->flush);
    }

    if (link == NULL || link->exiting || rc->retry.timer_set) {
        return;
    }

    delay = (ngx_msec_t) rl_core_backoff_ms(rc->failures++);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, link->log, 0,
                   "rate_limit: redis connection %ui retry in %M",
                   rc->number, delay);

    ngx_add_timer(&rc->retry, delay);
}


/*
 * Drops a connection that misbehaves.  Inside a hiredis callback the free
 * is deferred by hiredis until the callback returns; either way every
 * pending callback is answered with NULL.
 */

static void
ngx_http_rate_limit_redis_drop(ngx_http_rate_limit_conn_t *rc)
{
    redisAsyncContext  *ac;

    ac = rc->ac;
    if (ac == NULL) {
        return;
    }

    /* no new command may pick it meanwhile */
    rc->state = NGX_HTTP_RATE_LIMIT_DOWN;

    if (ac->c.flags & REDIS_IN_CALLBACK) {
        redisAsyncFree(ac);
        return;
    }

    redisAsyncFree(ac);
    ngx_http_rate_limit_redis_lost(rc);
}


static void
ngx_http_rate_limit_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_rate_limit_conn_t  *rc = ac->data;

    if (status == REDIS_OK) {
        return;
    }

    ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_CONNECT,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: cannot connect to redis "
                                  "\"%V\": %s",
                                  &ngx_http_rate_limit_link->name,
                                  ac->errstr);

    /* hiredis frees the context right after this returns */
    ngx_http_rate_limit_redis_lost(rc);
}


static void
ngx_http_rate_limit_redis_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_conn_t  *rc = ac->data;

    if (status != REDIS_OK && ngx_http_rate_limit_link
        && !ngx_http_rate_limit_link->exiting)
    {
        /* a refused reply fails the reader as if out of memory */

        ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_CLOSED,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" closed the "
                                      "connection: %s",
                                      &ngx_http_rate_limit_link->name,
                                      rc->unasked ? "a reply no command "
                                                    "asked for"
                                                  : ac->errstr);
    }

    if (rc->ac == ac) {
        ngx_http_rate_limit_redis_lost(rc);
    }
}


static void
ngx_http_rate_limit_redis_on_handshake(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                  *r = reply;
    ngx_http_rate_limit_conn_t  *rc = ac->data;

    if (r == NULL || r->type != REDIS_REPLY_ERROR) {
        return;
    }

    /* privdata names the command; never the password */

    ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: redis \"%V\" refused %s: %*s",
                                  &ngx_http_rate_limit_link->name,
                                  (char *) privdata, r->len, r->str);

    ngx_http_rate_limit_redis_drop(rc);
}


static void
ngx_http_rate_limit_redis_on_script(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                  *r = reply;
    ngx_http_rate_limit_conn_t  *rc = ac->data;

    if (r == NULL || rc->state != NGX_HTTP_RATE_LIMIT_CONNECTING) {
        return;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      ngx_http_rate_limit_link->log,
                                      "rate_limit: redis \"%V\" refused "
                                      "SCRIPT LOAD: %*s",
                                      &ngx_http_rate_limit_link->name,
                                      r->len, r->str);
        ngx_http_rate_limit_redis_drop(rc);
        return;
    }

    if (r->type != REDIS_REPLY_STRING || r->len != 40
        || ngx_strncmp(r->str, rl_core_script_sha1(), 40) != 0)
    {
        /* a Redis that hashes differently: EVALSHA can never work */
        ngx_log_error(NGX_LOG_ALERT, ngx_http_rate_limit_link->log, 0,
                      "rate_limit: redis \"%V\" answered SCRIPT LOAD with "
                      "\"%*s\", expected \"%s\"",
                      &ngx_http_rate_limit_link->name,
                      (size_t) ngx_min(r->len, 64), r->str ? r->str : "",
                      rl_core_script_sha1());
        ngx_http_rate_limit_redis_drop(rc);
        return;
    }

    if (rc->connect.timer_set) {
        ngx_del_timer(&rc->connect);
    }

    rc->state = NGX_HTTP_RATE_LIMIT_UP;
    rc->failures = 0;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_http_rate_limit_link->log, 0,
                   "rate_limit: redis connection %ui up", rc->number);
}


static void
ngx_http_rate_limit_redis_on_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                  *r = reply;
    ngx_http_rate_limit_op_t    *op = privdata;
    ngx_http_rate_limit_conn_t  *rc = ac->data;

    rl_core_redis_error_e        kind;

    if (rc->pending) {
        rc->pending--;
    }

    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        kind = rl_core_classify_error(r->str, r->len);

        if (kind == RL_CORE_REDIS_ERR_NOSCRIPT && !op->eval
            && op->data != NULL
            && ngx_http_rate_limit_redis_eval(ac, op) == NGX_OK)
        {
            rc->pending++;
            return;
        }

        if (kind == RL_CORE_REDIS_ERR_RECONNECT) {
            ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_RECONNECT,
                                          ngx_http_rate_limit_link->log,
                                          "rate_limit: redis \"%V\" "
                                          "answered \"%*s\", reconnecting",
                                          &ngx_http_rate_limit_link->name,
                                          r->len, r->str);
            ngx_http_rate_limit_redis_drop(rc);
        }
    }

    op->handler(op, r);
}


/*
 * The script cache was flushed (a restart, SCRIPT FLUSH): the same command
 * once as EVAL, which also loads the script again for the next EVALSHA.
 * The rare EVAL form is built here and handed to hiredis, which copies it.
 */

static ngx_int_t
ngx_http_rate_limit_redis_eval(redisAsyncContext *ac,
    ngx_http_rate_limit_op_t *op)
{
    int      rc;
    char    *cmd;
    size_t   size, len;

    size = rl_core_request_eval_size(op->len, op->tail);

    cmd = ngx_alloc(size, ngx_http_rate_limit_link->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    if (rl_core_request_eval(op->cmd, op->len, op->tail, cmd, size, &len)
        != RL_CORE_OK)
    {
        ngx_free(cmd);
        return NGX_ERROR;
    }

    op->eval = 1;

    rc = redisAsyncFormattedCommand(ac, ngx_http_rate_limit_redis_on_reply,
                                    op, cmd, len);
    ngx_free(cmd);

    return rc == REDIS_OK ? NGX_OK : NGX_ERROR;
}


/* The event library adapter: hiredis asks, NGINX's event loop does. */

static void
ngx_http_rate_limit_redis_add_read(void *privdata)
{
    ngx_http_rate_limit_conn_t  *rc = privdata;

    if (!rc->c->read->active) {
        ngx_add_event(rc->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_rate_limit_redis_del_read(void *privdata)
{
    ngx_http_rate_limit_conn_t  *rc = privdata;

    if (rc->c->read->active) {
        ngx_del_event(rc->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_rate_limit_redis_add_write(void *privdata)
{
    ngx_http_rate_limit_conn_t  *rc = privdata;

    /*
     * Until the connection is made, and when a flush could not write
     * everything, wait for the socket to be writable.  Otherwise flush at
     * the end of this event-loop turn, with whatever else is queued by then.
     */

    if (rc->flushing || !(rc->ac->c.flags & REDIS_CONNECTED)) {
        if (!rc->c->write->active) {
            ngx_add_event(rc->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
        }

        return;
    }

    if (!rc->flush.posted && !rc->c->write->active) {
        ngx_post_event(&rc->flush, &ngx_posted_events);
    }
}


static void
ngx_http_rate_limit_redis_del_write(void *privdata)
{
    ngx_http_rate_limit_conn_t  *rc = privdata;

    if (rc->c->write->active) {
        ngx_del_event(rc->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_rate_limit_redis_cleanup(void *privdata)
{
    ngx_http_rate_limit_conn_t  *rc = privdata;

    ngx_connection_t  *c;

    c = rc->c;
    if (c == NULL) {
        return;
    }

    rc->c = NULL;

    if (rc->flush.posted) {
        ngx_delete_posted_event(&rc->flush);
    }

    /* NGINX closes the socket; hiredis must not close the number again */

    ngx_close_connection(c);

    rc->attached->c.fd = -1;
    rc->attached = NULL;
}


static void
ngx_http_rate_limit_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t            *c = ev->data;
    ngx_http_rate_limit_conn_t  *rc = c->data;

    redisAsyncContext  *ac;

    ac = rc->ac;
    if (ac == NULL) {
        return;
    }

    /* hiredis may free ac and close c in here; rc stays */

    redisAsyncHandleRead(ac);

    if (rc->ac != ac) {
        return;
    }

    if (rc->pending) {
        ngx_add_timer(&rc->idle, ngx_http_rate_limit_link->connect_timeout);

    } else if (rc->idle.timer_set) {
        ngx_del_timer(&rc->idle);
    }
}


static void
ngx_http_rate_limit_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    ngx_http_rate_limit_redis_flush(c->data);
}


static void
ngx_http_rate_limit_redis_flush_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_redis_flush(ev->data);
}


/*
 * Writes what hiredis holds.  While flushing, an addWrite means the socket
 * took less than everything: wait for it to be writable.
 */

static void
ngx_http_rate_limit_redis_flush(ngx_http_rate_limit_conn_t *rc)
{
    if (rc->ac == NULL || rc->c == NULL) {
        return;
    }

    rc->flushing = 1;

    /* hiredis may free the context in here; rc stays */
    redisAsyncHandleWrite(rc->ac);

    rc->flushing = 0;
}


static void
ngx_http_rate_limit_redis_retry_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_conn_t  *rc = ev->data;

    if (ngx_http_rate_limit_link == NULL || ngx_http_rate_limit_link->exiting
        || rc->ac != NULL)
    {
        return;
    }

    ngx_http_rate_limit_redis_connect(rc);
}


static void
ngx_http_rate_limit_redis_connect_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_conn_t  *rc = ev->data;

    ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_CONNECT,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: redis \"%V\" connect timed "
                                  "out", &ngx_http_rate_limit_link->name);

    ngx_http_rate_limit_redis_drop(rc);
}


static void
ngx_http_rate_limit_redis_idle_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_conn_t  *rc = ev->data;

    if (rc->pending == 0) {
        return;
    }

    ngx_http_rate_limit_redis_log(NGX_HTTP_RATE_LIMIT_LOG_IDLE,
                                  ngx_http_rate_limit_link->log,
                                  "rate_limit: redis \"%V\" sent nothing for "
                                  "%M ms with %ui commands pending, "
                                  "reconnecting",
                                  &ngx_http_rate_limit_link->name,
                                  ngx_http_rate_limit_link->connect_timeout,
                                  rc->pending);

    ngx_http_rate_limit_redis_drop(rc);
}


static void *
ngx_http_rate_limit_redis_create_string(const redisReadTask *task, char *str,
    size_t len)
{
    if (ngx_http_rate_limit_redis_unasked(task)) {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createString(task, str, len);
}


static void *
ngx_http_rate_limit_redis_create_array(const redisReadTask *task,
    int elements)
{
    if (ngx_http_rate_limit_redis_unasked(task)) {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createArray(task, elements);
}


static void *
ngx_http_rate_limit_redis_create_integer(const redisReadTask *task,
    long long value)
{
    if (ngx_http_rate_limit_redis_unasked(task)) {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createInteger(task, value);
}


static void *
ngx_http_rate_limit_redis_create_nil(const redisReadTask *task)
{
    if (ngx_http_rate_limit_redis_unasked(task)) {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createNil(task);
}


/*
 * A reply's top object is made before its callback is taken off the
 * queue: an empty queue then means that no command asked for it.
 */

static ngx_uint_t
ngx_http_rate_limit_redis_unasked(const redisReadTask *task)
{
    redisAsyncContext           *ac = task->privdata;
    ngx_http_rate_limit_conn_t  *rc;

    /* an error reply hiredis handles itself, and names in errstr */

    if (task->parent != NULL || task->type == REDIS_REPLY_ERROR
        || ac->replies.head != NULL)
    {
        return 0;
    }

    rc = ac->data;
    rc->unasked = 1;

    return 1;
}


static char *
ngx_http_rate_limit_strdup(ngx_str_t *s, ngx_log_t *log)
{
    char  *p;

    p = ngx_alloc(s->len + 1, log);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return p;
}
