#include "command.hpp"

#include <cstring>
#include <string_view>

#include "algorithm.hpp"
#include "key.hpp"
#include "numbers.hpp"
#include "rate.hpp"
#include "scripts.hpp"

namespace rl {

namespace {

constexpr char evalsha[] = "EVALSHA";
constexpr std::size_t scriptSha1Size = 40;    // lowercase hex digits

// ARGV[2] of lua/multi.lua, indexed by rl_core_mode_e.
constexpr std::string_view modeNames[RL_CORE_MODE_COUNT] = {
    "check", "charge", "refund", "release", "renew",
};
constexpr std::size_t modeNameMax = 7;          // "release"

// What one zone contributes, worked out once for sizing and building.
struct ZonePlan {
    const Algorithm *alg;
    KeyParts parts;
    std::uint64_t periodUs;
    std::uint64_t burst;
    std::uint64_t delay;
};

// nullptr when the zone cannot be sent.
const Algorithm *checkZone(const rl_core_zone_request_t &z) noexcept
{
    if (z.limit == nullptr || z.key == nullptr || z.key_len == 0
        || (z.prefix == nullptr && z.prefix_len > 0)
        || (z.zone == nullptr && z.zone_len > 0)
        || z.prefix_len > RL_CORE_PREFIX_MAX
        || z.zone_len > RL_CORE_ZONE_NAME_MAX
        || z.cost > RL_CORE_COST_MAX)
    {
        return nullptr;
    }

    return findAlgorithm(z.limit->algorithm);
}

std::uint64_t burstArgument(const rl_core_limit_t &limit) noexcept
{
    switch (limit.algorithm) {
    case RL_CORE_ALG_GCRA:
        return limit.burst;
    case RL_CORE_ALG_TOKEN_BUCKET:
        // The capacity; rl_core_check_limit() fills N when burst= is
        // absent, and a limit that skipped it gets the same default.
        return limit.burst != 0 ? limit.burst : limit.count;
    default:
        return 0;
    }
}

// gcra's excess that passes at once: delay= when set below the burst, else
// the burst (nothing waits); the other algorithms never delay.
std::uint64_t delayArgument(const rl_core_limit_t &limit) noexcept
{
    if (limit.algorithm != RL_CORE_ALG_GCRA) {
        return 0;
    }

    return limit.delay_set && limit.delay < limit.burst ? limit.delay
                                                        : limit.burst;
}

// The per-zone arguments but the keys: alg N period_us burst cost nkeys
// delay.
std::size_t zoneArgumentBytes(const ZonePlan &plan,
    const rl_core_zone_request_t &z) noexcept
{
    return plan.alg->name.size() + decimalLength(z.limit->count)
           + decimalLength(plan.periodUs) + decimalLength(plan.burst)
           + decimalLength(z.cost)
           + decimalLength(static_cast<std::uint64_t>(plan.alg->keyCount))
           + decimalLength(plan.delay);
}

ZonePlan planZone(const rl_core_zone_request_t &z, const Algorithm *alg)
    noexcept
{
    ZonePlan plan;

    plan.alg = alg;
    plan.parts.prefix = std::string_view(z.prefix, z.prefix_len);
    plan.parts.zone = std::string_view(z.zone, z.zone_len);
    plan.parts.tag = alg->tag;
    plan.periodUs = z.limit->period_s * usPerSecond;
    plan.burst = burstArgument(*z.limit);
    plan.delay = delayArgument(*z.limit);

    return plan;
}

// argc exactly, and bytes of argument strings exactly but for window
// numbers, counted at their widest because the size does not depend on
// the clock.
rl_core_status_e commandSize(const rl_core_zone_request_t *zones,
    std::size_t n, std::size_t leaseLen, std::size_t &argc,
    std::size_t &bytes) noexcept
{
    if (zones == nullptr || n == 0 || leaseLen > RL_CORE_LEASE_MAX) {
        return RL_CORE_EINVAL;
    }

    std::size_t keys = 0;
    std::size_t size = 0;

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_zone_request_t &z = zones[i];
        const Algorithm *alg = checkZone(z);

        if (alg == nullptr) {
            return RL_CORE_EINVAL;
        }

        ZonePlan plan = planZone(z, alg);

        std::size_t keyBytes = plan.parts.baseLength()
            + clientKeyLength(std::string_view(z.key, z.key_len));

        if (alg->windowed) {
            keyBytes += 1 + decimalMax;     // ":" and the window number
        }

        keys += alg->keyCount;
        size += alg->keyCount * keyBytes + zoneArgumentBytes(plan, z);
    }

