#include "limit.hpp"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>

#include "algorithm.hpp"
#include "rate.hpp"

namespace rl {

namespace {

__attribute__((format(printf, 4, 5)))
rl_core_status_e fail(rl_core_status_e status, char *err, std::size_t errlen,
    const char *fmt, ...) noexcept
{
    if (err != nullptr && errlen > 0) {
        va_list args;
        va_start(args, fmt);
        std::vsnprintf(err, errlen, fmt, args);
        va_end(args);
    }

    return status;
}

// The rate as the user wrote it, for messages: "100r/m".
struct RateText {
    char text[32];

    explicit RateText(const rl_core_limit_t &limit) noexcept
    {
        std::snprintf(text, sizeof(text), "%" PRIu64 "r/%c", limit.count,
                      periodUnit(limit.period_s));
    }
};

rl_core_status_e checkRate(const rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept
{
    RateText rate(limit);

    if (periodUnit(limit.period_s) == '?') {
        return fail(RL_CORE_EINVAL, err, errlen,
                    "invalid rate period of %" PRIu64 " seconds: "
                    "the period must be s, m, h, d, w or M",
                    limit.period_s);
    }

    if (limit.period_s == RL_CORE_PERIOD_MONTH
        && limit.algorithm != RL_CORE_ALG_FIXED_WINDOW)
    {
        const Algorithm *alg = findAlgorithm(limit.algorithm);

        return fail(RL_CORE_EINVAL, err, errlen,
                    "rate \"%s\" counts calendar months, which only "
                    "algorithm=fixed_window takes, not algorithm=%.*s",
                    rate.text, static_cast<int>(alg->name.size()),
                    alg->name.data());
    }

    if (limit.count == 0) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "rate \"%s\" is out of range: N must be at least 1",
                    rate.text);
    }

    if (limit.count > maxCount) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "rate \"%s\" is out of range: "
                    "N must not exceed %" PRIu64, rate.text, maxCount);
    }

    // The emission interval ceil(P / N) must be at least 1 us.
    std::uint64_t periodUs = limit.period_s * usPerSecond;

    if (limit.count > periodUs) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "rate \"%s\" is out of range: N must not exceed "
                    "%" PRIu64 " for r/%c (one request per microsecond)",
                    rate.text, periodUs, periodUnit(limit.period_s));
    }

    return RL_CORE_OK;
}

rl_core_status_e checkGcra(const rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept
{
    if (limit.burst > maxBurst) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "burst=%" PRIu64 " is out of range: "
                    "burst must not exceed %" PRIu64, limit.burst, maxBurst);
    }

    std::uint64_t periodUs = limit.period_s * usPerSecond;
    std::uint64_t t = (periodUs + limit.count - 1) / limit.count;

    // (burst + 1) * T <= 10^15, by division: the product can pass 2^64.
    std::uint64_t most = gcraMaxAheadUs / t - 1;

    if (limit.burst > most) {
        RateText rate(limit);
        return fail(RL_CORE_ERANGE, err, errlen,
                    "burst=%" PRIu64 " is out of range for rate \"%s\": "
                    "burst must not exceed %" PRIu64 ", as (burst + 1) * "
                    "%" PRIu64 " us (the emission interval) must not "
                    "exceed 10^15 us", limit.burst, rate.text, most, t);
    }

    return RL_CORE_OK;
}

rl_core_status_e checkTokenBucket(const rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept
{
    if (limit.burst == 0) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "burst=0 is out of range: the capacity of "
                    "algorithm=token_bucket must be at least 1");
    }

    if (limit.burst > maxBurst) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "burst=%" PRIu64 " is out of range: "
                    "burst must not exceed %" PRIu64, limit.burst, maxBurst);
    }

    std::uint64_t periodUs = limit.period_s * usPerSecond;
    std::uint64_t most = maxProductUs / periodUs;

    if (limit.burst <= most) {
        return RL_CORE_OK;
    }

    RateText rate(limit);

    if (limit.burst_set) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "burst=%" PRIu64 " is out of range for rate \"%s\": "
                    "burst must not exceed %" PRIu64 ", as burst * "
                    "%" PRIu64 " us (the period) must not exceed 2^52 "
                    "with algorithm=token_bucket",
                    limit.burst, rate.text, most, periodUs);
    }

    return fail(RL_CORE_ERANGE, err, errlen,
                "rate \"%s\" is out of range for algorithm=token_bucket: "
                "the capacity (burst, N by default) must not exceed "
                "%" PRIu64 ", as capacity * %" PRIu64 " us (the period) "
                "must not exceed 2^52; set a smaller burst",
                rate.text, most, periodUs);
}

