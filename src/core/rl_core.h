/*
 * rl_core.h: the C ABI of the rate limiter's C++ core.
 *
 * This is the only core header the NGINX glue includes (the unit tests
 * add rl_core_test.h, which declares what only they use).  It is plain C99:
 * strings are pointer + length (an ngx_str_t passes without a copy), output
 * structs are allocated by the caller, and every function is noexcept on the
 * C++ side: nothing unwinds into NGINX.  The core never logs, never uses
 * NGINX pools and never calls back.
 *
 * Units: periods in seconds, times and durations in milliseconds unless a
 * name says otherwise (_us: microseconds).
 */

#ifndef RL_CORE_H
#define RL_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif


/*
 * The C++ definitions are noexcept (they catch everything), and C++
 * callers see it; to C this is nothing.
 */
#ifdef __cplusplus
#define RL_CORE_NOEXCEPT  noexcept
#else
#define RL_CORE_NOEXCEPT
#endif


typedef enum {
    RL_CORE_OK = 0,
    RL_CORE_EINVAL,             /* malformed input; err says what */
    RL_CORE_ERANGE,             /* out of bounds; err names the bound */
    RL_CORE_ENOMEM,
    RL_CORE_EREPLY              /* a Redis reply of the wrong shape */
} rl_core_status_e;


typedef enum {
    RL_CORE_ALG_GCRA = 0,
    RL_CORE_ALG_TOKEN_BUCKET,
    RL_CORE_ALG_FIXED_WINDOW,
    RL_CORE_ALG_SLIDING_WINDOW,
    RL_CORE_ALG_SLIDING_LOG,
    RL_CORE_ALG_CONCURRENCY     /* concurrency=N: count = N, period_s = the
                                   lease; never named by algorithm= */
} rl_core_algorithm_e;

#define RL_CORE_ALG_COUNT  6

/* concurrency=N and lease= bounds (lease in seconds; lease/3 >= 1 ms). */
#define RL_CORE_CONCURRENCY_MAX    1000000
#define RL_CORE_LEASE_MIN_S        1
#define RL_CORE_LEASE_MAX_S        3600


/* Longest client key used as is; longer ones become "#" + SHA-1 hex. */
#define RL_CORE_CLIENT_KEY_MAX     128
/* Room for a hashed client key: "#" and 40 hex digits. */
#define RL_CORE_HASHED_KEY_LEN     41
/* Most KEYS one zone passes to the script. */
#define RL_CORE_ZONE_KEYS_MAX      4
#define RL_CORE_ZONE_NAME_MAX      64
#define RL_CORE_PREFIX_MAX         64
/* Largest deny cache per zone per worker, in keys (cache=). */
#define RL_CORE_CACHE_MAX          1000000
/* Largest burst= (and N of a rate). */
#define RL_CORE_BURST_MAX          1000000000


/*
 * A zone's limit, as configured.  Filled by the parsers below and completed
 * by rl_core_check_limit().
 */
/*
 * The periods of "Nr/w" and "Nr/M".  No other rate has them, so they name
 * the calendar: fixed_window windows of a week begin on Monday 00:00 UTC,
 * and those of RL_CORE_PERIOD_MONTH are calendar months in UTC (only
 * fixed_window takes M), whose nominal length this is (the policy's w).
 */
#define RL_CORE_PERIOD_WEEK        604800
#define RL_CORE_PERIOD_MONTH       2592000

typedef struct {
    uint64_t             count;         /* N requests ... */
    uint64_t             period_s;      /* ... per P seconds: 1, 60, 3600,
                                           86400, RL_CORE_PERIOD_WEEK or
                                           RL_CORE_PERIOD_MONTH */
    uint64_t             burst;         /* meaning depends on the algorithm */
    int                  burst_set;     /* burst= was given */
    rl_core_algorithm_e  algorithm;
    uint64_t             delay;         /* gcra: delay=, 0..burst (the
                                           glue checks it); others 0 */
    int                  delay_set;     /* delay= was given; else the
                                           script gets burst: no wait */
} rl_core_limit_t;


/*
 * Parses "Nr/s", "Nr/m", "Nr/h", "Nr/d", "Nr/w" or "Nr/M" (N per 1, 60,
 * 3600, 86400 or 604800 s, or per calendar month).  RL_CORE_EINVAL when
 * malformed, RL_CORE_ERANGE when N is 0 or too large for any algorithm.
 */
rl_core_status_e rl_core_parse_rate(const char *s, size_t len,
    uint64_t *count, uint64_t *period_s) RL_CORE_NOEXCEPT;

