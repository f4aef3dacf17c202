
/*
 * ngx_http_rate_limit_module: mode=cluster (see the header).
 *
 * The slot map: one fetch at a time on a connection of its own to a seed
 * or a master of the current map (in turn, skipping those that fail),
 * AUTH, CLUSTER SHARDS (CLUSTER SLOTS when that is refused), then closed.
 * A fetch starts at init, and again on MOVED, CLUSTERDOWN, a slot with no
 * master and a lost data connection, at most once per REFRESH ms.  The
 * map's masters become link nodes; a node that no longer serves a slot is
 * retired.
 *
 * A decision (the caller's op, "parent") is split into parts, one per
 * slot group, each an op of its own with its own command, sent to the
 * master of its slot.  A part that finds no master while a fetch is on
 * its way is held until the map comes.  When every part is done the
 * core's rl_core_cluster_outcome() says what the request is and which
 * groups consumed and are to be given back; the parent gets each
 * answered zone's values.  Parts outlive a parent that is cancelled (a
 * written command must still be read, and its refund may be due); the
 * split ("req") is freed with its last part.  Everything this file
 * allocates is ngx_alloc'd and freed here or by the link.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_rate_limit_cluster.h"
#include "ngx_http_rate_limit_hiredis.h"
#include "ngx_http_rate_limit_reader.h"
#include "ngx_http_rate_limit_log.h"
#include "ngx_http_rate_limit_tls.h"


/* at most this often a new map, ms */
#define NGX_HTTP_RATE_LIMIT_CLUSTER_REFRESH    200

/* redirects one part follows before it is an error */
#define NGX_HTTP_RATE_LIMIT_CLUSTER_REDIRECTS  5

/* a map of 16384 single-slot ranges with their node ids fits */
#define NGX_HTTP_RATE_LIMIT_CLUSTER_MAP_REPLY  (4 * 1024 * 1024)

#define NGX_HTTP_RATE_LIMIT_CLUSTER_TEXT       128

#define NGX_HTTP_RATE_LIMIT_V                  RL_CORE_REPLY_VALUES


typedef struct ngx_http_rate_limit_req_s  ngx_http_rate_limit_req_t;


typedef enum {
    NGX_HTTP_RATE_LIMIT_PART_NEW = 0,
    NGX_HTTP_RATE_LIMIT_PART_HELD,          /* waiting for the map */
    NGX_HTTP_RATE_LIMIT_PART_OUT,           /* the link's */
    NGX_HTTP_RATE_LIMIT_PART_DONE           /* its group's state is set */
} ngx_http_rate_limit_part_state_e;


/* One slot group's call: the op first, as every privdata begins */
typedef struct {
    ngx_http_rate_limit_op_t            op;
    ngx_http_rate_limit_req_t          *req;
    ngx_uint_t                          group;
    ngx_uint_t                          redirects;
    ngx_queue_t                         held;
    ngx_http_rate_limit_part_state_e    state;
    ngx_uint_t                          node;   /* the link's, last sent */
    char                               *refund; /* the same zones, refund */
    size_t                              refund_len;
} ngx_http_rate_limit_part_t;


struct ngx_http_rate_limit_req_s {
    ngx_http_rate_limit_op_t           *parent; /* NULL: gone */
    ngx_queue_t                         queue;  /* all reqs, for exit */

    ngx_uint_t                          nzones;
    size_t                              ngroups;
    ngx_uint_t                          pending;

    rl_core_cluster_group_t            *groups;
    size_t                             *order;
    rl_core_group_state_e              *states;
    int                                *allowed;
    int64_t                            *values; /* V per zone */
    rl_core_cluster_refund_t           *refunds;
    ngx_http_rate_limit_part_t        **parts;

    ngx_str_t                           text;   /* the last error */
    u_char                              buf[NGX_HTTP_RATE_LIMIT_CLUSTER_TEXT];

    unsigned                            fail_closed:1;
    unsigned                            lost:1; /* an error was a loss */
};


typedef struct {
    char                               *host;   /* numeric */
    int                                 port;
} ngx_http_rate_limit_cluster_addr_t;


typedef struct {
    ngx_log_t                          *log;

    ngx_uint_t                          nseeds;
    ngx_http_rate_limit_cluster_addr_t *seeds;

    ngx_str_t                           username;
    ngx_str_t                           password;
    ngx_msec_t                          connect_timeout;
    void                               *ssl_ctx;
    ngx_str_t                           tls_name;

    rl_core_cluster_map_t              *map;
    ngx_uint_t                         *nodes;  /* map node -> link node */

    /* the fetch */
    redisAsyncContext                  *ac;
    ngx_http_rate_limit_reader_t        reader;
    char                                origin[NGX_SOCKADDR_STRLEN + 1];
    int                                 origin_port;
    ngx_uint_t                          current; /* seeds, then masters */
    ngx_uint_t                          tried;  /* in this round */
    ngx_uint_t                          rounds; /* failed, no map yet */
    ngx_msec_t                          started;

    ngx_event_t                         timer;  /* throttle or backoff */
    ngx_event_t                         connect; /* connect_timeout */

    ngx_queue_t                         held;   /* parts */
    ngx_queue_t                         reqs;

    ngx_http_rate_limit_throttle_t      throttle;

    unsigned                            fetching:1;
    unsigned                            exiting:1;
} ngx_http_rate_limit_cluster_t;


/* A cluster command: the shape first, as every privdata */
typedef struct {
    ngx_http_rate_limit_shape_t         shape;
    const char                         *name;
} ngx_http_rate_limit_cluster_step_t;


static ngx_http_rate_limit_req_t *ngx_http_rate_limit_cluster_split(
    ngx_http_rate_limit_op_t *op, const uint16_t *slots);
static void ngx_http_rate_limit_cluster_route(
    ngx_http_rate_limit_part_t *part);
static void ngx_http_rate_limit_cluster_on_part(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text);
static ngx_int_t ngx_http_rate_limit_cluster_redirect(
    ngx_http_rate_limit_part_t *part, ngx_str_t *text);
static void ngx_http_rate_limit_cluster_done(ngx_http_rate_limit_part_t *part,
    rl_core_group_state_e state, ngx_str_t *text);
static void ngx_http_rate_limit_cluster_finish(ngx_http_rate_limit_req_t *req);
static void ngx_http_rate_limit_cluster_answer(ngx_http_rate_limit_req_t *req,
    rl_core_outcome_e outcome);
static void ngx_http_rate_limit_cluster_refund(ngx_http_rate_limit_req_t *req,
    size_t nrefunds);
