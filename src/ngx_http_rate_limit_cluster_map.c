
/*
 * ngx_http_rate_limit_module: mode=cluster's slot map (see the header).
 *
 * One fetch at a time, on a connection of its own, to a seed or a master
 * of the current map in turn (skipping those that fail): AUTH, CLUSTER
 * SHARDS (CLUSTER SLOTS when that is refused: Redis before 7.0), then
 * closed.  A fetch starts at init and on every refresh, at most once per
 * REFRESH ms; a round in which every address failed leaves the map as it
 * was, and with no map yet a new round follows after the link's backoff.
 * The map's masters become link nodes; a node that no longer serves a
 * slot is retired.  When a fetch ends, either way, the router's release
 * runs: parts held for the map go on or fail.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_rate_limit_cluster_map.h"
#include "ngx_http_rate_limit_link.h"
#include "ngx_http_rate_limit_hiredis.h"
#include "ngx_http_rate_limit_reader.h"
#include "ngx_http_rate_limit_log.h"
#include "ngx_http_rate_limit_tls.h"


/* at most this often a new map, ms */
#define NGX_HTTP_RATE_LIMIT_SLOTS_REFRESH    200

/* a map of 16384 single-slot ranges with their node ids fits */
#define NGX_HTTP_RATE_LIMIT_SLOTS_REPLY      (4 * 1024 * 1024)


typedef struct {
    char                               *host;   /* numeric */
    int                                 port;
} ngx_http_rate_limit_slots_addr_t;


typedef struct {
    ngx_log_t                          *log;
    void                              (*release)(void);

    ngx_uint_t                          nseeds;
    ngx_http_rate_limit_slots_addr_t   *seeds;

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

    ngx_http_rate_limit_throttle_t      throttle;

    unsigned                            fetching:1;
    unsigned                            exiting:1;
} ngx_http_rate_limit_slots_t;


/* A map command: the shape first, as every privdata */
typedef struct {
    ngx_http_rate_limit_shape_t         shape;
    const char                         *name;
} ngx_http_rate_limit_slots_step_t;


static void ngx_http_rate_limit_slots_fetch(void);
static void ngx_http_rate_limit_slots_fetch_failed(void);
static void ngx_http_rate_limit_slots_close(void);
static void ngx_http_rate_limit_slots_ask(
    const ngx_http_rate_limit_slots_step_t *step, int argc,
    const char **argv, const size_t *argvlen);
static void ngx_http_rate_limit_slots_on_connect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_slots_on_disconnect(
    const redisAsyncContext *ac, int status);