/*
 * "gcra", "token_bucket", "fixed_window", "sliding_window", "sliding_log"
 * (not "concurrency": a zone becomes one by concurrency=).
 */
rl_core_status_e rl_core_parse_algorithm(const char *s, size_t len,
    rl_core_algorithm_e *algorithm) RL_CORE_NOEXCEPT;

/*
 * Validates a whole limit and fills the default burst (gcra: 0,
 * token_bucket: N).  A concurrency limit: count 1..RL_CORE_CONCURRENCY_MAX,
 * period_s (the lease) RL_CORE_LEASE_MIN_S..RL_CORE_LEASE_MAX_S, no burst.
 * On failure writes a NUL-terminated message for "nginx -t" into err (at
 * most errlen bytes, NGINX's wording, for example "\"burst\" is not
 * allowed with algorithm=fixed_window" or a message that names the
 * numeric bound it enforces) and returns RL_CORE_EINVAL or RL_CORE_ERANGE.
 */
rl_core_status_e rl_core_check_limit(rl_core_limit_t *limit, char *err,
    size_t errlen) RL_CORE_NOEXCEPT;

/*
 * The most units a fresh key admits at once (the reply's limit): gcra
 * burst + 1, token_bucket its capacity, the others N; the largest cost of
 * a rate_limit.  For a limit rl_core_check_limit() accepted.
 */
uint64_t rl_core_limit_units(const rl_core_limit_t *limit) RL_CORE_NOEXCEPT;

/* 1 if 1-64 bytes of A-Za-z0-9_- , else 0. */
int rl_core_valid_zone_name(const char *s, size_t len) RL_CORE_NOEXCEPT;

/* 1 if 1-64 bytes with no '{', '}', NUL, space or control byte, else 0. */
int rl_core_valid_prefix(const char *s, size_t len) RL_CORE_NOEXCEPT;


/* Largest cost of a zone request: Lua numbers are exact up to 2^53. */
#define RL_CORE_COST_MAX           9007199254740992ULL
/* The cost of a plain request: one unit. */
#define RL_CORE_COST_DEFAULT       1


/*
 * One zone of one request, as the script command needs it.  The strings are
 * borrowed for the duration of the call.  cost has no implicit default:
 * set it (RL_CORE_COST_DEFAULT for one request; 0 checks without
 * consuming, passing iff one unit could).
 */
typedef struct {
    const char             *prefix;
    size_t                  prefix_len;
    const char             *zone;
    size_t                  zone_len;
    const char             *key;        /* the client key, any bytes */
    size_t                  key_len;    /* > 0 */
    const rl_core_limit_t  *limit;      /* checked by rl_core_check_limit */
    uint64_t                cost;       /* units, 0..RL_CORE_COST_MAX */
} rl_core_zone_request_t;


/*
 * What a script call does (ARGV[2] of lua/multi.lua, where each mode's
 * reply is documented).  check decides a request (the reply below);
 * charge takes each zone's cost unconditionally, possibly into debt
 * (rate_limit_charge); refund gives back what a check took (cluster);
 * release and renew end and extend concurrency leases.
 */
typedef enum {
    RL_CORE_MODE_CHECK = 0,
    RL_CORE_MODE_CHARGE,
    RL_CORE_MODE_REFUND,
    RL_CORE_MODE_RELEASE,
    RL_CORE_MODE_RENEW
} rl_core_mode_e;

#define RL_CORE_MODE_COUNT  5

/* Longest lease member (ARGV[3]). */
#define RL_CORE_LEASE_MAX   128


