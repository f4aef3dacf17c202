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
    RL_CORE_ALG_SLIDING_LOG
} rl_core_algorithm_e;

#define RL_CORE_ALG_COUNT  5


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
typedef struct {
    uint64_t             count;         /* N requests ... */
    uint64_t             period_s;      /* ... per P seconds: 1/60/3600/86400 */
    uint64_t             burst;         /* meaning depends on the algorithm */
    int                  burst_set;     /* burst= was given */
    rl_core_algorithm_e  algorithm;
} rl_core_limit_t;


/*
 * Parses "Nr/s", "Nr/m", "Nr/h" or "Nr/d" (N per 1, 60, 3600 or 86400
 * s).  RL_CORE_EINVAL when malformed, RL_CORE_ERANGE when N is 0 or too
 * large for any algorithm.
 */
rl_core_status_e rl_core_parse_rate(const char *s, size_t len,
    uint64_t *count, uint64_t *period_s) RL_CORE_NOEXCEPT;

/* "gcra", "token_bucket", "fixed_window", "sliding_window", "sliding_log". */
rl_core_status_e rl_core_parse_algorithm(const char *s, size_t len,
    rl_core_algorithm_e *algorithm) RL_CORE_NOEXCEPT;

/*
 * Validates a whole limit and fills the default burst (gcra: 0,
 * token_bucket: N).  On failure writes a NUL-terminated message for
 * "nginx -t" into err (at most errlen bytes, NGINX's wording, for example
 * "\"burst\" is not allowed with algorithm=fixed_window" or a message that
 * names the numeric bound it enforces) and returns RL_CORE_EINVAL or
 * RL_CORE_ERANGE.
 */
rl_core_status_e rl_core_check_limit(rl_core_limit_t *limit, char *err,
    size_t errlen) RL_CORE_NOEXCEPT;

/* 1 if 1-64 bytes of A-Za-z0-9_- , else 0. */
int rl_core_valid_zone_name(const char *s, size_t len) RL_CORE_NOEXCEPT;

/* 1 if 1-64 bytes with no '{', '}', NUL, space or control byte, else 0. */
int rl_core_valid_prefix(const char *s, size_t len) RL_CORE_NOEXCEPT;


/*
 * One zone of one request, as the script command needs it.  The strings are
 * borrowed for the duration of the call.
 */
typedef struct {
    const char             *prefix;
    size_t                  prefix_len;
    const char             *zone;
    size_t                  zone_len;
    const char             *key;        /* the client key, any bytes */
    size_t                  key_len;    /* > 0 */
    const rl_core_limit_t  *limit;      /* checked by rl_core_check_limit */
} rl_core_zone_request_t;


/*
 * The script command for these zones,
 *
 *   EVALSHA sha numkeys KEY... now_us Z  (alg N period_us burst nkeys)*Z
 *
 * as one RESP array (what hiredis would format from an argv), ready for
 * redisAsyncFormattedCommand(): every value is its own bulk string, so no
 * byte of a client key can change the command.  sha is the embedded
 * script's SHA-1 (rl_core_script_sha1()); now_us is "0" (the script takes
 * Redis TIME).  Keys are PREFIX:{ZONE:CLIENT}:TAG[:WINDOW], the braces
 * being the Redis Cluster hash tag.  CLIENT is the client key itself when
 * it has at most RL_CORE_CLIENT_KEY_MAX bytes and does not begin with '#',
 * else "#" and the SHA-1 of the key in lowercase hex (so no client can
 * name another's hashed key).  With W = floor(now_ms / (period_s * 1000))
 * from the caller's wall clock, fixed_window passes the windows W-1, W,
 * W+1 and sliding_window W-2 .. W+1, in that order; the script decides
 * with Redis TIME which of them are current.
 *
 * rl_core_request_size() bounds the size at any clock (window numbers
 * and lengths counted at their widest); rl_core_request_build() writes
 * the command into buf (bytes long) and sets *len.  RL_CORE_EINVAL when n
 * is 0, a key is empty, a limit is NULL or has an unknown algorithm, a
 * prefix or zone name is too long, or bytes is short (nothing is written
 * then).
 */
rl_core_status_e rl_core_request_size(const rl_core_zone_request_t *zones,
    size_t n, size_t *bytes) RL_CORE_NOEXCEPT;
rl_core_status_e rl_core_request_build(const rl_core_zone_request_t *zones,
    size_t n, uint64_t now_ms, char *buf, size_t bytes, size_t *len)
    RL_CORE_NOEXCEPT;


/* The embedded multi-zone script and its SHA-1 (40 lowercase hex). */
const char *rl_core_script(size_t *len) RL_CORE_NOEXCEPT;
const char *rl_core_script_sha1(void) RL_CORE_NOEXCEPT;

/* One zone's answer: the script's five integers for it, in this order. */
typedef struct {
    int64_t  allowed;           /* 0 or 1 */
    int64_t  limit;
    int64_t  remaining;
    int64_t  reset_after_ms;
    int64_t  retry_after_ms;    /* 0 iff remaining > 0 */
} rl_core_zone_result_t;

/*
 * Checks and decodes the script's reply, whose elements the glue has
 * already found to be integers: exactly 5 * nzones values, allowed 0 or 1,
 * limit >= 1, 0 <= remaining <= limit, times >= 0, retry_after_ms == 0 iff
 * remaining > 0, remaining == 0 when not allowed.  RL_CORE_EREPLY on any
 * mismatch (out is then undefined).
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
    uint64_t                period_s;
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


#ifdef __cplusplus
}
#endif

#endif /* RL_CORE_H */