rl_core_status_e checkSlidingWindow(const rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept
{
    std::uint64_t periodUs = limit.period_s * usPerSecond;
    std::uint64_t most = maxProductUs / periodUs;

    if (limit.count > most) {
        RateText rate(limit);
        return fail(RL_CORE_ERANGE, err, errlen,
                    "rate \"%s\" is out of range for "
                    "algorithm=sliding_window: N must not exceed %" PRIu64
                    " for r/%c, as N * %" PRIu64 " us (the period) must "
                    "not exceed 2^52", rate.text, most,
                    periodUnit(limit.period_s), periodUs);
    }

    return RL_CORE_OK;
}

rl_core_status_e checkSlidingLog(const rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept
{
    if (limit.count > slidingLogMaxCount) {
        RateText rate(limit);
        return fail(RL_CORE_ERANGE, err, errlen,
                    "rate \"%s\" is out of range for algorithm=sliding_log: "
                    "N must not exceed %" PRIu64 " (the requests kept per "
                    "key)", rate.text, slidingLogMaxCount);
    }

    return RL_CORE_OK;
}

bool isNameByte(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// concurrency=N lease=T: no rate; the lease's period is what the worker
// renews at a third of (so at least 1 ms).
rl_core_status_e checkConcurrency(const rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept
{
    if (limit.burst_set) {
        return fail(RL_CORE_EINVAL, err, errlen,
                    "\"burst\" is not allowed with \"concurrency\"");
    }

    if (limit.count < 1 || limit.count > RL_CORE_CONCURRENCY_MAX) {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "concurrency=%" PRIu64 " is out of range: N must be "
                    "between 1 and %d", limit.count,
                    RL_CORE_CONCURRENCY_MAX);
    }

    if (limit.period_s < RL_CORE_LEASE_MIN_S
        || limit.period_s > RL_CORE_LEASE_MAX_S)
    {
        return fail(RL_CORE_ERANGE, err, errlen,
                    "lease of %" PRIu64 " s is out of range: it must be "
                    "between %d s and %d s (1h)", limit.period_s,
                    RL_CORE_LEASE_MIN_S, RL_CORE_LEASE_MAX_S);
    }

    return RL_CORE_OK;
}

}  // namespace

rl_core_status_e checkLimit(rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept
{
    const Algorithm *alg = findAlgorithm(limit.algorithm);

    if (alg == nullptr) {
        return fail(RL_CORE_EINVAL, err, errlen, "unknown algorithm");
    }

    if (limit.algorithm == RL_CORE_ALG_CONCURRENCY) {
        return checkConcurrency(limit, err, errlen);
    }

    if (limit.burst_set && !alg->takesBurst) {
        return fail(RL_CORE_EINVAL, err, errlen,
                    "\"burst\" is not allowed with algorithm=%.*s",
                    static_cast<int>(alg->name.size()), alg->name.data());
    }

    rl_core_status_e rc = checkRate(limit, err, errlen);

    if (rc != RL_CORE_OK) {
        return rc;
    }

    rl_core_limit_t checked = limit;

    if (!checked.burst_set) {
        checked.burst = limit.algorithm == RL_CORE_ALG_TOKEN_BUCKET
                        ? limit.count : 0;
    }

    switch (limit.algorithm) {
    case RL_CORE_ALG_GCRA:
        rc = checkGcra(checked, err, errlen);
        break;
    case RL_CORE_ALG_TOKEN_BUCKET:
        rc = checkTokenBucket(checked, err, errlen);
        break;
    case RL_CORE_ALG_SLIDING_WINDOW:
        rc = checkSlidingWindow(checked, err, errlen);
        break;
    case RL_CORE_ALG_SLIDING_LOG:
        rc = checkSlidingLog(checked, err, errlen);
        break;
    case RL_CORE_ALG_FIXED_WINDOW:
    case RL_CORE_ALG_CONCURRENCY:
        break;
    }

    if (rc == RL_CORE_OK) {
        // The limit is completed only when it is valid as a whole.
        limit = checked;
    }

    return rc;
}

std::uint64_t limitUnits(const rl_core_limit_t &limit) noexcept
{
    switch (limit.algorithm) {
    case RL_CORE_ALG_GCRA:
        return limit.burst + 1;
    case RL_CORE_ALG_TOKEN_BUCKET:
        return limit.burst != 0 ? limit.burst : limit.count;
    default:
        return limit.count;
    }
}

bool validZoneName(std::string_view s) noexcept
{
    if (s.empty() || s.size() > RL_CORE_ZONE_NAME_MAX) {
        return false;
    }

    for (char c : s) {
        if (!isNameByte(c)) {
            return false;
        }
    }

    return true;
}

bool validPrefix(std::string_view s) noexcept
{
    if (s.empty() || s.size() > RL_CORE_PREFIX_MAX) {
        return false;
    }

    for (char c : s) {
        auto b = static_cast<unsigned char>(c);

        // Braces would move the Redis Cluster hash tag out of the key's
        // "{ZONE:CLIENT}" part; the rest keeps keys printable in logs.
        if (b <= 0x20 || b == 0x7f || c == '{' || c == '}') {
            return false;
        }
    }

    return true;
}

}  // namespace rl