/*
 * The script command for these zones (script ABI v2),
 *
 *   EVALSHA sha numkeys KEY... now_us mode lease Z
 *           (alg N period_us burst cost nkeys delay)*Z
 *
 * as one RESP array (what hiredis would format from an argv), ready for
 * redisAsyncFormattedCommand(): every value is its own bulk string, so no
 * byte of a client key can change the command.  sha is the embedded
 * script's SHA-1 (rl_core_script_sha1()); now_us is "0" (the script takes
 * Redis TIME); mode is the mode's name; lease is the lease member
 * (lease_len 0 for ""; lease may be NULL then).  Keys are
 * PREFIX:{ZONE:CLIENT}:TAG[:WINDOW], the braces
 * being the Redis Cluster hash tag.  CLIENT is the client key itself when
 * it has at most RL_CORE_CLIENT_KEY_MAX bytes and does not begin with '#',
 * else "#" and the SHA-1 of the key in lowercase hex (so no client can
 * name another's hashed key).  With W = floor(now_ms / (period_s * 1000))
 * from the caller's wall clock (fixed_window: weeks counted from Monday
 * 1970-01-05, months as (year - 1970) * 12 + month - 1, in UTC),
 * fixed_window passes the windows W-1, W, W+1 and sliding_window W-2 ..
 * W+1, in that order; the script decides with Redis TIME which of them
 * are current.  delay is gcra's delay= (the burst when it is not set, or
 * more than the burst: nothing waits) and 0 for the other algorithms.
 *
 * rl_core_request_size() bounds the size at any clock (window numbers
 * and lengths counted at their widest); rl_core_request_build() writes
 * the command into buf (bytes long) and sets *len.  RL_CORE_EINVAL when n
 * is 0, a key is empty, a limit is NULL or has an unknown algorithm, a
 * prefix or zone name is too long, a cost is above RL_CORE_COST_MAX, the
 * mode is unknown, the lease is longer than RL_CORE_LEASE_MAX, or bytes
 * is short (nothing is written then).
 */
rl_core_status_e rl_core_request_size(const rl_core_zone_request_t *zones,
    size_t n, size_t lease_len, size_t *bytes) RL_CORE_NOEXCEPT;
rl_core_status_e rl_core_request_build(const rl_core_zone_request_t *zones,
    size_t n, rl_core_mode_e mode, const char *lease, size_t lease_len,
    uint64_t now_ms, char *buf, size_t bytes, size_t *len)
    RL_CORE_NOEXCEPT;


/*
 * Leases of concurrency zones, renewed or released many at once (modes
 * renew and release of lua/multi.lua):
 *   EVALSHA sha L KEY... 0 mode "" L
 *           (concurrency MEMBER lease_us 0 0 1 0)*L
 * zone is the lease's zone request as its check sent it (a concurrency
 * limit: lease_us is its period), member the request's lease member (1 to
 * RL_CORE_LEASE_MAX bytes).  rl_core_lease_size() sets *bytes to the exact
 * size; rl_core_lease_build() writes the command (RL_CORE_EINVAL for n 0,
 * a zone that is not a concurrency zone or cannot be sent, a bad member,
 * a mode but renew and release, or bytes short).
 */
typedef struct {
    const rl_core_zone_request_t  *zone;
    const char                    *member;
    size_t                         member_len;
} rl_core_lease_t;

rl_core_status_e rl_core_lease_size(const rl_core_lease_t *leases, size_t n,
    size_t *bytes) RL_CORE_NOEXCEPT;
rl_core_status_e rl_core_lease_build(const rl_core_lease_t *leases, size_t n,
    rl_core_mode_e mode, char *buf, size_t bytes, size_t *len)
    RL_CORE_NOEXCEPT;


/* The embedded multi-zone script and its SHA-1 (40 lowercase hex). */
const char *rl_core_script(size_t *len) RL_CORE_NOEXCEPT;
const char *rl_core_script_sha1(void) RL_CORE_NOEXCEPT;

/*
 * One zone's answer in mode check: the script's six integers for it, in
 * this order.  Units are the zone's (a request takes its cost).
 */
typedef struct {
    int64_t  allowed;           /* 0 or 1 */
    int64_t  limit;
    int64_t  remaining;         /* may be > 0 when not allowed: the cost
                                   was more than what remains */
    int64_t  reset_after_ms;
    int64_t  retry_after_ms;    /* until one more unit; 0 iff remaining
                                   > 0 */
    int64_t  delay_ms;          /* 0 but for a delayed admission (gcra
                                   delay=): hold the request this long */
} rl_core_zone_result_t;

/* Integers per zone in a check reply. */
#define RL_CORE_REPLY_VALUES  6

/*
 * Checks and decodes the script's reply to a check, whose elements the
 * glue has already found to be integers: exactly RL_CORE_REPLY_VALUES *
 * nzones values, allowed 0 or 1, limit >= 1, 0 <= remaining <= limit,
 * times >= 0, retry_after_ms == 0 iff remaining > 0, delay_ms 0 when not
 * allowed.  RL_CORE_EREPLY on any mismatch (out is then undefined).
 */
rl_core_status_e rl_core_decode_reply(const int64_t *values, size_t n,
    size_t nzones, rl_core_zone_result_t *out) RL_CORE_NOEXCEPT;


