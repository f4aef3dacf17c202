
/*
 * ngx_http_rate_limit_module: bounds on what hiredis's reply reader may
 * build.
 *
 * Every command the link sends carries, as the first member of its hiredis
 * privdata, the shape its well-formed reply has: how deep its arrays nest
 * and how many bytes it takes at most.  The reader refuses, before it
 * allocates, any reply deeper or larger than that, and any reply that no
 * command asked for (hiredis would abort the worker on one).  A refusal
 * fails the reader: hiredis drops the connection and answers every pending
 * command with NULL.  Nothing here touches the link's state.
 */


#ifndef _NGX_HTTP_RATE_LIMIT_READER_H_INCLUDED_
#define _NGX_HTTP_RATE_LIMIT_READER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_rate_limit_module.h"


typedef enum {
    NGX_HTTP_RATE_LIMIT_REFUSED_NONE = 0,
    NGX_HTTP_RATE_LIMIT_REFUSED_UNASKED,
    NGX_HTTP_RATE_LIMIT_REFUSED_DEEP,
    NGX_HTTP_RATE_LIMIT_REFUSED_LARGE,
    NGX_HTTP_RATE_LIMIT_REFUSED_TYPE      /* RESP3 types: never asked for */
} ngx_http_rate_limit_refusal_e;


/* Per connection; lives as long as the hiredis context it is set on. */
typedef struct {
    redisAsyncContext              *ac;
    size_t                          bytes;  /* of the reply being read */
    ngx_http_rate_limit_refusal_e   refused;
    const ngx_http_rate_limit_shape_t  *shape;  /* of the refused reply */
} ngx_http_rate_limit_reader_t;


/* Sets the bounds on ac's reader; rd must outlive ac. */
void ngx_http_rate_limit_reader_attach(ngx_http_rate_limit_reader_t *rd,
    redisAsyncContext *ac);

/*
 * After a read: NGX_ERROR when the bytes read but not yet parsed already
 * exceed what the reply they begin may take (a huge bulk string is
 * buffered whole before the reader sees it): the caller drops the
 * connection.  rd->refused then says why.
 */
ngx_int_t ngx_http_rate_limit_reader_check(ngx_http_rate_limit_reader_t *rd);

/* "a reply no command asked for", ... for logs. */
const char *ngx_http_rate_limit_reader_refusal(
    ngx_http_rate_limit_reader_t *rd);


#endif /* _NGX_HTTP_RATE_LIMIT_READER_H_INCLUDED_ */
