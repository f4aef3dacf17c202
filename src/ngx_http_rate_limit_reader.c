
/*
 * ngx_http_rate_limit_module: bounds on what hiredis's reply reader may
 * build (see the header).
 *
 * The reader calls the object functions for every value of a reply, the
 * reply's own first (its task has no parent), before its callback is taken
 * off the queue: the queue's head is then the command being answered, and
 * an empty queue means that no command asked.  hiredis 1.x reads RESP3
 * types too and passes array sizes as size_t; this module speaks RESP2,
 * so those types are refused.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_rate_limit_reader.h"


#if (defined HIREDIS_MAJOR && HIREDIS_MAJOR >= 1)
#define NGX_HTTP_RATE_LIMIT_HIREDIS_RESP3  1
typedef size_t  ngx_http_rate_limit_elements_t;
#else
typedef int     ngx_http_rate_limit_elements_t;
#endif


/* what one element costs besides its text: the object and its framing */
#define NGX_HTTP_RATE_LIMIT_ELEMENT_BYTES  16


static const ngx_http_rate_limit_shape_t *ngx_http_rate_limit_reader_shape(
    ngx_http_rate_limit_reader_t *rd);


/*
 * A subscribed connection's messages come with no command waiting:
 * ["message", channel, payload], a few hundred bytes.
 */
static const ngx_http_rate_limit_shape_t  ngx_http_rate_limit_push_shape = {
    1, 1024
};


static ngx_int_t ngx_http_rate_limit_reader_take(const redisReadTask *task,
    ngx_uint_t array, size_t bytes);
static void *ngx_http_rate_limit_reader_string(const redisReadTask *task,
    char *str, size_t len);
static void *ngx_http_rate_limit_reader_array(const redisReadTask *task,
    ngx_http_rate_limit_elements_t elements);
static void *ngx_http_rate_limit_reader_integer(const redisReadTask *task,
    long long value);
static void *ngx_http_rate_limit_reader_nil(const redisReadTask *task);
#if (NGX_HTTP_RATE_LIMIT_HIREDIS_RESP3)
static void *ngx_http_rate_limit_reader_double(const redisReadTask *task,
    double value, char *str, size_t len);
static void *ngx_http_rate_limit_reader_bool(const redisReadTask *task,
    int value);
#endif


/* hiredis's own functions, taken from the first reader we see */
static redisReplyObjectFunctions  *ngx_http_rate_limit_hiredis_fn;

static redisReplyObjectFunctions  ngx_http_rate_limit_reader_fn = {
    ngx_http_rate_limit_reader_string,
    ngx_http_rate_limit_reader_array,
    ngx_http_rate_limit_reader_integer,
#if (NGX_HTTP_RATE_LIMIT_HIREDIS_RESP3)
    ngx_http_rate_limit_reader_double,
#endif
    ngx_http_rate_limit_reader_nil,
#if (NGX_HTTP_RATE_LIMIT_HIREDIS_RESP3)
    ngx_http_rate_limit_reader_bool,
#endif
    NULL                                    /* hiredis's freeObject */
};


void
ngx_http_rate_limit_reader_attach(ngx_http_rate_limit_reader_t *rd,
    redisAsyncContext *ac)
{
    if (ngx_http_rate_limit_hiredis_fn == NULL) {
        ngx_http_rate_limit_hiredis_fn = ac->c.reader->fn;
        ngx_http_rate_limit_reader_fn.freeObject =
                                    ngx_http_rate_limit_hiredis_fn->freeObject;
    }

    rd->ac = ac;
    rd->bytes = 0;
    rd->refused = NGX_HTTP_RATE_LIMIT_REFUSED_NONE;
    rd->shape = NULL;

    ac->c.reader->fn = &ngx_http_rate_limit_reader_fn;
    ac->c.reader->privdata = rd;
}


ngx_int_t
ngx_http_rate_limit_reader_check(ngx_http_rate_limit_reader_t *rd)
{
    size_t                              unparsed;
    redisReader                        *reader;
    const ngx_http_rate_limit_shape_t  *shape;

    reader = rd->ac->c.reader;
    unparsed = reader->len - reader->pos;

    if (unparsed == 0) {
        return NGX_OK;
    }

    shape = ngx_http_rate_limit_reader_shape(rd);

    if (shape == NULL) {
        /* bytes nobody asked for: refused once parsed, never buffered */
        rd->refused = NGX_HTTP_RATE_LIMIT_REFUSED_UNASKED;
        return NGX_ERROR;
    }

    /* the reply's parsed part, when it is an array, counts too */

    if (reader->ridx >= 0) {
        unparsed += rd->bytes;
    }

    if (unparsed > shape->size) {
        rd->refused = NGX_HTTP_RATE_LIMIT_REFUSED_LARGE;
        rd->shape = shape;
        return NGX_ERROR;
    }

    return NGX_OK;
}