typedef enum {
    RL_CORE_REDIS_ERR_REQUEST = 0,  /* fails this request only: BUSY, OOM,
                                       script errors, anything unknown */
    RL_CORE_REDIS_ERR_NOSCRIPT,     /* load the script, send again */
    RL_CORE_REDIS_ERR_RECONNECT     /* NOAUTH, WRONGPASS, READONLY, LOADING,
                                       MASTERDOWN: drop the connection */
} rl_core_redis_error_e;

/* Classifies an error reply by its first word. */
rl_core_redis_error_e rl_core_classify_error(const char *msg, size_t len)
    RL_CORE_NOEXCEPT;


/*
 * The outcome of a request's answered zones.  answered[i] is 0 for zones
 * left out (not asked because of a deny cache hit); at least one is 1.
 */
typedef struct {
    int      rejected;          /* some answered zone has allowed == 0 */
    size_t   tightest;          /* least remaining; ties: a rejecting zone
                                   with the largest wait, then the first */
    int64_t  retry_after_s;     /* rejected: max ceil(retry/1000) over the
                                   rejecting zones, >= 1; else 0 */
} rl_core_verdict_t;

rl_core_status_e rl_core_verdict(const rl_core_zone_result_t *results,
    const unsigned char *answered, size_t n, rl_core_verdict_t *verdict)
    RL_CORE_NOEXCEPT;

/* ceil(ms / 1000) for ms >= 0. */
int64_t rl_core_ceil_seconds(int64_t ms) RL_CORE_NOEXCEPT;


/* One zone as the response fields show it. */
typedef struct {
    const char             *name;
    size_t                  name_len;
    uint64_t                count;
    uint64_t                period_s;   /* 0: a concurrency zone */
    rl_core_zone_result_t   result;
} rl_core_field_zone_t;

/* Bytes a field value needs beyond the names: per zone. */
#define RL_CORE_FIELD_ITEM_MAX  64

/*
 * draft-ietf-httpapi-ratelimit-headers-10 values, one item per zone,
 * joined by ", ":
 *   RateLimit-Policy: "NAME";q=N;w=P
 *   RateLimit:        "NAME";r=REMAINING;t=T   (T = ceil(retry/1000) when
 *                     REMAINING is 0, else ceil(reset/1000))
 * and for a concurrency zone (period_s 0) "NAME";q=N;qu="concurrent-requests"
 * and "NAME";r=FREE (no w, no t).
 * Return the bytes written, or 0 when cap is too small (size it as the sum
 * of name_len + RL_CORE_FIELD_ITEM_MAX).
 */
size_t rl_core_format_policy(char *buf, size_t cap,
    const rl_core_field_zone_t *zones, size_t n) RL_CORE_NOEXCEPT;
size_t rl_core_format_ratelimit(char *buf, size_t cap,
    const rl_core_field_zone_t *zones, size_t n) RL_CORE_NOEXCEPT;


/*
 * The deny cache: a bounded LRU of client keys that Redis rejected, per
 * zone per worker.  Times are the caller's monotonic clock in microseconds
 * (64 bits: no wrap), read when it is called, not a cached event-loop time.
 */
typedef struct rl_core_cache_s  rl_core_cache_t;

/*
 * NULL when capacity is 0 or above RL_CORE_CACHE_MAX, or memory is short.
 * Memory grows with the entries, not the capacity: some 100 to 250 bytes
 * a key (by its length).
 */
rl_core_cache_t *rl_core_cache_create(size_t capacity) RL_CORE_NOEXCEPT;
void rl_core_cache_destroy(rl_core_cache_t *cache) RL_CORE_NOEXCEPT;

/*
 * Remembers that key (the client key as given, any bytes, or its hashed
 * form as it appears in Redis keys: both name one entry) is rejected,
 * from the zone's answer to a command sent at sent_us (a clock read
 * before the command was handed on, never after).  The answer's
 * retry_after_ms is rounded up, so the key is rejected until sent_us +
 * (retry_after_ms - 1) ms, never longer than Redis would reject it; a
 * retry_after_ms of 1 or less remembers nothing.  Evicts the least
 * recently used entry when full.
 * An entry already there is updated and made most recent: it keeps the
 * later end and the later reset time (other requests only push a key's
 * next allowed time later) and takes the new limit.  RL_CORE_ENOMEM
 * leaves the cache as it was; RL_CORE_EINVAL for NULL cache or result.
 * Allocates only for a new key; lookups never allocate.
 */
rl_core_status_e rl_core_cache_insert(rl_core_cache_t *cache,
    const char *key, size_t len, uint64_t sent_us,
    const rl_core_zone_result_t *result) RL_CORE_NOEXCEPT;