static void ngx_http_rate_limit_cluster_on_refund(
    ngx_http_rate_limit_op_t *op, ngx_http_rate_limit_answer_e answer,
    ngx_str_t *text);
static void ngx_http_rate_limit_cluster_free(ngx_http_rate_limit_req_t *req);

static void ngx_http_rate_limit_cluster_fetch(void);
static void ngx_http_rate_limit_cluster_fetch_failed(void);
static void ngx_http_rate_limit_cluster_close(void);
static void ngx_http_rate_limit_cluster_ask(const char *what, int argc,
    const char **argv, const size_t *argvlen);
static void ngx_http_rate_limit_cluster_on_connect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_cluster_on_disconnect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_cluster_on_auth(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_cluster_on_map(redisAsyncContext *ac,
    void *reply, void *privdata);
static ngx_int_t ngx_http_rate_limit_cluster_shards(redisReply *r,
    rl_core_cluster_range_t **ranges, size_t *n);
static ngx_int_t ngx_http_rate_limit_cluster_slots(redisReply *r,
    rl_core_cluster_range_t **ranges, size_t *n);
static ngx_int_t ngx_http_rate_limit_cluster_apply(
    rl_core_cluster_map_t *map);
static void ngx_http_rate_limit_cluster_release(void);
static void ngx_http_rate_limit_cluster_read_done(void *data);
static void ngx_http_rate_limit_cluster_timer_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_cluster_connect_handler(ngx_event_t *ev);


static ngx_http_rate_limit_cluster_t  *ngx_http_rate_limit_cluster;


static const ngx_http_rate_limit_cluster_step_t
    ngx_http_rate_limit_cluster_step_auth = { { 0, 512 }, "AUTH" };

static const ngx_http_rate_limit_cluster_step_t
    ngx_http_rate_limit_cluster_step_shards = {
        { 4, NGX_HTTP_RATE_LIMIT_CLUSTER_MAP_REPLY }, "CLUSTER SHARDS"
    };

/* [start, end, [host, port, id, {metadata}], replicas ...] */
static const ngx_http_rate_limit_cluster_step_t
    ngx_http_rate_limit_cluster_step_slots = {
        { 4, NGX_HTTP_RATE_LIMIT_CLUSTER_MAP_REPLY }, "CLUSTER SLOTS"
    };


ngx_int_t
ngx_http_rate_limit_cluster_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf)
{
    ngx_str_t                       h;
    ngx_uint_t                      i;
    ngx_http_rate_limit_addr_t     *addr;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_calloc(sizeof(ngx_http_rate_limit_cluster_t), cycle->log);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    ngx_http_rate_limit_cluster = cl;

    cl->log = cycle->log;
    cl->connect_timeout = rcf->connect_timeout;
    cl->ssl_ctx = rcf->ssl_ctx;

    ngx_queue_init(&cl->held);
    ngx_queue_init(&cl->reqs);

    cl->timer.handler = ngx_http_rate_limit_cluster_timer_handler;
    cl->timer.data = cl;
    cl->timer.log = cycle->log;
    cl->timer.cancelable = 1;

    cl->connect.handler = ngx_http_rate_limit_cluster_connect_handler;
    cl->connect.data = cl;
    cl->connect.log = cycle->log;
    cl->connect.cancelable = 1;

    cl->nseeds = rcf->seeds->nelts;
    cl->seeds = ngx_calloc(cl->nseeds
                           * sizeof(ngx_http_rate_limit_cluster_addr_t),
                           cycle->log);
    if (cl->seeds == NULL) {
        return NGX_ERROR;
    }

    addr = rcf->seeds->elts;

    for (i = 0; i < cl->nseeds; i++) {
        if (ngx_http_rate_limit_link_copy(&h, &addr[i].host, cycle->log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        cl->seeds[i].host = (char *) h.data;
        cl->seeds[i].port = addr[i].port;
    }

    if (ngx_http_rate_limit_link_copy(&cl->username, &rcf->username,
                                      cycle->log)
        != NGX_OK
        || ngx_http_rate_limit_link_copy(&cl->password, &rcf->password,
                                         cycle->log)
           != NGX_OK
        || ngx_http_rate_limit_link_copy(&cl->tls_name,
                                         &rcf->tls_server_name, cycle->log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_rate_limit_cluster_fetch();

    return NGX_OK;
}


/*
 * Before the link frees its ops: the parts it holds are its to free;
 * those held here, the splits and the map are freed now.
 */

void
ngx_http_rate_limit_cluster_exit(void)
{
    ngx_uint_t                      i;
    ngx_queue_t                    *q;
    ngx_http_rate_limit_req_t      *req;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;
    if (cl == NULL) {
        return;
    }

    cl->exiting = 1;

    ngx_http_rate_limit_cluster_close();

    if (cl->timer.timer_set) {
        ngx_del_timer(&cl->timer);
    }

    /* held parts are freed with their splits */

    while (!ngx_queue_empty(&cl->reqs)) {
        q = ngx_queue_head(&cl->reqs);
        req = ngx_queue_data(q, ngx_http_rate_limit_req_t, queue);
        ngx_http_rate_limit_cluster_free(req);
    }

    if (cl->map) {
        rl_core_cluster_map_destroy(cl->map);
    }

    for (i = 0; cl->seeds && i < cl->nseeds; i++) {
        ngx_free(cl->seeds[i].host);
    }

    ngx_free(cl->seeds);
    ngx_free(cl->nodes);
    ngx_free(cl->username.data);
    ngx_free(cl->password.data);
    ngx_free(cl->tls_name.data);
    ngx_free(cl);

    ngx_http_rate_limit_cluster = NULL;
}


/*
 * The parent's zones, grouped by slot; every part is sent or held before
 * this returns, and none answers the parent from here.  NGX_DECLINED when
 * no part could go anywhere (the caller applies the fail policy at once).
 */

ngx_int_t
ngx_http_rate_limit_cluster_send(ngx_http_rate_limit_op_t *op,
    ngx_log_t *log)
{
    size_t                          g;
    uint16_t                       *slots, stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];
    ngx_uint_t                      i;
    ngx_http_rate_limit_req_t      *req;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    if (cl == NULL || op->zones == NULL || op->nzones == 0) {
        return NGX_DECLINED;
    }

    slots = stack;

    if (op->nzones > NGX_HTTP_RATE_LIMIT_STACK_ZONES) {
        slots = ngx_alloc(op->nzones * sizeof(uint16_t), log);
        if (slots == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < op->nzones; i++) {
        if (rl_core_zone_slot(&op->zones[i], &slots[i]) != RL_CORE_OK) {
            break;
        }
    }

    req = (i == op->nzones) ? ngx_http_rate_limit_cluster_split(op, slots)
                            : NULL;

    if (slots != stack) {
        ngx_free(slots);
    }

    if (req == NULL) {
        return NGX_ERROR;
    }

    /* pending counts the parts not done; one more: none finishes req here */

    req->pending = req->ngroups + 1;

    for (g = 0; g < req->ngroups; g++) {
        ngx_http_rate_limit_cluster_route(req->parts[g]);
    }

    if (--req->pending == 0) {
        /* nothing went out, nothing consumed */
        ngx_http_rate_limit_cluster_free(req);
        return NGX_DECLINED;
    }

    op->route = req;
    req->parent = op;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "rate_limit: op %p split into %uz slot groups, %ui out",
                   op, req->ngroups, req->pending);

    return NGX_OK;
}


/*
 * The split and its parts, each part's command built now (the zones are
 * borrowed for link_send only).
 */

static ngx_http_rate_limit_req_t *
ngx_http_rate_limit_cluster_split(ngx_http_rate_limit_op_t *op,
    const uint16_t *slots)
{
    u_char                          *p;
    size_t                           n, g, i, size, bytes, rbytes;
    rl_core_zone_request_t          *zreq;
    ngx_http_rate_limit_req_t       *req;
    ngx_http_rate_limit_part_t      *part;
    ngx_http_rate_limit_cluster_t   *cl;
    rl_core_cluster_group_t         *grp;

    cl = ngx_http_rate_limit_cluster;
    n = op->nzones;

    size = sizeof(ngx_http_rate_limit_req_t)
           + n * (sizeof(rl_core_cluster_group_t) + sizeof(size_t)
                  + sizeof(rl_core_group_state_e) + sizeof(int)
                  + NGX_HTTP_RATE_LIMIT_V * sizeof(int64_t)
                  + sizeof(rl_core_cluster_refund_t)
                  + sizeof(ngx_http_rate_limit_part_t *)
                  + sizeof(rl_core_zone_request_t))
           + 8 * sizeof(int64_t);

    req = ngx_calloc(size, cl->log);
    if (req == NULL) {
        return NULL;
    }

    /* the widest members first: every one stays aligned */

    p = (u_char *) (req + 1);
    req->values = (int64_t *) p;
    p += NGX_HTTP_RATE_LIMIT_V * n * sizeof(int64_t);
    req->groups = (rl_core_cluster_group_t *) p;
    p += n * sizeof(rl_core_cluster_group_t);
    req->refunds = (rl_core_cluster_refund_t *) p;
    p += n * sizeof(rl_core_cluster_refund_t);
    req->order = (size_t *) p;
    p += n * sizeof(size_t);
    req->parts = (ngx_http_rate_limit_part_t **) p;
    p += n * sizeof(ngx_http_rate_limit_part_t *);
    zreq = (rl_core_zone_request_t *) p;
    p += n * sizeof(rl_core_zone_request_t);
    req->states = (rl_core_group_state_e *) p;
    p += n * sizeof(rl_core_group_state_e);
    req->allowed = (int *) p;

    req->nzones = n;
    req->fail_closed = op->fail_closed;
    ngx_queue_insert_tail(&cl->reqs, &req->queue);

    if (rl_core_cluster_group(slots, n, req->order, req->groups,
                              &req->ngroups)
        != RL_CORE_OK)
    {
        goto failed;
    }

    for (g = 0; g < req->ngroups; g++) {
        grp = &req->groups[g];

        for (i = 0; i < grp->count; i++) {
            zreq[i] = op->zones[req->order[grp->first + i]];
        }

        if (rl_core_request_size(zreq, grp->count, 0, &bytes) != RL_CORE_OK)
        {
            goto failed;
        }

        /* only a request of several slots may need a refund */

        rbytes = (req->ngroups > 1) ? bytes : 0;

        part = ngx_alloc(sizeof(ngx_http_rate_limit_part_t)
                         + grp->count * NGX_HTTP_RATE_LIMIT_V
                           * sizeof(int64_t)
                         + bytes + rbytes,
                         cl->log);
        if (part == NULL) {
            goto failed;
        }

        ngx_memzero(part, sizeof(ngx_http_rate_limit_part_t));

        req->parts[g] = part;
        req->states[g] = RL_CORE_GROUP_NOT_RUN;

        part->req = req;
        part->group = g;

        part->op.handler = ngx_http_rate_limit_cluster_on_part;
        part->op.data = part;
        part->op.nvalues = grp->count * NGX_HTTP_RATE_LIMIT_V;
        part->op.values = (int64_t *) (part + 1);
        part->op.cmd = (char *) (part->op.values + part->op.nvalues);

        if (rl_core_request_build(zreq, grp->count, RL_CORE_MODE_CHECK, NULL,
                                  0, op->now_ms, part->op.cmd, bytes,
                                  &part->op.len)
            != RL_CORE_OK)
        {
            goto failed;
        }

        if (rbytes == 0) {
            continue;
        }

        part->refund = part->op.cmd + bytes;

        if (rl_core_request_build(zreq, grp->count, RL_CORE_MODE_REFUND,
                                  NULL, 0, op->now_ms, part->refund, rbytes,
                                  &part->refund_len)
            != RL_CORE_OK)
        {
            goto failed;
        }
    }

    return req;

failed:

    for (g = 0; g < n; g++) {
        ngx_free(req->parts[g]);
        req->parts[g] = NULL;
    }

    ngx_http_rate_limit_cluster_free(req);
    return NULL;
}


/*
 * Sends a part to its slot's master, holds it while a map is on its way,
 * or makes it an error of its zones.
 */

static void
ngx_http_rate_limit_cluster_route(ngx_http_rate_limit_part_t *part)
{
    uint32_t                        node;
    ngx_int_t                       rc;
    ngx_str_t                       text;
    ngx_http_rate_limit_req_t      *req;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;
    req = part->req;

    node = rl_core_cluster_map_lookup(cl->map,
                                      req->groups[part->group].slot);

    if (node == RL_CORE_CLUSTER_NO_NODE) {
        ngx_http_rate_limit_cluster_refresh();

        /* with no map and a fetch only after a backoff: fail now */

        if (cl->fetching || (cl->map && cl->timer.timer_set)) {
            ngx_queue_insert_tail(&cl->held, &part->held);
            part->state = NGX_HTTP_RATE_LIMIT_PART_HELD;
            return;
        }

        ngx_str_set(&text, "no master serves the slot");
        ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_NOT_RUN, &text);
        return;
    }

    part->op.asking = 0;

    part->node = cl->nodes[node];

    rc = ngx_http_rate_limit_link_send_to(&part->op, part->node, cl->log);

    if (rc == NGX_OK) {
        part->state = NGX_HTTP_RATE_LIMIT_PART_OUT;
        return;
    }

    /* a master that is down may have been replaced */

    if (rc == NGX_DECLINED) {
        ngx_http_rate_limit_cluster_refresh();
    }

    ngx_str_set(&text, "the slot's master is not connected");
    ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_NOT_RUN, &text);
}


static void
ngx_http_rate_limit_cluster_on_part(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    ngx_http_rate_limit_part_t  *part = op->data;

    size_t                       i, z, count;
    ngx_str_t                    why;
    ngx_http_rate_limit_req_t   *req;
    rl_core_cluster_group_t     *grp;
    rl_core_zone_result_t        result;

    req = part->req;
    grp = &req->groups[part->group];
    count = grp->count;

    switch (answer) {

    case NGX_HTTP_RATE_LIMIT_ANSWER_OK:
        break;

    case NGX_HTTP_RATE_LIMIT_ANSWER_ERROR:
        if (ngx_http_rate_limit_cluster_redirect(part, text) == NGX_OK) {
            return;
        }

        /* the script did not run: BUSY, TRYAGAIN, CLUSTERDOWN, ... */

        ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_NOT_RUN, text);
        return;

    case NGX_HTTP_RATE_LIMIT_ANSWER_LOST:
        req->lost = 1;
        ngx_str_set(&why, "the connection was lost before the answer");
        ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_UNKNOWN, &why);
        return;

    default: /* NGX_HTTP_RATE_LIMIT_ANSWER_MALFORMED */
        ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_UNKNOWN, text);
        return;
    }

    /* checked here for allowed; the caller decodes all of it again */

    for (i = 0; i < count; i++) {
        z = req->order[grp->first + i];

        if (rl_core_decode_reply(&op->values[i * NGX_HTTP_RATE_LIMIT_V],
                                 NGX_HTTP_RATE_LIMIT_V, 1, &result)
            != RL_CORE_OK)
        {
            ngx_str_set(&why, "a malformed reply (values out of range)");
            ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_UNKNOWN,
                                             &why);
            return;
        }

        req->allowed[z] = result.allowed == 1;
        ngx_memcpy(&req->values[z * NGX_HTTP_RATE_LIMIT_V],
                   &op->values[i * NGX_HTTP_RATE_LIMIT_V],
                   NGX_HTTP_RATE_LIMIT_V * sizeof(int64_t));
    }

    ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_ANSWERED, NULL);
}


