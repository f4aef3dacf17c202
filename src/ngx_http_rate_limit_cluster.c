
/*
 * ngx_http_rate_limit_module: mode=cluster's routing (see the header).
 *
 * A decision (the caller's op, "parent") is split into parts, one per
 * slot group, each an op of its own with its own command, sent to the
 * master of its slot.  A part that finds no master while a fetch is on
 * its way is held until the map comes.  When every part is done the
 * core's rl_core_cluster_outcome() says what the request is and which
 * groups consumed and are to be given back; the parent gets each
 * answered zone's values.  Parts outlive a parent that is cancelled (a
 * written command must still be read, and its refund may be due); the
 * split ("req") is freed with its last part.
 *
 * A set nobody waits for (charges, lease renewals and releases, see
 * link_send_set) is grouped by slot the same way: one caller's op per
 * group, each carried by a part of no split (req NULL) that is routed and
 * redirected as a decision's part is, its answer handed to the caller's
 * op.  Everything this file allocates is ngx_alloc'd and freed here or by
 * the link.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_rate_limit_cluster.h"
#include "ngx_http_rate_limit_cluster_map.h"
#include "ngx_http_rate_limit_log.h"


/* redirects one part follows before it is an error */
#define NGX_HTTP_RATE_LIMIT_CLUSTER_REDIRECTS  5

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
    ngx_http_rate_limit_req_t          *req;    /* NULL: of a set */
    ngx_http_rate_limit_op_t           *caller; /* a set's: answered */
    ngx_queue_t                         fired;  /* a set's, for exit */
    ngx_uint_t                          group;
    uint16_t                            slot;
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
    ngx_log_t                          *log;
    ngx_queue_t                         held;   /* parts */
    ngx_queue_t                         reqs;
    ngx_queue_t                         fired;  /* parts of sets */
    ngx_http_rate_limit_throttle_t      throttle;
} ngx_http_rate_limit_cluster_t;


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
static ngx_int_t ngx_http_rate_limit_cluster_fire(
    ngx_http_rate_limit_op_t *caller, uint16_t slot, ngx_log_t *log);
static void ngx_http_rate_limit_cluster_on_fired(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text);
static void ngx_http_rate_limit_cluster_answer_fired(
    ngx_http_rate_limit_part_t *part, ngx_http_rate_limit_answer_e answer,
    ngx_str_t *text);

static void ngx_http_rate_limit_cluster_release(void);


static ngx_http_rate_limit_cluster_t  *ngx_http_rate_limit_cluster;


ngx_int_t
ngx_http_rate_limit_cluster_init(ngx_cycle_t *cycle,
    ngx_http_rate_limit_redis_conf_t *rcf)
{
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_calloc(sizeof(ngx_http_rate_limit_cluster_t), cycle->log);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    ngx_http_rate_limit_cluster = cl;

    cl->log = cycle->log;

    ngx_queue_init(&cl->held);
    ngx_queue_init(&cl->reqs);
    ngx_queue_init(&cl->fired);

    return ngx_http_rate_limit_slots_init(cycle, rcf,
                                          ngx_http_rate_limit_cluster_release);
}


/*
 * Before the link frees its ops: the parts it holds are its to free; the
 * splits (with the parts held here) and the map are freed now.
 */

