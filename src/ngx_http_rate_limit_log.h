
/*
 * ngx_http_rate_limit_module: error lines at most once a second per cause.
 *
 * Redis trouble repeats for every request and every attempt; one line a
 * second per cause (and per node: each node keeps its own throttle) says
 * what happens without flooding the log.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_LOG_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_LOG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * What happened to a connection is kept apart from what it did to the
 * requests on it, so that the requests' lines, which come first, never
 * hide why the connection went away.
 */
typedef enum {
    /* connections */
    NGX_HTTP_RATE_LIMIT_LOG_CONNECT = 0,
    NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
    NGX_HTTP_RATE_LIMIT_LOG_CLOSED,     /* closed by redis or an error */
    NGX_HTTP_RATE_LIMIT_LOG_RECONNECT,  /* an error reply that drops it */
    NGX_HTTP_RATE_LIMIT_LOG_WATCHDOG,   /* no answer for connect_timeout */

    /* commands */
    NGX_HTTP_RATE_LIMIT_LOG_DOWN,       /* no connection to queue on */
    NGX_HTTP_RATE_LIMIT_LOG_NO_ROOM,    /* max_pending reached */

    /* requests */
    NGX_HTTP_RATE_LIMIT_LOG_LOST,
    NGX_HTTP_RATE_LIMIT_LOG_TIMEOUT,
    NGX_HTTP_RATE_LIMIT_LOG_REPLY,
    NGX_HTTP_RATE_LIMIT_LOG_CHARGE,     /* a charge not taken */

    NGX_HTTP_RATE_LIMIT_LOG_CAUSES
} ngx_http_rate_limit_log_cause_e;


typedef struct {
    time_t                      logged[NGX_HTTP_RATE_LIMIT_LOG_CAUSES];
} ngx_http_rate_limit_throttle_t;


/* Logs at error level unless this cause was logged in this second. */
void ngx_http_rate_limit_log_error(ngx_http_rate_limit_throttle_t *t,
    ngx_http_rate_limit_log_cause_e cause, ngx_log_t *log,
    const char *fmt, ...);


#endif /* _NGX_HTTP_RATE_LIMIT_LOG_H_INCLUDED_ */