/*
 * MOVED: the slot lives at another master now; the part goes there and
 * the map is read again.  ASK: the slot is being moved; this call, after
 * ASKING, goes to the importing node, the map stays.  NGX_DECLINED for
 * every other error, and for a redirect that cannot be followed.
 */

static ngx_int_t
ngx_http_rate_limit_cluster_redirect(ngx_http_rate_limit_part_t *part,
    ngx_str_t *text)
{
    u_char                          host[NGX_SOCKADDR_STRLEN + 1];
    ngx_int_t                       rc;
    ngx_uint_t                      node;
    rl_core_redirect_t              rd;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    if (rl_core_parse_redirect((char *) text->data, text->len, &rd)
        != RL_CORE_OK)
    {
        return NGX_DECLINED;
    }

    switch (rd.kind) {

    case RL_CORE_REDIRECT_MOVED:
        ngx_http_rate_limit_cluster_refresh();
        break;

    case RL_CORE_REDIRECT_ASK:
        break;

    case RL_CORE_REDIRECT_CLUSTERDOWN:
        ngx_http_rate_limit_cluster_refresh();
        return NGX_DECLINED;

    default:
        return NGX_DECLINED;
    }

    if (rd.host_kind != RL_CORE_HOST_NUMERIC
        || rd.host_len > NGX_SOCKADDR_STRLEN
        || ++part->redirects > NGX_HTTP_RATE_LIMIT_CLUSTER_REDIRECTS)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(host, rd.host, rd.host_len);
    host[rd.host_len] = '\0';

    if (ngx_http_rate_limit_link_node((char *) host, rd.port, &node)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, cl->log, 0,
                   "rate_limit: op %p %s to %s:%d", &part->op,
                   rd.kind == RL_CORE_REDIRECT_ASK ? "asked" : "moved",
                   host, (int) rd.port);

    part->op.asking = (rd.kind == RL_CORE_REDIRECT_ASK);
    part->node = node;

    rc = ngx_http_rate_limit_link_send_to(&part->op, node, cl->log);

    return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
}