static void ngx_http_rate_limit_slots_on_auth(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_rate_limit_slots_on_map(redisAsyncContext *ac,
    void *reply, void *privdata);
static ngx_int_t ngx_http_rate_limit_slots_shards(redisReply *r,
    rl_core_cluster_range_t **ranges, size_t *n);
static ngx_int_t ngx_http_rate_limit_slots_master(redisReply *nodes,
    redisReply **ip, redisReply **port);
static ngx_int_t ngx_http_rate_limit_slots_slots(redisReply *r,
    rl_core_cluster_range_t **ranges, size_t *n);
static ngx_int_t ngx_http_rate_limit_slots_apply(
    rl_core_cluster_map_t *map);
static void ngx_http_rate_limit_slots_read_done(void *data);
static void ngx_http_rate_limit_slots_timer_handler(ngx_event_t *ev);
static void ngx_http_rate_limit_slots_connect_handler(ngx_event_t *ev);


static ngx_http_rate_limit_slots_t  *ngx_http_rate_limit_slots;


static const ngx_http_rate_limit_slots_step_t
    ngx_http_rate_limit_slots_step_auth = { { 0, 512 }, "AUTH" };

static const ngx_http_rate_limit_slots_step_t
    ngx_http_rate_limit_slots_step_shards = {
        { 4, NGX_HTTP_RATE_LIMIT_SLOTS_REPLY }, "CLUSTER SHARDS"
    };

/* [start, end, [host, port, id, {metadata}], replicas ...] */
static const ngx_http_rate_limit_slots_step_t
    ngx_http_rate_limit_slots_step_slots = {
        { 4, NGX_HTTP_RATE_LIMIT_SLOTS_REPLY }, "CLUSTER SLOTS"
    };


ngx_int_t
ngx_http_rate_limit_slots_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf, void (*release)(void))
{
    ngx_str_t                     h;
    ngx_uint_t                    i;
    ngx_http_rate_limit_addr_t   *addr;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_calloc(sizeof(ngx_http_rate_limit_slots_t), cycle->log);
    if (sl == NULL) {
        return NGX_ERROR;
    }

    ngx_http_rate_limit_slots = sl;

    sl->log = cycle->log;
    sl->release = release;
    sl->connect_timeout = rcf->connect_timeout;
    sl->ssl_ctx = rcf->ssl_ctx;

    sl->timer.handler = ngx_http_rate_limit_slots_timer_handler;
    sl->timer.data = sl;
    sl->timer.log = cycle->log;
    sl->timer.cancelable = 1;

    sl->connect.handler = ngx_http_rate_limit_slots_connect_handler;
    sl->connect.data = sl;
    sl->connect.log = cycle->log;
    sl->connect.cancelable = 1;

    sl->nseeds = rcf->seeds->nelts;
    sl->seeds = ngx_calloc(sl->nseeds
                           * sizeof(ngx_http_rate_limit_slots_addr_t),
                           cycle->log);
    if (sl->seeds == NULL) {
        return NGX_ERROR;
    }

    addr = rcf->seeds->elts;

    for (i = 0; i < sl->nseeds; i++) {
        if (ngx_http_rate_limit_link_copy(&h, &addr[i].host, cycle->log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        sl->seeds[i].host = (char *) h.data;
        sl->seeds[i].port = addr[i].port;
    }

    if (ngx_http_rate_limit_link_copy(&sl->username, &rcf->username,
                                      cycle->log)
        != NGX_OK
        || ngx_http_rate_limit_link_copy(&sl->password, &rcf->password,
                                         cycle->log)
           != NGX_OK
        || ngx_http_rate_limit_link_copy(&sl->tls_name,
                                         &rcf->tls_server_name, cycle->log)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_rate_limit_slots_fetch();

    return NGX_OK;
}


void
ngx_http_rate_limit_slots_exit(void)
{
    ngx_uint_t                    i;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;
    if (sl == NULL) {
        return;
    }

    sl->exiting = 1;

    ngx_http_rate_limit_slots_close();

    if (sl->timer.timer_set) {
        ngx_del_timer(&sl->timer);
    }

    if (sl->map) {
        rl_core_cluster_map_destroy(sl->map);
    }

    for (i = 0; sl->seeds && i < sl->nseeds; i++) {
        ngx_free(sl->seeds[i].host);
    }

    ngx_free(sl->seeds);
    ngx_free(sl->nodes);
    ngx_free(sl->username.data);
    ngx_free(sl->password.data);
    ngx_free(sl->tls_name.data);
    ngx_free(sl);

    ngx_http_rate_limit_slots = NULL;
}


ngx_int_t
ngx_http_rate_limit_slots_node(uint16_t slot, ngx_uint_t wait,
    ngx_uint_t *node)
{
    uint32_t                      i;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

    if (sl == NULL) {
        return NGX_DECLINED;
    }

    i = rl_core_cluster_map_lookup(sl->map, slot);

    if (i != RL_CORE_CLUSTER_NO_NODE) {
        *node = sl->nodes[i];
        return NGX_OK;
    }

    if (!wait) {
        return NGX_DECLINED;
    }

    ngx_http_rate_limit_slots_refresh();

    /* with no map and a fetch only after a backoff: no waiting */

    return (sl->fetching || (sl->map && sl->timer.timer_set))
           ? NGX_AGAIN : NGX_DECLINED;
}


void
ngx_http_rate_limit_slots_refresh(void)
{
    ngx_msec_t                    since;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

    if (sl == NULL || sl->exiting || sl->fetching || sl->timer.timer_set) {
        /* a map is on its way, or due */
        return;
    }

    since = ngx_current_msec - sl->started;

    if (sl->map && since < NGX_HTTP_RATE_LIMIT_SLOTS_REFRESH) {
        ngx_add_timer(&sl->timer, NGX_HTTP_RATE_LIMIT_SLOTS_REFRESH - since);
        return;
    }

    sl->tried = 0;
    ngx_http_rate_limit_slots_fetch();
}


/* Asks the next address of the round: the seeds, then the map's masters. */

static void
ngx_http_rate_limit_slots_fetch(void)
{
    int                           argc;
    size_t                        argvlen[3];
    const char                   *argv[3];
    ngx_uint_t                    n, i;
    redisAsyncContext            *ac;
    rl_core_cluster_node_t        node;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

    n = sl->nseeds + rl_core_cluster_map_node_count(sl->map);
    i = sl->current % n;

    if (i < sl->nseeds) {
        (void) ngx_cpystrn((u_char *) sl->origin,
                           (u_char *) sl->seeds[i].host, sizeof(sl->origin));
        sl->origin_port = sl->seeds[i].port;

    } else {
        (void) rl_core_cluster_map_node(sl->map, (uint32_t) (i - sl->nseeds),
                                        &node);
        (void) ngx_cpystrn((u_char *) sl->origin, (u_char *) node.host,
                           sizeof(sl->origin));
        sl->origin_port = node.port;
    }

    sl->fetching = 1;
    sl->started = ngx_current_msec;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sl->log, 0,
                   "rate_limit: cluster: reading the slot map from %s:%d",
                   sl->origin, sl->origin_port);

    ac = redisAsyncConnect(sl->origin, sl->origin_port);

    if (ac == NULL || ac->err) {
        ngx_http_rate_limit_log_error(&sl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_CONNECT,
                                      sl->log,
                                      "rate_limit: cannot connect to "
                                      "cluster node %s:%d: %s", sl->origin,
                                      sl->origin_port,
                                      ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_rate_limit_slots_fetch_failed();
        return;
    }

    if (sl->ssl_ctx
        && ngx_http_rate_limit_tls_start(ac, sl->ssl_ctx, &sl->tls_name,
                                         sl->log)
           != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_slots_fetch_failed();
        return;
    }

    ngx_http_rate_limit_reader_attach(&sl->reader, ac);

    if (ngx_http_rate_limit_hiredis_attach(ac, sl->log,
                                         ngx_http_rate_limit_slots_read_done,
                                         sl)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_rate_limit_slots_fetch_failed();
        return;
    }

    ac->data = sl;
    sl->ac = ac;

    redisAsyncSetDisconnectCallback(ac,
                                  ngx_http_rate_limit_slots_on_disconnect);
    redisAsyncSetConnectCallback(ac, ngx_http_rate_limit_slots_on_connect);

    ngx_add_timer(&sl->connect, sl->connect_timeout);

    argc = ngx_http_rate_limit_link_auth(&sl->username, &sl->password,
                                         argv, argvlen);
    if (argc) {
        (void) redisAsyncCommandArgv(ac, ngx_http_rate_limit_slots_on_auth,
                          (void *) &ngx_http_rate_limit_slots_step_auth,
                          argc, argv, argvlen);
    }

    argv[0] = "CLUSTER";
    argvlen[0] = 7;
    argv[1] = "SHARDS";
    argvlen[1] = 6;

    ngx_http_rate_limit_slots_ask(&ngx_http_rate_limit_slots_step_shards, 2,
                                  argv, argvlen);
}


static void
ngx_http_rate_limit_slots_ask(const ngx_http_rate_limit_slots_step_t *step,
    int argc, const char **argv, const size_t *argvlen)
{
    (void) redisAsyncCommandArgv(ngx_http_rate_limit_slots->ac,
                                 ngx_http_rate_limit_slots_on_map,
                                 (void *) step, argc, argv, argvlen);
}


/*
 * That address failed: the next one at once, until the round is done;
 * with no map yet, a new round after the link's backoff.  Parts held for
 * the map are errors now.
 */

static void
ngx_http_rate_limit_slots_fetch_failed(void)
{
    ngx_uint_t                    n;
    ngx_msec_t                    delay;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

    ngx_http_rate_limit_slots_close();

    sl->fetching = 0;

    if (sl->exiting) {
        return;
    }

    n = sl->nseeds + rl_core_cluster_map_node_count(sl->map);

    sl->current++;

    if (++sl->tried < n) {
        ngx_http_rate_limit_slots_fetch();
        return;
    }

    sl->tried = 0;

    sl->release();

    if (sl->map == NULL && !sl->timer.timer_set) {
        delay = (ngx_msec_t) rl_core_backoff_ms((unsigned) ++sl->rounds);
        ngx_add_timer(&sl->timer, ngx_max(delay, 1));
    }
}


/* The fetch's connection goes, and its timer. */

static void
ngx_http_rate_limit_slots_close(void)
{
    redisAsyncContext            *ac;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

    if (sl->connect.timer_set) {
        ngx_del_timer(&sl->connect);
    }

    ac = sl->ac;

    if (ac) {
        /* deferred by hiredis inside one of its callbacks */
        sl->ac = NULL;
        redisAsyncFree(ac);
    }
}


static void
ngx_http_rate_limit_slots_on_connect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_slots_t  *sl = ac->data;

    if (sl->ac != ac || status == REDIS_OK) {
        return;
    }

    ngx_http_rate_limit_log_error(&sl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT, sl->log,
                                  "rate_limit: cannot connect to cluster "
                                  "node %s:%d: %s", sl->origin,
                                  sl->origin_port, ac->errstr);

    /* hiredis frees the context right after this returns */

    sl->ac = NULL;
    ngx_http_rate_limit_slots_fetch_failed();
}


static void
ngx_http_rate_limit_slots_on_disconnect(const redisAsyncContext *ac,
    int status)
{
    ngx_http_rate_limit_slots_t  *sl = ac->data;

    const char  *why;

    if (sl->ac != ac) {
        return;
    }

    why = ngx_http_rate_limit_reader_refusal(&sl->reader);

    ngx_http_rate_limit_log_error(&sl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CLOSED, sl->log,
                                  "rate_limit: cluster node %s:%d closed "
                                  "the connection: %s", sl->origin,
                                  sl->origin_port, why ? why : ac->errstr);

    sl->ac = NULL;
    ngx_http_rate_limit_slots_fetch_failed();
}


static void
ngx_http_rate_limit_slots_on_auth(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                   *r = reply;
    ngx_http_rate_limit_slots_t  *sl = ac->data;

    if (r == NULL || sl->ac != ac || r->type != REDIS_REPLY_ERROR) {
        return;
    }

    ngx_http_rate_limit_log_error(&sl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE, sl->log,
                                  "rate_limit: cluster node %s:%d refused "
                                  "AUTH: %*s", sl->origin, sl->origin_port,
                                  (size_t) ngx_min(r->len, 256), r->str);

    ngx_http_rate_limit_slots_fetch_failed();
}


static void
ngx_http_rate_limit_slots_on_map(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                              *r = reply;
    ngx_http_rate_limit_slots_t             *sl = ac->data;
    const ngx_http_rate_limit_slots_step_t  *step = privdata;

    char                            err[256];
    size_t                          argvlen[2], n;
    ngx_int_t                       rc;
    const char                     *argv[2];
    rl_core_status_e                st;
    rl_core_cluster_map_t          *map;
    rl_core_cluster_range_t        *ranges;

    if (r == NULL || sl->ac != ac) {
        return;
    }

    ranges = NULL;
    map = NULL;
    rc = NGX_ERROR;

    if (step == &ngx_http_rate_limit_slots_step_shards
        && (r->type == REDIS_REPLY_ERROR
            || (rc = ngx_http_rate_limit_slots_shards(r, &ranges, &n))
               != NGX_OK))
    {
        /* a server older than 7.0, or a SHARDS reply not understood */

        ngx_free(ranges);

        argv[0] = "CLUSTER";
        argvlen[0] = 7;
        argv[1] = "SLOTS";
        argvlen[1] = 5;

        ngx_http_rate_limit_slots_ask(&ngx_http_rate_limit_slots_step_slots,
                                      2, argv, argvlen);
        return;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        ngx_http_rate_limit_log_error(&sl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      sl->log,
                                      "rate_limit: cluster node %s:%d "
                                      "refused %s: %*s", sl->origin,
                                      sl->origin_port, step->name,
                                      (size_t) ngx_min(r->len, 256), r->str);
        ngx_http_rate_limit_slots_fetch_failed();
        return;
    }

    if (step == &ngx_http_rate_limit_slots_step_slots) {
        rc = ngx_http_rate_limit_slots_slots(r, &ranges, &n);
    }

    if (rc == NGX_OK) {
        st = rl_core_cluster_map_create(ranges, n, sl->origin,
                                        ngx_strlen(sl->origin), &map, err,
                                        sizeof(err));
        if (st == RL_CORE_OK && rl_core_cluster_map_node_count(map) == 0) {
            /* a node that has not joined: another one may know better */
            (void) ngx_cpystrn((u_char *) err, (u_char *) "no slot assigned",
                               sizeof(err));
            st = RL_CORE_EINVAL;
        }

        if (st != RL_CORE_OK) {
            ngx_http_rate_limit_log_error(&sl->throttle,
                                          NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                          sl->log,
                                          "rate_limit: cluster node %s:%d "
                                          "sent a slot map that is not "
                                          "used: %s", sl->origin,
                                          sl->origin_port, err);
            rc = NGX_ERROR;
        }

    } else {
        ngx_http_rate_limit_log_error(&sl->throttle,
                                      NGX_HTTP_RATE_LIMIT_LOG_HANDSHAKE,
                                      sl->log,
                                      "rate_limit: cluster node %s:%d "
                                      "answered %s with a reply of an "
                                      "unexpected shape", sl->origin,
                                      sl->origin_port, step->name);
    }

    ngx_free(ranges);

    if (rc != NGX_OK || ngx_http_rate_limit_slots_apply(map) != NGX_OK) {
        if (map) {
            rl_core_cluster_map_destroy(map);
        }

        ngx_http_rate_limit_slots_fetch_failed();
        return;
    }

    ngx_http_rate_limit_slots_close();

    sl->fetching = 0;
    sl->tried = 0;
    sl->rounds = 0;

    sl->release();
}


/* A string element of a reply is s. */

#define ngx_http_rate_limit_slots_is(e, s)                                    \
    ((e)->type == REDIS_REPLY_STRING && (e)->len == sizeof(s) - 1             \
     && ngx_strncmp((e)->str, s, sizeof(s) - 1) == 0)


/*
 * CLUSTER SHARDS: [["slots", [s1, e1, ...], "nodes", [[key, value, ...],
 * ...]], ...]; each shard's ranges go to its master, at its "ip" and
 * "port" ("tls-port" with TLS).
 */

static ngx_int_t
ngx_http_rate_limit_slots_shards(redisReply *r,
    rl_core_cluster_range_t **ranges, size_t *n)
{
    size_t                        i, k, total;
    redisReply                   *shard, *slots, *nodes, *ip, *port;
    rl_core_cluster_range_t      *rg;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

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
            if (ngx_http_rate_limit_slots_is(shard->element[k], "slots")
                && shard->element[k + 1]->type == REDIS_REPLY_ARRAY)
            {
                total += shard->element[k + 1]->elements / 2;
            }
        }
    }

    *n = 0;
    *ranges = ngx_alloc((total + 1) * sizeof(rl_core_cluster_range_t),
                        sl->log);
    if (*ranges == NULL) {
        return NGX_ERROR;
    }

    rg = *ranges;

    for (i = 0; i < r->elements; i++) {
        shard = r->element[i];
        slots = NULL;
        nodes = NULL;

        for (k = 0; k + 1 < shard->elements; k += 2) {
            if (ngx_http_rate_limit_slots_is(shard->element[k], "slots")) {
                slots = shard->element[k + 1];

            } else if (ngx_http_rate_limit_slots_is(shard->element[k],
                                                    "nodes"))
            {
                nodes = shard->element[k + 1];
            }
        }

        if (slots == NULL || nodes == NULL
            || slots->type != REDIS_REPLY_ARRAY
            || nodes->type != REDIS_REPLY_ARRAY)
        {
            return NGX_ERROR;
        }

        if (ngx_http_rate_limit_slots_master(nodes, &ip, &port) != NGX_OK) {
            return NGX_ERROR;
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


/*
 * A shard's master from its nodes, [[key, value, ...], ...]: the node
 * whose "role" is "master", one whose "health" is "online" first (a
 * failed master may be listed beside the replica promoted in its place).
 * *ip NULL when the shard has no master.
 */

static ngx_int_t
ngx_http_rate_limit_slots_master(redisReply *nodes, redisReply **ip,
    redisReply **port)
{
    size_t                        j, k;
    redisReply                   *nd, *e, *v, *nip, *nport, *tport;
    ngx_uint_t                    master, online;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

    *ip = NULL;
    *port = NULL;

    for (j = 0; j < nodes->elements; j++) {
        nd = nodes->element[j];

        if (nd->type != REDIS_REPLY_ARRAY) {
            return NGX_ERROR;
        }

        nip = NULL;
        nport = NULL;
        tport = NULL;
        master = 0;
        online = 0;

        for (k = 0; k + 1 < nd->elements; k += 2) {
            e = nd->element[k];
            v = nd->element[k + 1];

            if (ngx_http_rate_limit_slots_is(e, "role")) {
                master = ngx_http_rate_limit_slots_is(v, "master");

            } else if (ngx_http_rate_limit_slots_is(e, "health")) {
                online = ngx_http_rate_limit_slots_is(v, "online");

            } else if (ngx_http_rate_limit_slots_is(e, "ip")
                       && v->type == REDIS_REPLY_STRING)
            {
                nip = v;

            } else if (ngx_http_rate_limit_slots_is(e, "port")
                       && v->type == REDIS_REPLY_INTEGER)
            {
                nport = v;

            } else if (ngx_http_rate_limit_slots_is(e, "tls-port")
                       && v->type == REDIS_REPLY_INTEGER)
            {
                tport = v;
            }
        }

        if (sl->ssl_ctx && tport) {
            nport = tport;
        }

        if (!master || nip == NULL || nport == NULL
            || (*ip != NULL && !online))
        {
            continue;
        }

        *ip = nip;
        *port = nport;

        if (online) {
            break;
        }
    }

    return NGX_OK;
}


/* CLUSTER SLOTS: [[start, end, [host, port, ...], replicas ...], ...] */

static ngx_int_t
ngx_http_rate_limit_slots_slots(redisReply *r,
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
                        ngx_http_rate_limit_slots->log);
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
ngx_http_rate_limit_slots_apply(rl_core_cluster_map_t *map)
{
    u_char                       *used;
    uint32_t                      i, count;
    ngx_uint_t                   *nodes, n, k;
    rl_core_cluster_node_t        node;
    ngx_http_rate_limit_slots_t  *sl;

    sl = ngx_http_rate_limit_slots;

    count = rl_core_cluster_map_node_count(map);

    nodes = ngx_alloc((count + 1) * sizeof(ngx_uint_t), sl->log);
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

    if (sl->map) {
        rl_core_cluster_map_destroy(sl->map);
    }

    ngx_free(sl->nodes);

    sl->map = map;
    sl->nodes = nodes;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sl->log, 0,
                   "rate_limit: cluster: slot map from %s:%d, %uD masters",
                   sl->origin, sl->origin_port, count);

    /* what no longer serves a slot */

    n = ngx_http_rate_limit_link_nodes();

    used = ngx_calloc(n, sl->log);
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


static void
ngx_http_rate_limit_slots_read_done(void *data)
{
    ngx_http_rate_limit_slots_t  *sl = data;

    if (sl->ac == NULL
        || ngx_http_rate_limit_reader_check(&sl->reader) == NGX_OK)
    {
        return;
    }

    ngx_http_rate_limit_log_error(&sl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CLOSED, sl->log,
                                  "rate_limit: cluster node %s:%d sent %s",
                                  sl->origin, sl->origin_port,
                                  ngx_http_rate_limit_reader_refusal(
                                                               &sl->reader));

    ngx_http_rate_limit_slots_fetch_failed();
}


static void
ngx_http_rate_limit_slots_timer_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_slots_t  *sl = ev->data;

    if (sl->exiting || sl->fetching) {
        return;
    }

    sl->tried = 0;
    ngx_http_rate_limit_slots_fetch();
}


static void
ngx_http_rate_limit_slots_connect_handler(ngx_event_t *ev)
{
    ngx_http_rate_limit_slots_t  *sl = ev->data;

    ngx_http_rate_limit_log_error(&sl->throttle,
                                  NGX_HTTP_RATE_LIMIT_LOG_CONNECT, sl->log,
                                  "rate_limit: cluster node %s:%d did not "
                                  "send the slot map within %M ms",
                                  sl->origin, sl->origin_port,
                                  sl->connect_timeout);

    ngx_http_rate_limit_slots_fetch_failed();
}
