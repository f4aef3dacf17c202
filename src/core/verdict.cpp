#include "verdict.hpp"

namespace rl {

namespace {

// Whether zone a is tighter than zone b, the tightest so far: fewer
// remaining; on a tie a rejecting zone, and among rejecting zones the
// longer wait.  Otherwise the earlier zone stays.
bool tighter(const rl_core_zone_result_t &a, const rl_core_zone_result_t &b)
    noexcept
{
    if (a.remaining != b.remaining) {
        return a.remaining < b.remaining;
    }

    bool aRejects = a.allowed == 0;
    bool bRejects = b.allowed == 0;

    if (aRejects != bRejects) {
        return aRejects;
    }

    return aRejects && a.retry_after_ms > b.retry_after_ms;
}

}  // namespace

std::int64_t ceilSeconds(std::int64_t ms) noexcept
{
    if (ms <= 0) {
        return 0;
    }

    // Not (ms + 999) / 1000: that overflows near INT64_MAX.
    return ms / 1000 + (ms % 1000 != 0 ? 1 : 0);
}

rl_core_status_e verdict(const rl_core_zone_result_t *results,
    const unsigned char *answered, std::size_t n, rl_core_verdict_t &out)
    noexcept
{
    if (results == nullptr) {
        return RL_CORE_EINVAL;
    }

    bool found = false;
    std::size_t tightest = 0;
    bool rejected = false;
    std::int64_t retry = 0;

    for (std::size_t i = 0; i < n; i++) {
        if (answered != nullptr && answered[i] == 0) {
            continue;
        }

        const rl_core_zone_result_t &r = results[i];

        if (!found || tighter(r, results[tightest])) {
            tightest = i;
        }

        found = true;

        if (r.allowed == 0) {
            std::int64_t s = ceilSeconds(r.retry_after_ms);

            rejected = true;

            if (s > retry) {
                retry = s;
            }
        }
    }

    if (!found) {
        return RL_CORE_EINVAL;
    }

    out.rejected = rejected ? 1 : 0;
    out.tightest = tightest;
    // Retry-After of 0 would invite an immediate retry that is rejected.
    out.retry_after_s = rejected ? (retry > 1 ? retry : 1) : 0;

    return RL_CORE_OK;
}

}  // namespace rl