/* A part is done: its group's state; the split is when all are. */

static void
ngx_http_rate_limit_cluster_done(ngx_http_rate_limit_part_t *part,
    rl_core_group_state_e state, ngx_str_t *text)
{
    ngx_http_rate_limit_req_t  *req;

    req = part->req;

    part->state = NGX_HTTP_RATE_LIMIT_PART_DONE;
    req->states[part->group] = state;

    if (text && text->len) {
        req->text.len = ngx_min(text->len, sizeof(req->buf));
        req->text.data = req->buf;
        ngx_memcpy(req->buf, text->data, req->text.len);
    }

    if (--req->pending == 0) {
        ngx_http_rate_limit_cluster_finish(req);
    }
}


static void
ngx_http_rate_limit_cluster_finish(ngx_http_rate_limit_req_t *req)
{
    size_t             nrefunds;
    rl_core_outcome_e  outcome;

    if (rl_core_cluster_outcome(req->groups, req->ngroups, req->order,
                                req->nzones, req->states, req->allowed,
                                &outcome, req->refunds, &nrefunds)
        != RL_CORE_OK)
    {
        outcome = RL_CORE_OUTCOME_ERROR;
        nrefunds = 0;
    }

    /*
     * A request that is not admitted gives back what its slots took: a
     * rejection always, an error when the fail policy rejects it; one
     * that timed out had the fail policy.
     */

    if (nrefunds
        && (req->fail_closed
            || (outcome == RL_CORE_OUTCOME_REJECT && req->parent)))
    {
        ngx_http_rate_limit_cluster_refund(req, nrefunds);
    }

    if (req->parent) {
        ngx_http_rate_limit_cluster_answer(req, outcome);
    }

    ngx_http_rate_limit_cluster_free(req);
}


/*
 * The parent's answer: each zone of an answered group with its values,
 * the others marked unanswered.  With none answered it is the last error.
 */

