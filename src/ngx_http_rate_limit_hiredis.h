
/*
 * ngx_http_rate_limit_module: hiredis's event hooks on NGINX's event loop.
 *
 * The adapter maps a hiredis async context's addRead, delRead, addWrite,
 * delWrite and cleanup onto an ngx_connection_t made from the context's
 * socket, as hiredis's own adapters do for ae or libevent.  It knows
 * nothing of what the commands are.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_HIREDIS_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_HIREDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


typedef void (*ngx_http_rate_limit_hiredis_read_pt)(void *data);


/*
 * Attaches ac to NGINX's events; call it before setting the connect
 * callback (that call arms the event which completes the connect).
 * read_done(data), when not NULL, is called after every read event that
 * left the context alive.  The adapter's memory and the socket are
 * released by hiredis's cleanup, when the context is freed.
 */
ngx_int_t ngx_http_rate_limit_hiredis_attach(redisAsyncContext *ac,
    ngx_log_t *log, ngx_http_rate_limit_hiredis_read_pt read_done,
    void *data);

/*
 * Writes what hiredis holds now, from the caller's stack, when the socket
 * is not waiting to become writable: so that Redis starts on a batch while
 * the worker goes on reading requests.  It calls no hiredis callback: a
 * failed write is left to the write that addWrite posted, which meets the
 * error at the end of the event-loop turn and tears the context down
 * there, outside the caller.  Does nothing inside the adapter's own
 * handlers, or when no posted write follows.
 */
void ngx_http_rate_limit_hiredis_write_now(redisAsyncContext *ac);


#endif /* _NGX_HTTP_RATE_LIMIT_HIREDIS_H_INCLUDED_ */