const char *
ngx_http_rate_limit_reader_refusal(ngx_http_rate_limit_reader_t *rd)
{
    switch (rd->refused) {

    case NGX_HTTP_RATE_LIMIT_REFUSED_UNASKED:
        return "a reply no command asked for";

    case NGX_HTTP_RATE_LIMIT_REFUSED_DEEP:
        return "a reply nested deeper than its command's";

    case NGX_HTTP_RATE_LIMIT_REFUSED_LARGE:
        return "a reply larger than its command's";

    case NGX_HTTP_RATE_LIMIT_REFUSED_TYPE:
        return "a RESP3 reply";

    default:
        return NULL;
    }
}


/*
 * Counts a value of the reply being read against its command's shape.
 * NGX_ERROR refuses it, and so fails the reader.
 */

static ngx_int_t
ngx_http_rate_limit_reader_take(const redisReadTask *task, ngx_uint_t array,
    size_t bytes)
{
    ngx_uint_t                          depth;
    const redisReadTask                *t;
    ngx_http_rate_limit_reader_t       *rd;
    const ngx_http_rate_limit_shape_t  *shape;

    rd = task->privdata;
    shape = ngx_http_rate_limit_reader_shape(rd);

    if (shape == NULL) {
        /*
         * An error hiredis handles itself: it drops the connection and
         * names the error in errstr.
         */
        if (task->parent == NULL && task->type == REDIS_REPLY_ERROR) {
            return NGX_OK;
        }

        rd->refused = NGX_HTTP_RATE_LIMIT_REFUSED_UNASKED;
        return NGX_ERROR;
    }

    depth = array;
    for (t = task->parent; t; t = t->parent) {
        depth++;
    }

    if (task->parent == NULL) {
        rd->bytes = 0;
    }

    rd->bytes += bytes + NGX_HTTP_RATE_LIMIT_ELEMENT_BYTES;

    if (depth > shape->depth) {
        rd->refused = NGX_HTTP_RATE_LIMIT_REFUSED_DEEP;
        rd->shape = shape;
        return NGX_ERROR;
    }

    if (rd->bytes > shape->size) {
        rd->refused = NGX_HTTP_RATE_LIMIT_REFUSED_LARGE;
        rd->shape = shape;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_rate_limit_reader_string(const redisReadTask *task, char *str,
    size_t len)
{
    if (task->type != REDIS_REPLY_STRING && task->type != REDIS_REPLY_STATUS
        && task->type != REDIS_REPLY_ERROR)
    {
        ((ngx_http_rate_limit_reader_t *) task->privdata)->refused =
                                           NGX_HTTP_RATE_LIMIT_REFUSED_TYPE;
        return NULL;
    }

    if (ngx_http_rate_limit_reader_take(task, 0, len) != NGX_OK) {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createString(task, str, len);
}


static void *
ngx_http_rate_limit_reader_array(const redisReadTask *task,
    ngx_http_rate_limit_elements_t elements)
{
    if (task->type != REDIS_REPLY_ARRAY) {
        ((ngx_http_rate_limit_reader_t *) task->privdata)->refused =
                                           NGX_HTTP_RATE_LIMIT_REFUSED_TYPE;
        return NULL;
    }

    /* each element costs at least its framing: refused before the calloc */

    if (ngx_http_rate_limit_reader_take(task, 1,
                               (size_t) elements
                               * NGX_HTTP_RATE_LIMIT_ELEMENT_BYTES)
        != NGX_OK)
    {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createArray(task, elements);
}


static void *
ngx_http_rate_limit_reader_integer(const redisReadTask *task,
    long long value)
{
    if (ngx_http_rate_limit_reader_take(task, 0, 0) != NGX_OK) {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createInteger(task, value);
}


static void *
ngx_http_rate_limit_reader_nil(const redisReadTask *task)
{
    if (ngx_http_rate_limit_reader_take(task, 0, 0) != NGX_OK) {
        return NULL;
    }

    return ngx_http_rate_limit_hiredis_fn->createNil(task);
}


#if (NGX_HTTP_RATE_LIMIT_HIREDIS_RESP3)

static void *
ngx_http_rate_limit_reader_double(const redisReadTask *task, double value,
    char *str, size_t len)
{
    ((ngx_http_rate_limit_reader_t *) task->privdata)->refused =
                                           NGX_HTTP_RATE_LIMIT_REFUSED_TYPE;
    return NULL;
}


static void *
ngx_http_rate_limit_reader_bool(const redisReadTask *task, int value)
{
    ((ngx_http_rate_limit_reader_t *) task->privdata)->refused =
                                           NGX_HTTP_RATE_LIMIT_REFUSED_TYPE;
    return NULL;
}

#endif


/* The shape of the reply being read: its command's, or NULL if none asked. */

static const ngx_http_rate_limit_shape_t *
ngx_http_rate_limit_reader_shape(ngx_http_rate_limit_reader_t *rd)
{
    redisAsyncContext  *ac = rd->ac;

    if (ac->replies.head != NULL) {
        return ac->replies.head->privdata;
    }

    if (ac->c.flags & REDIS_SUBSCRIBED) {
        return &ngx_http_rate_limit_push_shape;
    }

    return NULL;
}