static void
ngx_http_rate_limit_cluster_answer(ngx_http_rate_limit_req_t *req,
    rl_core_outcome_e outcome)
{
    size_t                          g, i, z, answered;
    int64_t                        *v;
    ngx_http_rate_limit_op_t       *op;
    ngx_http_rate_limit_answer_e    answer;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    op = req->parent;
    req->parent = NULL;
    op->route = NULL;

    answered = 0;

    for (g = 0; g < req->ngroups; g++) {
        for (i = 0; i < req->groups[g].count; i++) {
            z = req->order[req->groups[g].first + i];

            v = &op->values[z * NGX_HTTP_RATE_LIMIT_V];

            if (req->states[g] == RL_CORE_GROUP_ANSWERED) {
                ngx_memcpy(v, &req->values[z * NGX_HTTP_RATE_LIMIT_V],
                           NGX_HTTP_RATE_LIMIT_V * sizeof(int64_t));
                op->answered[z] = 1;
                answered++;
                continue;
            }

            /* values the decoder accepts, never shown: not answered */

            ngx_memzero(v, NGX_HTTP_RATE_LIMIT_V * sizeof(int64_t));
            v[0] = 1;
            v[1] = 1;
            v[2] = 1;
            op->answered[z] = 0;
        }
    }

    if (answered == 0) {
        answer = req->lost ? NGX_HTTP_RATE_LIMIT_ANSWER_LOST
                           : NGX_HTTP_RATE_LIMIT_ANSWER_ERROR;
        op->handler(op, answer, &req->text);
        return;
    }

    if (answered < req->nzones && outcome != RL_CORE_OUTCOME_REJECT) {
        ngx_http_rate_limit_log_error(&cl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_REPLY, cl->log,
                                      "rate_limit: cluster: %uz of %ui "
                                      "zones not decided: \"%V\"",
                                      req->nzones - answered, req->nzones,
                                      &req->text);
    }

    op->handler(op, NGX_HTTP_RATE_LIMIT_ANSWER_OK, NULL);
}


/*
 * The groups that consumed for a request that is not admitted: one call
 * each, to the node that answered the check (after ASKING if it was
 * asked), not waited for: its reply is only logged if it is an error.
 */

static void
ngx_http_rate_limit_cluster_refund(ngx_http_rate_limit_req_t *req,
    size_t nrefunds)
{
    size_t                          i, g;
    ngx_http_rate_limit_op_t       *op;
    ngx_http_rate_limit_part_t     *part;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    for (i = 0; i < nrefunds; i++) {
        g = req->refunds[i].group;

        if (i > 0 && req->refunds[i - 1].group == g) {
            /* one call for all the zones of a group */
            continue;
        }

        part = req->parts[g];

        if (part == NULL || part->refund == NULL) {
            continue;
        }

        op = ngx_alloc(sizeof(ngx_http_rate_limit_op_t)
                       + req->groups[g].count * sizeof(int64_t)
                       + part->refund_len, cl->log);
        if (op == NULL) {
            return;
        }

        ngx_memzero(op, sizeof(ngx_http_rate_limit_op_t));

        op->handler = ngx_http_rate_limit_cluster_on_refund;
        op->data = cl;
        op->nvalues = req->groups[g].count;
        op->values = (int64_t *) (op + 1);
        op->cmd = (char *) (op->values + op->nvalues);
        op->len = part->refund_len;
        ngx_memcpy(op->cmd, part->refund, part->refund_len);
        op->asking = part->op.asking;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cl->log, 0,
                       "rate_limit: op %p refunds %uz zones of op %p",
                       op, req->groups[g].count, &part->op);

        if (ngx_http_rate_limit_link_send_to(op, part->node, cl->log)
            != NGX_OK)
        {
            ngx_free(op);
        }
    }
}


static void
ngx_http_rate_limit_cluster_on_refund(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    ngx_str_t                       lost = ngx_string("connection lost");
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    if (answer != NGX_HTTP_RATE_LIMIT_ANSWER_OK && cl != NULL) {
        ngx_http_rate_limit_log_error(&cl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_REPLY, cl->log,
                                      "rate_limit: cluster: a refund failed: "
                                      "\"%V\"", text ? text : &lost);
    }

    ngx_free(op);
}


void
ngx_http_rate_limit_cluster_cancel(ngx_http_rate_limit_op_t *op)
{
    size_t                       g;
    ngx_http_rate_limit_req_t   *req;
    ngx_http_rate_limit_part_t  *part;

    req = op->route;

    op->route = NULL;
    ngx_free(op);

    if (req == NULL || ngx_http_rate_limit_cluster == NULL) {
        return;
    }

    req->parent = NULL;

    /* what was not written never will be; the rest must still be read */

    req->pending++;

    for (g = 0; g < req->ngroups; g++) {
        part = req->parts[g];

        if (part == NULL) {
            continue;
        }

        if (part->state == NGX_HTTP_RATE_LIMIT_PART_HELD) {
            ngx_queue_remove(&part->held);
            ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_NOT_RUN,
                                             NULL);

        } else if (part->state == NGX_HTTP_RATE_LIMIT_PART_OUT
                   && !part->op.sent)
        {
            /* taken back by the link, which frees it */
            ngx_http_rate_limit_link_cancel(&part->op);

            req->parts[g] = NULL;
            req->states[g] = RL_CORE_GROUP_NOT_RUN;
            req->pending--;
        }
    }

    if (--req->pending == 0) {
        ngx_http_rate_limit_cluster_finish(req);
    }
}


static void
ngx_http_rate_limit_cluster_free(ngx_http_rate_limit_req_t *req)
{
    size_t                       g;
    ngx_http_rate_limit_part_t  *part;

    /* a part that is out is the link's, which frees it */

    for (g = 0; g < req->ngroups; g++) {
        part = req->parts[g];

        if (part == NULL || part->state == NGX_HTTP_RATE_LIMIT_PART_OUT) {
            continue;
        }

        if (part->state == NGX_HTTP_RATE_LIMIT_PART_HELD) {
            ngx_queue_remove(&part->held);
        }

        ngx_free(part);
    }

    ngx_queue_remove(&req->queue);
    ngx_free(req);
}


void
ngx_http_rate_limit_cluster_refresh(void)
{
    ngx_msec_t                      since;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    if (cl == NULL || cl->exiting || cl->fetching || cl->timer.timer_set) {
        /* a map is on its way, or due */
        return;
    }

    since = ngx_current_msec - cl->started;

    if (cl->map && since < NGX_HTTP_RATE_LIMIT_CLUSTER_REFRESH) {
        ngx_add_timer(&cl->timer, NGX_HTTP_RATE_LIMIT_CLUSTER_REFRESH - since);
        return;
    }

    cl->tried = 0;
    ngx_http_rate_limit_cluster_fetch();
}