/*
 * 1 when key is rejected at now_us: *out is the answer counted from the
 * time left (allowed 0, remaining 0, retry_after_ms = until - now, reset
 * reduced by the time since sent, never below retry; both rounded up to
 * ms).  0 when absent or expired (an expired entry is dropped).
 */
int rl_core_cache_lookup(rl_core_cache_t *cache, const char *key,
    size_t len, uint64_t now_us, rl_core_zone_result_t *out) RL_CORE_NOEXCEPT;

/*
 * Reconnect delay after the attempt-th consecutive failure: 0 for the
 * first (retry at once), then 100 ms doubling up to a 2000 ms cap.  What
 * rl_core_conn_lost() returns; the sentinel client paces its rounds with
 * it too.
 */
uint64_t rl_core_backoff_ms(unsigned attempt) RL_CORE_NOEXCEPT;


/*
 * One Redis connection's bookkeeping, as the link keeps it: the glue does
 * the I/O and tells these functions what happened; they say what follows.
 * The caller allocates the struct and sets it up with rl_core_conn_init().
 *
 *   DOWN --connect--> CONNECTING --connected--> HANDSHAKE --ready--> UP
 *     ^                                                               |
 *     +------------------------- lost (from any state) ---------------+
 *
 * Commands are queued (waiting) on any state but DOWN and written (sent)
 * only when UP; waiting + sent never exceeds max_pending.
 */
typedef enum {
    RL_CORE_CONN_DOWN = 0,      /* no socket; a retry after the backoff */
    RL_CORE_CONN_CONNECTING,    /* connect() in progress */
    RL_CORE_CONN_HANDSHAKE,     /* connected, handshake not yet answered */
    RL_CORE_CONN_UP             /* commands are written */
} rl_core_conn_state_e;

typedef struct {
    rl_core_conn_state_e  state;
    uint32_t              failures;     /* attempts since a command (not
                                           the handshake) was answered */
    uint32_t              waiting;      /* queued, not yet written */
    uint32_t              sent;         /* written, not yet answered */
    uint32_t              max_pending;  /* bound of waiting + sent */
    uint32_t              script_gen;   /* SCRIPT LOADs written after
                                           NOSCRIPT on this connection */
} rl_core_conn_t;

void rl_core_conn_init(rl_core_conn_t *c, uint32_t max_pending)
    RL_CORE_NOEXCEPT;

/*
 * The transitions of the diagram.  connect, connected and ready return
 * RL_CORE_EINVAL (and change nothing) from any other state.  lost returns
 * the delay before the next attempt after the failures so far (0 for
 * the first, then 100 ms doubling up to a 2000 ms cap), which it then
 * counts one more; only an answered command
 * (rl_core_conn_replied with answered) sets them back to 0.  lost keeps
 * the waiting count: the caller fails or keeps those commands.
 */
rl_core_status_e rl_core_conn_connect(rl_core_conn_t *c) RL_CORE_NOEXCEPT;
rl_core_status_e rl_core_conn_connected(rl_core_conn_t *c) RL_CORE_NOEXCEPT;
rl_core_status_e rl_core_conn_ready(rl_core_conn_t *c) RL_CORE_NOEXCEPT;
uint64_t rl_core_conn_lost(rl_core_conn_t *c) RL_CORE_NOEXCEPT;

/* 1 when a command can be queued now: not DOWN and below max_pending. */
int rl_core_conn_room(const rl_core_conn_t *c) RL_CORE_NOEXCEPT;

/*
 * A command queued: RL_CORE_OK, RL_CORE_ERANGE when full (max_pending),
 * RL_CORE_EINVAL when DOWN.  unqueue takes back a command that was never
 * written (its request left or timed out, or the connection went down).
 */
rl_core_status_e rl_core_conn_queue(rl_core_conn_t *c) RL_CORE_NOEXCEPT;
void rl_core_conn_unqueue(rl_core_conn_t *c) RL_CORE_NOEXCEPT;

/*
 * A waiting command is written: 1 and *gen set to the script generation it
 * was written in, or 0 when the connection is not UP or nothing waits.
 */
int rl_core_conn_write(rl_core_conn_t *c, uint32_t *gen) RL_CORE_NOEXCEPT;

/*
 * A written command's callback came: answered is 1 for a reply from the
 * server (any, errors included), 0 when the connection lost it.
 */
void rl_core_conn_replied(rl_core_conn_t *c, int answered) RL_CORE_NOEXCEPT;

