#include "rate.hpp"

namespace rl {

namespace {

struct Period {
    char unit;
    std::uint64_t seconds;
};

constexpr Period periods[] = {
    { 's', 1 },
    { 'm', 60 },
    { 'h', 3600 },
    { 'd', 86400 },
    { 'w', RL_CORE_PERIOD_WEEK },
    // a calendar month; its nominal length, for the policy's w
    { 'M', RL_CORE_PERIOD_MONTH },
};

}  // namespace

rl_core_status_e parseRate(std::string_view s, std::uint64_t &count,
    std::uint64_t &periodS) noexcept
{
    std::size_t i = 0;
    std::uint64_t n = 0;
    bool tooLarge = false;

    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        // Saturate instead of overflowing: anything past maxCount is
        // ERANGE whatever its exact value.
        if (n > maxCount) {
            tooLarge = true;
        } else {
            n = n * 10 + static_cast<std::uint64_t>(s[i] - '0');
        }
        i++;
    }

    if (i == 0 || s.size() - i != 3 || s[i] != 'r' || s[i + 1] != '/') {
        return RL_CORE_EINVAL;
    }

    const Period *period = nullptr;

    for (const Period &p : periods) {
        if (s[i + 2] == p.unit) {
            period = &p;
        }
    }

    if (period == nullptr) {
        return RL_CORE_EINVAL;
    }

    if (tooLarge || n == 0 || n > maxCount) {
        return RL_CORE_ERANGE;
    }

    count = n;
    periodS = period->seconds;

    return RL_CORE_OK;
}

char periodUnit(std::uint64_t periodS) noexcept
{
    for (const Period &p : periods) {
        if (p.seconds == periodS) {
            return p.unit;
        }
    }

    return '?';
}

}  // namespace rl