/* Asks the next address of the round: the seeds, then the map's masters. */

static void
ngx_http_rate_limit_cluster_fetch(void)
{
    int                             argc;
    size_t                          argvlen[3];
    const char                     *argv[3];
    ngx_uint_t                      n, i;
    redisAsyncContext              *ac;
    rl_core_cluster_node_t          node;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    n = cl->nseeds + rl_core_cluster_map_node_count(cl->map);
    i = cl->current % n;

    if (i < cl->nseeds) {
        (void) ngx_cpystrn((u_char *) cl->origin,
                           (u_char *) cl->seeds[i].host, sizeof(cl->origin));
        cl->origin_port = cl->seeds[i].port;

    } else {
        (void) rl_core_cluster_map_node(cl->map, (uint32_t) (i - cl->nseeds),
                                        &node);
        (void) ngx_cpystrn((u_char *) cl->origin, (u_char *) node.host,
                           sizeof(cl->origin));
        cl->origin_port = node.port;
    }

    cl->fetching = 1;
    cl->started = ngx_current_msec;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cl->log, 0,
                   "rate_limit: cluster: reading the slot map from %s:%d",
                   cl->origin, cl->origin_port);

    ac = redisAsyncConnect(cl->origin, cl->origin_port);

    if (ac == NULL || ac->err) {
        ngx_http_rate_limit_log_error(&cl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_CONNECT,
                                      cl->log,
                                      "rate_limit: cannot connect to "
                                      "cluster node %s:%d: %s", cl->origin,
                                      cl->origin_port,
                                      ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_rate_limit_cluster_fetch_failed();
        return;
    }

    if (cl->ssl_ctx
        && ngx_http_rate_limit_tls_start(ac, cl->ssl_ctx, &cl->tls_name,
                                         cl->log)
           != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_cluster_fetch_failed();
        return;
    }

    ngx_http_rate_limit_reader_attach(&cl->reader, ac);

    if (ngx_http_rate_limit_hiredis_attach(ac, cl->log,
                                         ngx_http_rate_limit_cluster_read_done,
                                         cl)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_cluster_fetch_failed();
        return;
    }

    ac->data = cl;
    cl->ac = ac;

    redisAsyncSetDisconnectCallback(ac,
                                  ngx_http_rate_limit_cluster_on_disconnect);
    redisAsyncSetConnectCallback(ac, ngx_http_rate_limit_cluster_on_connect);

    ngx_add_timer(&cl->connect, cl->connect_timeout);

    if (cl->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (cl->username.len) {
            argv[argc] = (char *) cl->username.data;
            argvlen[argc++] = cl->username.len;
        }

        argv[argc] = (char *) cl->password.data;
        argvlen[argc++] = cl->password.len;

        (void) redisAsyncCommandArgv(ac, ngx_http_rate_limit_cluster_on_auth,
                           (void *) &ngx_http_rate_limit_cluster_step_auth,
                           argc, argv, argvlen);
    }

    argv[0] = "CLUSTER";
    argvlen[0] = 7;
    argv[1] = "SHARDS";
    argvlen[1] = 6;

    ngx_http_rate_limit_cluster_ask("shards", 2, argv, argvlen);
}


static void
ngx_http_rate_limit_cluster_ask(const char *what, int argc,
    const char **argv, const size_t *argvlen)
{
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    (void) redisAsyncCommandArgv(cl->ac, ngx_http_rate_limit_cluster_on_map,
                                 (void *) (what[1] == 'h'
                                     ? &ngx_http_rate_limit_cluster_step_shards
                                     : &ngx_http_rate_limit_cluster_step_slots),
                                 argc, argv, argvlen);
}


/*
 * That address failed: the next one at once, until the round is done;
 * with no map yet, a new round after the link's backoff.  Parts held for
 * the map are errors now.
 */

static void
ngx_http_rate_limit_cluster_fetch_failed(void)
{
    ngx_uint_t                      n;
    ngx_msec_t                      delay;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    ngx_http_rate_limit_cluster_close();

    cl->fetching = 0;

    if (cl->exiting) {
        return;
    }

    n = cl->nseeds + rl_core_cluster_map_node_count(cl->map);

    cl->current++;

    if (++cl->tried < n) {
        ngx_http_rate_limit_cluster_fetch();
        return;
    }

    cl->tried = 0;

    ngx_http_rate_limit_cluster_release();

    if (cl->map == NULL && !cl->timer.timer_set) {
        delay = (ngx_msec_t) rl_core_backoff_ms((unsigned) ++cl->rounds);
        ngx_add_timer(&cl->timer, ngx_max(delay, 1));
    }
}


/* The fetch's connection goes, and its timer. */

static void
ngx_http_rate_limit_cluster_close(void)
{
    redisAsyncContext              *ac;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    if (cl->connect.timer_set) {
        ngx_del_timer(&cl->connect);
    }

    ac = cl->ac;

    if (ac) {
        /* deferred by hiredis inside one of its callbacks */
        cl->ac = NULL;
        redisAsyncFree(ac);
    }
}


static void
ngx_http_rate_limit_cluster_on_connect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_cluster_t  *cl = ac->data;

    if (cl->ac != ac || status == REDIS_OK) {
        return;
    }

    ngx_http_rate_limit_log_error(&cl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT, cl->log,
                                  "rate_limit: cannot connect to cluster "
                                  "node %s:%d: %s", cl->origin,
                                  cl->origin_port, ac->errstr);

    /* hiredis frees the context right after this returns */

    cl->ac = NULL;
    ngx_http_rate_limit_cluster_fetch_failed();
}


static void
ngx_http_rate_limit_cluster_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_cluster_t  *cl = ac->data;

    const char  *why;

    if (cl->ac != ac) {
        return;
    }

    why = ngx_http_rate_limit_reader_refusal(&cl->reader);

    ngx_http_rate_limit_log_error(&cl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CLOSED, cl->log,
                                  "rate_limit: cluster node %s:%d closed "
                                  "the connection: %s", cl->origin,
                                  cl->origin_port, why ? why : ac->errstr);

    cl->ac = NULL;
    ngx_http_rate_limit_cluster_fetch_failed();
}