/*
 * A written command got NOSCRIPT and is written again, as EVALSHA.
 * Returns 1 when a SCRIPT LOAD must be written before it (none was written
 * on this connection since the command's generation *gen), else 0; *gen
 * becomes the generation of the resent command.  The sent count does not
 * change: one reply came, one command goes.
 */
int rl_core_conn_resend(rl_core_conn_t *c, uint32_t *gen) RL_CORE_NOEXCEPT;


/* A server's version, from INFO. */
typedef struct {
    unsigned  major;
    unsigned  minor;
    unsigned  patch;
} rl_core_version_t;

/*
 * Reads "redis_version:X.Y.Z" (a line of INFO server's text) into *v.
 * RL_CORE_EINVAL when the field is missing or malformed.
 */
rl_core_status_e rl_core_redis_version(const char *info, size_t len,
    rl_core_version_t *v) RL_CORE_NOEXCEPT;

/*
 * 1 for Redis 5.0 and later (scripts that read TIME and then write are
 * replicated by effects), which also covers Valkey 7.2 and later: Valkey
 * reports the Redis version it forked from.
 */
int rl_core_redis_version_supported(const rl_core_version_t *v)
    RL_CORE_NOEXCEPT;



/*
 * ---------------------------------------------------------------------
 * Redis Cluster routing: the hash slot of a key, the slot map,
 * the redirect replies, and the per-slot decision of a request whose
 * zones live in different slots.  No sockets here: the glue converts
 * hiredis replies into the neutral structs below and does the I/O.
 * ---------------------------------------------------------------------
 */

#define RL_CORE_CLUSTER_SLOTS    16384
/* A slot no master serves, or a node not in the map. */
#define RL_CORE_CLUSTER_NO_NODE  0xffffffffu

/*
 * CRC-16/XMODEM of data (polynomial 0x1021, init 0, not reflected, no
 * final xor: "123456789" gives 0x31c3), the CRC of the Redis Cluster
 * specification.
 */
uint16_t rl_core_crc16(const char *data, size_t len) RL_CORE_NOEXCEPT;

/*
 * The hash slot Redis computes for key (any bytes): CRC16 mod 16384 of
 * what lies between the first '{' and the first '}' after it, if that is
 * not empty, else of the whole key.  key may be NULL when len is 0.
 */
uint16_t rl_core_key_slot(const char *key, size_t len) RL_CORE_NOEXCEPT;

/*
 * The slot of every key the zone passes to the script (all of
 * PREFIX:{ZONE:CLIENT}:TAG[:WINDOW], the client key through
 * rl_core_client_key()): the hash tag is "ZONE:" and the client key up to
 * its first '}', if any, so it closes before TAG and is never empty.
 * RL_CORE_EINVAL when zone is NULL, its key empty, its prefix or name too
 * long, or when the prefix has braces that would move the hash tag so
 * that the keys could not share a slot (a prefix rl_core_valid_prefix()
 * accepts never does).
 */
rl_core_status_e rl_core_zone_slot(const rl_core_zone_request_t *zone,
    uint16_t *slot) RL_CORE_NOEXCEPT;


/* What a host of a slot map entry or a redirect is. */
typedef enum {
    RL_CORE_HOST_NUMERIC = 0,   /* IPv4 dotted quad or IPv6 (bare or in
                                   brackets): hand it to hiredis */
    RL_CORE_HOST_SAME,          /* empty (or NULL in CLUSTER SLOTS): the
                                   host of the node that answered */
    RL_CORE_HOST_NAME,          /* a hostname: needs resolving */
    RL_CORE_HOST_UNKNOWN        /* "?": hostnames preferred, none set */
} rl_core_host_kind_e;

/*
 * One slot range of the map, as the glue reads it from the reply:
 *   CLUSTER SLOTS  each entry [start, end, [host, port, id, {meta}],
 *                  replicas...]: one range, its master (the third
 *                  element), replicas ignored.
 *   CLUSTER SHARDS each shard {slots: [s1, e1, s2, e2, ...], nodes: [...]}:
 *                  one range per pair, all with the node whose role is
 *                  "master" (skip a shard with no master or no slots).
 * host should be numeric: the "ip" field (SHARDS, or the SLOTS metadata
 * map) when the preferred endpoint is a hostname or "?"; NULL or empty
 * means the host the reply came from (origin below).  Borrowed for the
 * call; the map keeps copies.  The integers are as Redis sent them (the
 * core checks the bounds).
 */
typedef struct {
    int64_t      start;         /* first slot, 0..16383 */
    int64_t      end;           /* last slot, start..16383, inclusive */
    const char  *host;
    size_t       host_len;
    int64_t      port;          /* 1..65535 */
} rl_core_cluster_range_t;