    // numkeys, now_us ("0"), the mode at its widest, the lease and Z.
    size += decimalLength(static_cast<std::uint64_t>(keys)) + 1
            + modeNameMax + leaseLen
            + decimalLength(static_cast<std::uint64_t>(n));

    argc = 3 + keys + 4 + 7 * n;
    bytes = size;

    return RL_CORE_OK;
}

// The command's arguments in order, handed to a sink that either counts
// them or writes them as RESP.  A sink has:
//   char *begin(std::size_t len)   where to write an argument of len bytes
//   void end(char *p)              the argument ends at p
//   void literal(const char *s, std::size_t len)   a constant argument
// The walk is the same for both, so the count is exact for the build.
template <class Sink>
void emitCommand(const rl_core_zone_request_t *zones, std::size_t n,
    std::string_view mode, std::string_view lease, std::uint64_t nowMs,
    std::size_t keys, Sink &sink) noexcept
{
    sink.literal(evalsha, sizeof(evalsha) - 1);
    sink.literal(scriptSha1, scriptSha1Size);

    char *p = sink.begin(decimalLength(static_cast<std::uint64_t>(keys)));
    sink.end(writeDecimal(p, static_cast<std::uint64_t>(keys)));

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_zone_request_t &z = zones[i];
        ZonePlan plan = planZone(z, findAlgorithm(z.limit->algorithm));
        char hashed[RL_CORE_HASHED_KEY_LEN];

        plan.parts.client = clientKey(std::string_view(z.key, z.key_len),
                                      hashed);

        std::size_t base = plan.parts.baseLength();
        std::int64_t w = 0;

        if (plan.alg->windowed) {
            w = windowNumber(nowMs, z.limit->period_s,
                             z.limit->algorithm == RL_CORE_ALG_FIXED_WINDOW)
                - static_cast<std::int64_t>(plan.alg->currentWindow);
        }

        for (std::size_t k = 0; k < plan.alg->keyCount; k++) {
            std::int64_t window = w + static_cast<std::int64_t>(k);
            std::size_t len = base;

            if (plan.alg->windowed) {
                len += 1 + decimalLength(window);
            }

            p = plan.parts.writeBase(sink.begin(len));

            if (plan.alg->windowed) {
                *p++ = ':';
                p = writeDecimal(p, window);
            }

            sink.end(p);
        }
    }

    // now_us: 0 tells the script to take the time from Redis TIME.
    p = sink.begin(1);
    *p++ = '0';
    sink.end(p);

    sink.literal(mode.data(), mode.size());
    sink.literal(lease.data(), lease.size());

    p = sink.begin(decimalLength(static_cast<std::uint64_t>(n)));
    sink.end(writeDecimal(p, static_cast<std::uint64_t>(n)));

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_limit_t &limit = *zones[i].limit;
        const Algorithm *alg = findAlgorithm(limit.algorithm);
        std::uint64_t values[] = {
            limit.count,
            limit.period_s * usPerSecond,
            burstArgument(limit),
            zones[i].cost,
            static_cast<std::uint64_t>(alg->keyCount),
            delayArgument(limit),
        };

        p = sink.begin(alg->name.size());
        std::memcpy(p, alg->name.data(), alg->name.size());
        sink.end(p + alg->name.size());

        for (std::uint64_t v : values) {
            p = sink.begin(decimalLength(v));
            sink.end(writeDecimal(p, v));
        }
    }
}

// Counts arguments and bytes, writing into a scratch area that any one
// argument fits (a key is at most prefix + zone + hashed client + window).
class CountSink {
public:
    std::size_t argc = 0;
    std::size_t resp = 0;           // bytes as RESP, but the header