static void
ngx_http_rate_limit_cluster_on_auth(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                     *r = reply;
    ngx_http_rate_limit_cluster_t  *cl = ac->data;

    if (r == NULL || cl->ac != ac || r->type != REDIS_REPLY_ERROR) {
        return;
    }

    ngx_http_rate_limit_log_error(&cl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE, cl->log,
                                  "rate_limit: cluster node %s:%d refused "
                                  "AUTH: %*s", cl->origin, cl->origin_port,
                                  (size_t) ngx_min(r->len, 256), r->str);

    ngx_http_rate_limit_cluster_fetch_failed();
}


static void
ngx_http_rate_limit_cluster_on_map(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                                *r = reply;
    ngx_http_rate_limit_cluster_t             *cl = ac->data;
    const ngx_http_rate_limit_cluster_step_t  *step = privdata;

    char                            err[256];
    size_t                          argvlen[2], n;
    ngx_int_t                       rc;
    const char                     *argv[2];
    rl_core_status_e                st;
    rl_core_cluster_map_t          *map;
    rl_core_cluster_range_t        *ranges;

    if (r == NULL || cl->ac != ac) {
        return;
    }

    if (r->type == REDIS_REPLY_ERROR
        && step == &ngx_http_rate_limit_cluster_step_shards)
    {
        /* a server older than 7.0 */

        argv[0] = "CLUSTER";
        argvlen[0] = 7;
        argv[1] = "SLOTS";
        argvlen[1] = 5;

        ngx_http_rate_limit_cluster_ask("slots", 2, argv, argvlen);
        return;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        ngx_http_rate_limit_log_error(&cl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      cl->log,
                                      "rate_limit: cluster node %s:%d "
                                      "refused %s: %*s", cl->origin,
                                      cl->origin_port, step->name,
                                      (size_t) ngx_min(r->len, 256), r->str);
        ngx_http_rate_limit_cluster_fetch_failed();
        return;
    }

    ranges = NULL;
    map = NULL;

    rc = (step == &ngx_http_rate_limit_cluster_step_shards)
         ? ngx_http_rate_limit_cluster_shards(r, &ranges, &n)
         : ngx_http_rate_limit_cluster_slots(r, &ranges, &n);

    if (rc == NGX_OK) {
        st = rl_core_cluster_map_create(ranges, n, cl->origin,
                                        ngx_strlen(cl->origin), &map, err,
                                        sizeof(err));
        if (st != RL_CORE_OK) {
            ngx_http_rate_limit_log_error(&cl->throttle,
                                          NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                          cl->log,
                                          "rate_limit: cluster node %s:%d "
                                          "sent a slot map that is not "
                                          "used: %s", cl->origin,
                                          cl->origin_port, err);
            rc = NGX_ERROR;
        }

    } else {
        ngx_http_rate_limit_log_error(&cl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      cl->log,
                                      "rate_limit: cluster node %s:%d "
                                      "answered %s with a reply of an "
                                      "unexpected shape", cl->origin,
                                      cl->origin_port, step->name);
    }

    ngx_free(ranges);

    if (rc != NGX_OK || ngx_http_rate_limit_cluster_apply(map) != NGX_OK) {
        if (map) {
            rl_core_cluster_map_destroy(map);
        }

        ngx_http_rate_limit_cluster_fetch_failed();
        return;
    }

    ngx_http_rate_limit_cluster_close();

    cl->fetching = 0;
    cl->tried = 0;
    cl->rounds = 0;

    ngx_http_rate_limit_cluster_release();
}


/* A string element of a reply is s. */

#define ngx_http_rate_limit_cluster_is(e, s)                                  \
    ((e)->type == REDIS_REPLY_STRING && (e)->len == sizeof(s) - 1             \
     && ngx_strncmp((e)->str, s, sizeof(s) - 1) == 0)


/*
 * CLUSTER SHARDS: [["slots", [s1, e1, ...], "nodes", [[key, value, ...],
 * ...]], ...]; each shard's ranges go to its node whose "role" is
 * "master", at its "ip" and "port" ("tls-port" with TLS).
 */

static ngx_int_t
ngx_http_rate_limit_cluster_shards(redisReply *r,
    rl_core_cluster_range_t **ranges, size_t *n)
{
    size_t                          i, k, j, total;
    redisReply                     *shard, *slots, *nodes, *nd, *e, *v;
    redisReply                     *ip, *port, *tport;
    rl_core_cluster_range_t        *rg;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    if (r->type != REDIS_REPLY_ARRAY) {
        return NGX_ERROR;
    }

    total = 0;

    for (i = 0; i < r->elements; i++) {
        shard = r->element[i];

        if (shard->type != REDIS_REPLY_ARRAY) {
            return NGX_ERROR;
        }

        for (k = 0; k + 1 < shard->elements; k += 2) {
            if (ngx_http_rate_limit_cluster_is(shard->element[k], "slots")
                && shard->element[k + 1]->type == REDIS_REPLY_ARRAY)
            {
                total += shard->element[k + 1]->elements / 2;
            }
        }
    }

    *n = 0;
    *ranges = ngx_alloc((total + 1) * sizeof(rl_core_cluster_range_t),
                        cl->log);
    if (*ranges == NULL) {
        return NGX_ERROR;
    }

    rg = *ranges;

    for (i = 0; i < r->elements; i++) {
        shard = r->element[i];
        slots = NULL;
        nodes = NULL;

        for (k = 0; k + 1 < shard->elements; k += 2) {
            if (ngx_http_rate_limit_cluster_is(shard->element[k], "slots")) {
                slots = shard->element[k + 1];

            } else if (ngx_http_rate_limit_cluster_is(shard->element[k],
                                                      "nodes"))
            {
                nodes = shard->element[k + 1];
            }
        }

        if (slots == NULL || nodes == NULL || slots->type != REDIS_REPLY_ARRAY
            || nodes->type != REDIS_REPLY_ARRAY)
        {
            return NGX_ERROR;
        }

        /* the master of the shard */

        ip = NULL;
        port = NULL;
        tport = NULL;

        for (j = 0; j < nodes->elements && ip == NULL; j++) {
            nd = nodes->element[j];

            if (nd->type != REDIS_REPLY_ARRAY) {
                return NGX_ERROR;
            }

            for (k = 0; k + 1 < nd->elements; k += 2) {
                e = nd->element[k];
                v = nd->element[k + 1];

                if (ngx_http_rate_limit_cluster_is(e, "role")
                    && ngx_http_rate_limit_cluster_is(v, "master"))
                {
                    break;
                }
            }

            if (k + 1 >= nd->elements) {
                continue;
            }

            for (k = 0; k + 1 < nd->elements; k += 2) {
                e = nd->element[k];
                v = nd->element[k + 1];

                if (ngx_http_rate_limit_cluster_is(e, "ip")
                    && v->type == REDIS_REPLY_STRING)
                {
                    ip = v;

                } else if (ngx_http_rate_limit_cluster_is(e, "port")
                           && v->type == REDIS_REPLY_INTEGER)
                {
                    port = v;

                } else if (ngx_http_rate_limit_cluster_is(e, "tls-port")
                           && v->type == REDIS_REPLY_INTEGER)
                {
                    tport = v;
                }
            }
        }

        if (cl->ssl_ctx && tport) {
            port = tport;
        }

        if (slots->elements == 0 || ip == NULL || port == NULL) {
            /* no slots, or no master: nothing to route there */
            continue;
        }

        for (k = 0; k + 1 < slots->elements; k += 2) {
            if (slots->element[k]->type != REDIS_REPLY_INTEGER
                || slots->element[k + 1]->type != REDIS_REPLY_INTEGER)
            {
                return NGX_ERROR;
            }

            rg->start = slots->element[k]->integer;
            rg->end = slots->element[k + 1]->integer;
            rg->host = ip->str;
            rg->host_len = ip->len;
            rg->port = port->integer;
            rg++;
            (*n)++;
        }
    }

    return NGX_OK;
}