typedef struct rl_core_cluster_map_s  rl_core_cluster_map_t;

/*
 * Builds a slot map from n ranges (n may be 0: every slot unassigned).
 * Masters are deduplicated by address (IPv4 or IPv6 bytes) and port and
 * numbered from 0 in order of first appearance.  origin (numeric) is the
 * host of the node that answered, used for empty hosts.  Slots that no
 * range covers have no node (the spec allows a partial map; the glue
 * treats their zones as errors and refreshes).  On success *map is a new
 * map the caller frees with rl_core_cluster_map_destroy().  Errors (*map
 * NULL, a NUL-terminated message in err, at most errlen bytes, when err
 * is not NULL):
 *   RL_CORE_EINVAL  NULL map, NULL ranges with n > 0, a host that is not
 *                   numeric (a hostname, "?"), an empty host with no
 *                   numeric origin;
 *   RL_CORE_ERANGE  a slot or port out of bounds, start > end, or two
 *                   ranges that overlap;
 *   RL_CORE_ENOMEM.
 */
rl_core_status_e rl_core_cluster_map_create(
    const rl_core_cluster_range_t *ranges, size_t n, const char *origin,
    size_t origin_len, rl_core_cluster_map_t **map, char *err,
    size_t errlen) RL_CORE_NOEXCEPT;

void rl_core_cluster_map_destroy(rl_core_cluster_map_t *map)
    RL_CORE_NOEXCEPT;

/*
 * The node index serving slot, O(1); RL_CORE_CLUSTER_NO_NODE when no
 * master serves it, slot >= 16384 or map is NULL.
 */
uint32_t rl_core_cluster_map_lookup(const rl_core_cluster_map_t *map,
    uint16_t slot) RL_CORE_NOEXCEPT;

/* Number of distinct masters (node indices 0 .. count-1). */
uint32_t rl_core_cluster_map_node_count(const rl_core_cluster_map_t *map)
    RL_CORE_NOEXCEPT;

/* Slots without a node: 0 for a complete map. */
size_t rl_core_cluster_map_unassigned(const rl_core_cluster_map_t *map)
    RL_CORE_NOEXCEPT;

/* A master of the map; host is owned by the map, NUL-terminated. */
typedef struct {
    const char  *host;          /* numeric, IPv6 without brackets */
    size_t       host_len;
    uint16_t     port;
} rl_core_cluster_node_t;

/* RL_CORE_EINVAL for NULL arguments or index >= the node count. */
rl_core_status_e rl_core_cluster_map_node(const rl_core_cluster_map_t *map,
    uint32_t index, rl_core_cluster_node_t *out) RL_CORE_NOEXCEPT;

/*
 * The index of the master at host:port (numeric, compared as addresses:
 * "::1" and "0:0::1" are one), or RL_CORE_CLUSTER_NO_NODE: a MOVED or ASK
 * target that is already connected.
 */
uint32_t rl_core_cluster_map_find(const rl_core_cluster_map_t *map,
    const char *host, size_t host_len, uint16_t port) RL_CORE_NOEXCEPT;


/* The cluster errors of a reply; NONE for any other error. */
typedef enum {
    RL_CORE_REDIRECT_NONE = 0,
    RL_CORE_REDIRECT_MOVED,     /* the slot lives elsewhere: resend there
                                   and refresh the map */
    RL_CORE_REDIRECT_ASK,       /* the slot is migrating: resend once
                                   there, after ASKING; map unchanged */
    RL_CORE_REDIRECT_TRYAGAIN,  /* keys of a migrating slot split between
                                   nodes: an error of the zones */
    RL_CORE_REDIRECT_CLUSTERDOWN,   /* an error of the zones; refresh */
    RL_CORE_REDIRECT_CROSSSLOT  /* keys of one call in different slots:
                                   a broken invariant of the grouping */
} rl_core_redirect_kind_e;

typedef struct {
    rl_core_redirect_kind_e  kind;
    uint16_t                 slot;      /* MOVED, ASK */
    uint16_t                 port;      /* MOVED, ASK */
    rl_core_host_kind_e      host_kind; /* MOVED, ASK */
    const char              *host;      /* points into msg, brackets off;
                                           host_len 0 for SAME */
    size_t                   host_len;
} rl_core_redirect_t;