    char *begin(std::size_t len) noexcept
    {
        resp += respArgument(len);
        return scratch_;
    }

    void end(char *) noexcept { argc++; }

    void literal(const char *, std::size_t len) noexcept
    {
        argc++;
        resp += respArgument(len);
    }

    static std::size_t respArgument(std::size_t len) noexcept
    {
        // "$" LEN "\r\n" bytes "\r\n"
        return 1 + decimalLength(static_cast<std::uint64_t>(len)) + 2
               + len + 2;
    }

private:
    char scratch_[RL_CORE_PREFIX_MAX + RL_CORE_ZONE_NAME_MAX
                  + RL_CORE_CLIENT_KEY_MAX + 2 * decimalMax + 16];
};

class RespSink {
public:
    explicit RespSink(char *buf) noexcept : p_(buf) {}

    char *begin(std::size_t len) noexcept
    {
        *p_++ = '$';
        p_ = writeDecimal(p_, static_cast<std::uint64_t>(len));
        *p_++ = '\r';
        *p_++ = '\n';
        return p_;
    }

    void end(char *p) noexcept
    {
        p_ = p;
        *p_++ = '\r';
        *p_++ = '\n';
    }

    void literal(const char *s, std::size_t len) noexcept
    {
        std::memcpy(begin(len), s, len);
        end(p_ + len);
    }

    char *position() const noexcept { return p_; }

private:
    char *p_;
};

// Checks every zone; the number of KEYS, or 0 when a zone cannot be sent.
std::size_t countKeys(const rl_core_zone_request_t *zones, std::size_t n)
    noexcept
{
    std::size_t keys = 0;

    for (std::size_t i = 0; i < n; i++) {
        const Algorithm *alg = checkZone(zones[i]);

        if (alg == nullptr) {
            return 0;
        }

        keys += alg->keyCount;
    }

    return keys;
}

std::size_t respHeader(std::size_t argc) noexcept
{
    // "*" ARGC "\r\n"
    return 1 + decimalLength(static_cast<std::uint64_t>(argc)) + 2;
}

}  // namespace

rl_core_status_e requestSize(const rl_core_zone_request_t *zones,
    std::size_t n, std::size_t leaseLen, std::size_t &bytes) noexcept
{
    std::size_t argc, args;
    rl_core_status_e rc = commandSize(zones, n, leaseLen, argc, args);

    if (rc != RL_CORE_OK) {
        return rc;
    }

    // Exact but for widths: each argument as "$" LEN "\r\n" ARG "\r\n"
    // with LEN counted at its widest, and EVALSHA and the SHA-1, which
    // commandSize() leaves out of args.
    bytes = respHeader(argc) + args + sizeof(evalsha) - 1 + scriptSha1Size
            + argc * (1 + decimalMax + 2 + 2);

    return RL_CORE_OK;
}

rl_core_status_e requestBuild(const rl_core_zone_request_t *zones,
    std::size_t n, rl_core_mode_e mode, std::string_view lease,
    std::uint64_t nowMs, char *buf, std::size_t bytes, std::size_t &len)
    noexcept
{
    auto m = static_cast<unsigned>(mode);

    if (zones == nullptr || n == 0 || buf == nullptr
        || m >= RL_CORE_MODE_COUNT || lease.size() > RL_CORE_LEASE_MAX)
    {
        return RL_CORE_EINVAL;
    }

    std::size_t keys = countKeys(zones, n);

    if (keys == 0) {
        return RL_CORE_EINVAL;
    }

    CountSink count;
    emitCommand(zones, n, modeNames[m], lease, nowMs, keys, count);

    std::size_t need = respHeader(count.argc) + count.resp;

    if (need > bytes) {
        return RL_CORE_EINVAL;
    }

    char *p = buf;
    *p++ = '*';
    p = writeDecimal(p, static_cast<std::uint64_t>(count.argc));
    *p++ = '\r';
    *p++ = '\n';

    RespSink sink(p);
    emitCommand(zones, n, modeNames[m], lease, nowMs, keys, sink);

    len = static_cast<std::size_t>(sink.position() - buf);

    return RL_CORE_OK;
}

}  // namespace rl