/* CLUSTER SLOTS: [[start, end, [host, port, ...], replicas ...], ...] */

static ngx_int_t
ngx_http_rate_limit_cluster_slots(redisReply *r,
    rl_core_cluster_range_t **ranges, size_t *n)
{
    size_t                    i;
    redisReply               *e, *m;
    rl_core_cluster_range_t  *rg;

    if (r->type != REDIS_REPLY_ARRAY) {
        return NGX_ERROR;
    }

    *n = 0;
    *ranges = ngx_alloc((r->elements + 1) * sizeof(rl_core_cluster_range_t),
                        ngx_http_rate_limit_cluster->log);
    if (*ranges == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < r->elements; i++) {
        e = r->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2)
        {
            return NGX_ERROR;
        }

        m = e->element[2];

        if ((m->element[0]->type != REDIS_REPLY_STRING
             && m->element[0]->type != REDIS_REPLY_NIL)
            || m->element[1]->type != REDIS_REPLY_INTEGER)
        {
            return NGX_ERROR;
        }

        rg = &(*ranges)[(*n)++];

        rg->start = e->element[0]->integer;
        rg->end = e->element[1]->integer;
        rg->host = m->element[0]->str;
        rg->host_len = m->element[0]->len;
        rg->port = m->element[1]->integer;
    }

    return NGX_OK;
}


/*
 * The new map: its masters become link nodes (connecting if new), the
 * nodes it no longer names are retired.
 */

static ngx_int_t
ngx_http_rate_limit_cluster_apply(rl_core_cluster_map_t *map)
{
    u_char                         *used;
    uint32_t                        i, count;
    ngx_uint_t                     *nodes, n, k;
    rl_core_cluster_node_t          node;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    count = rl_core_cluster_map_node_count(map);

    nodes = ngx_alloc((count + 1) * sizeof(ngx_uint_t), cl->log);
    if (nodes == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < count; i++) {
        (void) rl_core_cluster_map_node(map, i, &node);

        if (ngx_http_rate_limit_link_node(node.host, node.port, &nodes[i])
            != NGX_OK)
        {
            ngx_free(nodes);
            return NGX_ERROR;
        }
    }

    if (cl->map) {
        rl_core_cluster_map_destroy(cl->map);
    }

    ngx_free(cl->nodes);

    cl->map = map;
    cl->nodes = nodes;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cl->log, 0,
                   "rate_limit: cluster: slot map from %s:%d, %uD masters",
                   cl->origin, cl->origin_port, count);

    /* what no longer serves a slot */

    n = ngx_http_rate_limit_link_nodes();

    used = ngx_calloc(n, cl->log);
    if (used == NULL) {
        return NGX_OK;
    }

    for (i = 0; i < count; i++) {
        used[nodes[i]] = 1;
    }

    for (k = 0; k < n; k++) {
        if (!used[k]) {
            ngx_http_rate_limit_link_retire(k);
        }
    }

    ngx_free(used);

    return NGX_OK;
}


/* The parts held for a map: routed now, or errors if there is none. */

static void
ngx_http_rate_limit_cluster_release(void)
{
    ngx_queue_t                    *q;
    ngx_queue_t                     held;
    ngx_str_t                       text;
    ngx_http_rate_limit_part_t     *part;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    if (ngx_queue_empty(&cl->held)) {
        return;
    }

    /* a part routed again may be held again: take them all first */

    held = cl->held;
    held.next->prev = &held;
    held.prev->next = &held;
    ngx_queue_init(&cl->held);

    ngx_str_set(&text, "no slot map");

    while (!ngx_queue_empty(&held)) {
        q = ngx_queue_head(&held);
        ngx_queue_remove(q);

        part = ngx_queue_data(q, ngx_http_rate_limit_part_t, held);
        part->state = NGX_HTTP_RATE_LIMIT_PART_NEW;

        if (cl->map == NULL
            || rl_core_cluster_map_lookup(cl->map,
                                 part->req->groups[part->group].slot)
               == RL_CORE_CLUSTER_NO_NODE)
        {
            ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_NOT_RUN,
                                             &text);
            continue;
        }

        ngx_http_rate_limit_cluster_route(part);
    }
}


static void
ngx_http_rate_limit_cluster_read_done(void *data)
{
    ngx_http_rate_limit_cluster_t  *cl = data;

    if (cl->ac == NULL
        || ngx_http_rate_limit_reader_check(&cl->reader) == NGX_OK)
    {
        return;
    }

    ngx_http_rate_limit_log_error(&cl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CLOSED, cl->log,
                                  "rate_limit: cluster node %s:%d sent %s",
                                  cl->origin, cl->origin_port,
                                  ngx_http_rate_limit_reader_refusal(
                                                               &cl->reader));

    ngx_http_rate_limit_cluster_fetch_failed();
}


static void
ngx_http_rate_limit_cluster_timer_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_cluster_t  *cl = ev->data;

    if (cl->exiting || cl->fetching) {
        return;
    }

    cl->tried = 0;
    ngx_http_rate_limit_cluster_fetch();
}


static void
ngx_http_rate_limit_cluster_connect_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_cluster_t  *cl = ev->data;

    ngx_http_rate_limit_log_error(&cl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT, cl->log,
                                  "rate_limit: cluster node %s:%d did not "
                                  "send the slot map within %M ms",
                                  cl->origin, cl->origin_port,
                                  cl->connect_timeout);

    ngx_http_rate_limit_cluster_fetch_failed();
}