/*
 * Classifies an error reply's text (hiredis's reply->str, without the
 * leading '-'; one is skipped if present).  "MOVED <slot> <host>:<port>"
 * and "ASK ...": the last ':' separates the port, because Redis writes
 * IPv6 hosts bare ("MOVED 3999 ::1:6381"); "[::1]:6381" is accepted too;
 * an empty host (":6380") is SAME; a hostname or "?" is reported as such.
 * "TRYAGAIN ...", "CLUSTERDOWN ...", "CROSSSLOT ..." by their first word.
 * RL_CORE_OK for any text (kind NONE when it is not a cluster error);
 * RL_CORE_EREPLY when it says MOVED or ASK but slot, host or port are
 * malformed or out of bounds (kind NONE); RL_CORE_EINVAL for NULL out,
 * or NULL msg with len > 0.
 */
rl_core_status_e rl_core_parse_redirect(const char *msg, size_t len,
    rl_core_redirect_t *out) RL_CORE_NOEXCEPT;


/*
 * A request decided per slot.  Zones whose keys share a slot go in one
 * script call (the group); the script consumes for its zones only if all
 * of them allow.  When groups disagree, the groups that consumed are
 * refunded (one more call per group, not waited for).  Invariant: a
 * request is never admitted by one slot and rejected by another with both
 * consuming, once the refund lands; a refund is only ever of what a
 * known answer consumed, so a refund can make another request be rejected
 * that would have passed (the quota is held until it lands), never the
 * reverse (no over-admission).
 */
typedef struct {
    uint16_t  slot;
    size_t    first;            /* its zones: order[first .. first+count) */
    size_t    count;            /* >= 1 */
} rl_core_cluster_group_t;

/*
 * Groups n zones (slots[i] the slot of zone i, in rate_limit order) into
 * *ngroups groups: groups in order of their first zone, and within each,
 * zone indices in rate_limit order, so each group's zones are
 * order[first ..]: build its command from those zones in that order and
 * its reply's i-th zone is order[first + i].  order and groups are the
 * caller's, n entries each.  O(n * groups).  RL_CORE_EINVAL for NULL
 * arguments with n > 0 or a slot >= 16384.
 */
rl_core_status_e rl_core_cluster_group(const uint16_t *slots, size_t n,
    size_t *order, rl_core_cluster_group_t *groups, size_t *ngroups)
    RL_CORE_NOEXCEPT;

/* What became of one group's call. */
typedef enum {
    RL_CORE_GROUP_ANSWERED = 0, /* the script's reply: allowed[] is set */
    RL_CORE_GROUP_NOT_RUN,      /* an error reply before the script
                                   consumed (MOVED or ASK not followed,
                                   TRYAGAIN, CLUSTERDOWN, NOSCRIPT, BUSY,
                                   OOM, a script error): nothing consumed */
    RL_CORE_GROUP_UNKNOWN       /* sent, no reply (timeout, connection
                                   lost): it may have consumed, so it is
                                   never refunded */
} rl_core_group_state_e;

typedef enum {
    RL_CORE_OUTCOME_ADMIT = 0,  /* every group answered, every zone allowed */
    RL_CORE_OUTCOME_REJECT,     /* a group answered with a zone rejecting */
    RL_CORE_OUTCOME_ERROR       /* none rejected, some group unanswered:
                                   the fail policy of those zones decides */
} rl_core_outcome_e;

/* Give back cost units of zone (an index into the request's zones). */
typedef struct {
    size_t    group;
    size_t    zone;
    uint32_t  cost;             /* 1 for now: one request */
} rl_core_cluster_refund_t;

/*
 * The request's outcome from its groups (as rl_core_cluster_group() made
 * them, for n zones), states[g] for each group and allowed[i] for each
 * zone i of an answered group (others are not read).  refunds (n entries,
 * the caller's) gets, for REJECT and ERROR, every zone of every answered
 * group whose zones all allowed (it consumed), group by group and in
 * order within each, so each group's entries make one call to that
 * group's slot; *nrefunds is 0 for ADMIT.  For REJECT the glue sends the
 * refunds; for ERROR it sends them only when the fail policy rejects the
 * request, and drops them when it admits it.  RL_CORE_EINVAL for NULL
 * arguments or groups and order that are not a partition of 0..n-1.
 */
rl_core_status_e rl_core_cluster_outcome(
    const rl_core_cluster_group_t *groups, size_t ngroups,
    const size_t *order, size_t n, const rl_core_group_state_e *states,
    const int *allowed, rl_core_outcome_e *outcome,
    rl_core_cluster_refund_t *refunds, size_t *nrefunds) RL_CORE_NOEXCEPT;


#ifdef __cplusplus
}
#endif

#endif /* RL_CORE_H */
