
/*
 * ngx_http_rate_limit_module: hiredis's event hooks on NGINX's event loop.
 *
 * hiredis reads at most 16 KiB per call, so read events are level-
 * triggered: an edge would strand the rest.  Adds and deletes are
 * idempotent.  The socket is closed once, by NGINX, in cleanup; hiredis
 * is then told the descriptor is gone.  A write is never made from inside
 * addWrite: a posted event writes once at the end of the event-loop turn,
 * so commands queued together share one write; only a write that could
 * not take everything waits for the socket to be writable.  The link may
 * write a batch sooner (write_now), outside hiredis's callbacks, leaving
 * any error to that posted write.  hiredis may
 * free the context (and so call cleanup) while one of our handlers is on
 * the stack: the adapter is then freed when that handler returns.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_rate_limit_hiredis.h"


typedef struct {
    redisAsyncContext                    *ac;
    ngx_connection_t                     *c;
    ngx_event_t                           write;  /* posted: one write */

    ngx_http_rate_limit_hiredis_read_pt   read_done;
    void                                 *data;

    unsigned                              writing:1;
    unsigned                              entered:1;
    unsigned                              freed:1;
} ngx_http_rate_limit_hiredis_t;


static void ngx_http_rate_limit_hiredis_add_read(void *privdata);
static void ngx_http_rate_limit_hiredis_del_read(void *privdata);
static void ngx_http_rate_limit_hiredis_add_write(void *privdata);
static void ngx_http_rate_limit_hiredis_del_write(void *privdata);
static void ngx_http_rate_limit_hiredis_cleanup(void *privdata);
static void ngx_http_rate_limit_hiredis_read_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_hiredis_write_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_hiredis_posted_write(ngx_event_t *ev);
static void ngx_http_rate_limit_hiredis_write(
    ngx_http_rate_limit_hiredis_t *a);


ngx_int_t
ngx_http_rate_limit_hiredis_attach(redisAsyncContext *ac, ngx_log_t *log,
    ngx_http_rate_limit_hiredis_read_pt read_done, void *data)
{
    ngx_connection_t               *c;
    ngx_http_rate_limit_hiredis_t  *a;

    a = ngx_calloc(sizeof(ngx_http_rate_limit_hiredis_t), log);
    if (a == NULL) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        ngx_free(a);
        return NGX_ERROR;
    }

    c->data = a;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = ngx_http_rate_limit_hiredis_read_handler;
    c->write->handler = ngx_http_rate_limit_hiredis_write_handler;

    a->ac = ac;
    a->c = c;
    a->read_done = read_done;
    a->data = data;

    a->write.handler = ngx_http_rate_limit_hiredis_posted_write;
    a->write.data = a;
    a->write.log = log;

    ac->ev.data = a;
    ac->ev.addRead = ngx_http_rate_limit_hiredis_add_read;
    ac->ev.delRead = ngx_http_rate_limit_hiredis_del_read;
    ac->ev.addWrite = ngx_http_rate_limit_hiredis_add_write;
    ac->ev.delWrite = ngx_http_rate_limit_hiredis_del_write;
    ac->ev.cleanup = ngx_http_rate_limit_hiredis_cleanup;

    return NGX_OK;
}


static void
ngx_http_rate_limit_hiredis_add_read(void *privdata)
{
    ngx_http_rate_limit_hiredis_t  *a = privdata;

    if (!a->c->read->active) {
        (void) ngx_add_event(a->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_rate_limit_hiredis_del_read(void *privdata)
{
    ngx_http_rate_limit_hiredis_t  *a = privdata;

    if (a->c->read->active) {
        (void) ngx_del_event(a->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_rate_limit_hiredis_add_write(void *privdata)
{
    ngx_http_rate_limit_hiredis_t  *a = privdata;

    /*
     * Until the connection is made, and when a write could not take
     * everything, wait for the socket; otherwise write at the end of this
     * event-loop turn, with whatever else is queued by then.
     */

    if (a->writing || !(a->ac->c.flags & REDIS_CONNECTED)) {
        if (!a->c->write->active) {
            (void) ngx_add_event(a->c->write, NGX_WRITE_EVENT,
                                 NGX_LEVEL_EVENT);
        }

        return;
    }

    if (!a->write.posted && !a->c->write->active) {
        ngx_post_event(&a->write, &ngx_posted_events);
    }
}


static void
ngx_http_rate_limit_hiredis_del_write(void *privdata)
{
    ngx_http_rate_limit_hiredis_t  *a = privdata;

    if (a->c->write->active) {
        (void) ngx_del_event(a->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_rate_limit_hiredis_cleanup(void *privdata)
{
    ngx_http_rate_limit_hiredis_t  *a = privdata;

    redisAsyncContext  *ac;

    ac = a->ac;

    /* hiredis may call cleanup twice (disconnect, then free): once only */

    ac->ev.data = NULL;
    ac->ev.addRead = NULL;
    ac->ev.delRead = NULL;
    ac->ev.addWrite = NULL;
    ac->ev.delWrite = NULL;
    ac->ev.cleanup = NULL;

    if (a->write.posted) {
        ngx_delete_posted_event(&a->write);
    }

    /* NGINX closes the socket; hiredis must not close the number again */

    ngx_close_connection(a->c);
    a->c = NULL;
    ac->c.fd = -1;

    if (a->entered) {
        a->freed = 1;
        return;
    }

    ngx_free(a);
}


static void
ngx_http_rate_limit_hiredis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t               *c = ev->data;
    ngx_http_rate_limit_hiredis_t  *a = c->data;

    a->entered = 1;

    redisAsyncHandleRead(a->ac);

    if (a->freed) {
        ngx_free(a);
        return;
    }

    a->entered = 0;

    if (a->read_done) {
        /* the last use of a: read_done may free the context */
        a->read_done(a->data);
    }
}


static void
ngx_http_rate_limit_hiredis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    ngx_http_rate_limit_hiredis_write(c->data);
}


static void
ngx_http_rate_limit_hiredis_posted_write(ngx_event_t *ev)
{
    ngx_http_rate_limit_hiredis_write(ev->data);
}


void
ngx_http_rate_limit_hiredis_write_now(redisAsyncContext *ac)
{
    ngx_http_rate_limit_hiredis_t  *a = ac->ev.data;

    int  done;

    /*
     * The posted write must follow: it is what handles an error, and what
     * waits for the socket when this write could not take everything.
     */

    if (a == NULL || a->entered || !a->write.posted || a->c->write->active
        || !(ac->c.flags & REDIS_CONNECTED))
    {
        return;
    }

    (void) redisBufferWrite(&ac->c, &done);
}


/*
 * Writes what hiredis holds.  While writing, an addWrite means the socket
 * took less than everything: wait for it to be writable.
 */

static void
ngx_http_rate_limit_hiredis_write(ngx_http_rate_limit_hiredis_t *a)
{
    a->entered = 1;
    a->writing = 1;

    redisAsyncHandleWrite(a->ac);

    if (a->freed) {
        ngx_free(a);
        return;
    }

    a->writing = 0;
    a->entered = 0;
}