void
ngx_http_rate_limit_cluster_exit(void)
{
    ngx_queue_t                    *q;
    ngx_http_rate_limit_req_t      *req;
    ngx_http_rate_limit_part_t     *part;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;
    if (cl == NULL) {
        return;
    }

    ngx_http_rate_limit_slots_exit();

    while (!ngx_queue_empty(&cl->reqs)) {
        q = ngx_queue_head(&cl->reqs);
        req = ngx_queue_data(q, ngx_http_rate_limit_req_t, queue);
        ngx_http_rate_limit_cluster_free(req);
    }

    /* a set's part that is out is the link's; its caller's op is not */

    while (!ngx_queue_empty(&cl->fired)) {
        q = ngx_queue_head(&cl->fired);
        ngx_queue_remove(q);
        part = ngx_queue_data(q, ngx_http_rate_limit_part_t, fired);
        ngx_free(part->caller);

        if (part->state == NGX_HTTP_RATE_LIMIT_PART_HELD) {
            ngx_queue_remove(&part->held);
            ngx_free(part);
        }
    }

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
    uint16_t                       *slots;
    ngx_uint_t                      i;
    uint16_t                        stack[NGX_HTTP_RATE_LIMIT_STACK_ZONES];
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

        if (rl_core_request_size(zreq, grp->count, op->lease_len, &bytes)
            != RL_CORE_OK)
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
        part->slot = grp->slot;

        part->op.handler = ngx_http_rate_limit_cluster_on_part;
        part->op.data = part;
        part->op.nvalues = grp->count * NGX_HTTP_RATE_LIMIT_V;
        part->op.values = (int64_t *) (part + 1);
        part->op.cmd = (char *) (part->op.values + part->op.nvalues);

        if (rl_core_request_build(zreq, grp->count, RL_CORE_MODE_CHECK,
                                  op->lease, op->lease_len, op->now_ms,
                                  part->op.cmd, bytes, &part->op.len)
            != RL_CORE_OK)
        {
            goto failed;
        }

        if (rbytes == 0) {
            continue;
        }

        part->refund = part->op.cmd + bytes;

        if (rl_core_request_build(zreq, grp->count, RL_CORE_MODE_REFUND,
                                  op->lease, op->lease_len, op->now_ms,
                                  part->refund, rbytes, &part->refund_len)
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
    ngx_int_t                       rc;
    ngx_str_t                       text;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    rc = ngx_http_rate_limit_slots_node(part->slot, 1, &part->node);

    if (rc == NGX_AGAIN) {
        /* a map is on its way */
        ngx_queue_insert_tail(&cl->held, &part->held);
        part->state = NGX_HTTP_RATE_LIMIT_PART_HELD;
        return;
    }

    if (rc != NGX_OK) {
        ngx_str_set(&text, "no master serves the slot");
        ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_NOT_RUN, &text);
        return;
    }

    part->op.asking = 0;

    rc = ngx_http_rate_limit_link_send_to(&part->op, part->node, cl->log);

    if (rc == NGX_OK) {
        part->state = NGX_HTTP_RATE_LIMIT_PART_OUT;
        return;
    }

    /* a master that is down may have been replaced */

    if (rc == NGX_DECLINED) {
        ngx_http_rate_limit_slots_refresh();
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
        ngx_http_rate_limit_slots_refresh();
        break;

    case RL_CORE_REDIRECT_ASK:
        break;

    case RL_CORE_REDIRECT_CLUSTERDOWN:
        ngx_http_rate_limit_slots_refresh();
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

    if (req == NULL) {
        /* a set's part that could not go: an error of its caller's op */
        ngx_http_rate_limit_cluster_answer_fired(part,
                                           NGX_HTTP_RATE_LIMIT_ANSWER_ERROR,
                                           text);
        return;
    }

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


/* The parts held for a map: routed now, or errors if there is none. */

static void
ngx_http_rate_limit_cluster_release(void)
{
    ngx_uint_t                      node;
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

        if (ngx_http_rate_limit_slots_node(part->slot, 0, &node) != NGX_OK)
        {
            ngx_http_rate_limit_cluster_done(part, RL_CORE_GROUP_NOT_RUN,
                                             &text);
            continue;
        }

        ngx_http_rate_limit_cluster_route(part);
    }
}


/*
 * A set nobody waits for, by slot: the items grouped as a decision's
 * zones are, one op of the caller's build per group, each routed as a
 * part.  What cannot go is answered to its op as an error, at once or
 * when the map comes; NGX_ERROR only when ops could not be made.
 */

ngx_int_t
ngx_http_rate_limit_cluster_send_set(ngx_http_rate_limit_set_t *set,
    ngx_log_t *log)
{
    size_t                     n, g, i, ngroups, *order, *items;
    u_char                    *p;
    uint16_t                  *slots;
    ngx_int_t                  rc;
    rl_core_cluster_group_t   *groups;
    ngx_http_rate_limit_op_t  *op;

    n = set->n;

    if (ngx_http_rate_limit_cluster == NULL || n == 0) {
        return NGX_DECLINED;
    }

    p = ngx_alloc(n * (2 * sizeof(size_t) + sizeof(rl_core_cluster_group_t)
                       + sizeof(uint16_t)), log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    groups = (rl_core_cluster_group_t *) p;
    order = (size_t *) (groups + n);
    items = order + n;
    slots = (uint16_t *) (items + n);

    rc = NGX_ERROR;

    for (i = 0; i < n; i++) {
        if (rl_core_zone_slot(set->zone(set->data, i), &slots[i])
            != RL_CORE_OK)
        {
            goto done;
        }
    }

    if (rl_core_cluster_group(slots, n, order, groups, &ngroups)
        != RL_CORE_OK)
    {
        goto done;
    }

    rc = NGX_OK;

    for (g = 0; g < ngroups; g++) {
        for (i = 0; i < groups[g].count; i++) {
            items[i] = order[groups[g].first + i];
        }

        op = set->build(set->data, items, groups[g].count, log);

        if (op == NULL
            || ngx_http_rate_limit_cluster_fire(op, groups[g].slot, log)
               != NGX_OK)
        {
            ngx_free(op);
            rc = NGX_ERROR;
        }
    }

done:

    ngx_free(p);
    return rc;
}


/* The caller's op carried by a part of its own to its slot's master. */

static ngx_int_t
ngx_http_rate_limit_cluster_fire(ngx_http_rate_limit_op_t *caller,
    uint16_t slot, ngx_log_t *log)
{
    ngx_http_rate_limit_part_t     *part;
    ngx_http_rate_limit_cluster_t  *cl;

    cl = ngx_http_rate_limit_cluster;

    part = ngx_calloc(sizeof(ngx_http_rate_limit_part_t), log);
    if (part == NULL) {
        return NGX_ERROR;
    }

    /* the caller's command and room for its reply, borrowed */

    part->caller = caller;
    part->slot = slot;
    part->op.handler = ngx_http_rate_limit_cluster_on_fired;
    part->op.data = part;
    part->op.cmd = caller->cmd;
    part->op.len = caller->len;
    part->op.values = caller->values;
    part->op.nvalues = caller->nvalues;

    ngx_queue_insert_tail(&cl->fired, &part->fired);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "rate_limit: op %p to slot %d as op %p", caller,
                   (int) slot, &part->op);

    ngx_http_rate_limit_cluster_route(part);

    return NGX_OK;
}


static void
ngx_http_rate_limit_cluster_on_fired(ngx_http_rate_limit_op_t *op,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    ngx_http_rate_limit_part_t  *part = op->data;

    if (answer == NGX_HTTP_RATE_LIMIT_ANSWER_ERROR
        && ngx_http_rate_limit_cluster_redirect(part, text) == NGX_OK)
    {
        return;
    }

    ngx_http_rate_limit_cluster_answer_fired(part, answer, text);
}


static void
ngx_http_rate_limit_cluster_answer_fired(ngx_http_rate_limit_part_t *part,
    ngx_http_rate_limit_answer_e answer, ngx_str_t *text)
{
    ngx_http_rate_limit_op_t  *caller;

    caller = part->caller;

    ngx_queue_remove(&part->fired);
    ngx_free(part);

    /* the values are already in the caller's op: its handler frees it */

    caller->handler(caller, answer, text);
}
