#include "key.hpp"

#include <cstring>

#include "sha1.hpp"

namespace rl {

namespace {

// A key that begins with '#' is hashed too, whatever its length: then no
// client can send "#" and the SHA-1 of another client's long key and share
// its quota.  So callers pass raw keys, never a normalized one.
inline bool keptAsIs(std::string_view key) noexcept
{
    return key.size() <= RL_CORE_CLIENT_KEY_MAX
           && (key.empty() || key[0] != '#');
}

}  // namespace

std::size_t clientKeyLength(std::string_view key) noexcept
{
    return keptAsIs(key) ? key.size() : RL_CORE_HASHED_KEY_LEN;
}

std::string_view clientKey(std::string_view key,
    char (&hashed)[RL_CORE_HASHED_KEY_LEN]) noexcept
{
    if (keptAsIs(key)) {
        return key;
    }

    hashed[0] = '#';
    sha1Hex(key.data(), key.size(), hashed + 1);

    return std::string_view(hashed, RL_CORE_HASHED_KEY_LEN);
}

std::size_t KeyParts::baseLength() const noexcept
{
    // ":" "{" ":" "}" ":"
    return prefix.size() + zone.size() + client.size() + tag.size() + 5;
}

namespace {

inline char *put(char *p, std::string_view s) noexcept
{
    if (!s.empty()) {
        std::memcpy(p, s.data(), s.size());
    }

    return p + s.size();
}

}  // namespace

char *KeyParts::writeBase(char *p) const noexcept
{
    p = put(p, prefix);
    *p++ = ':';
    *p++ = '{';
    p = put(p, zone);
    *p++ = ':';
    p = put(p, client);
    *p++ = '}';
    *p++ = ':';
    return put(p, tag);
}

namespace {

constexpr std::uint64_t msPerDay = 86400000;
// 1970-01-05, the first Monday of the Unix epoch.
constexpr std::uint64_t firstMondayMs = 4 * msPerDay;

// The month of a day counted from 1970-01-01, as months since 1970-01:
// the civil calendar from days (proleptic Gregorian, eras of 400 years).
std::int64_t monthNumber(std::uint64_t days) noexcept
{
    std::uint64_t z = days + 719468;            // days since 0000-03-01
    std::uint64_t era = z / 146097;
    std::uint64_t doe = z - era * 146097;
    std::uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096)
                        / 365;
    std::uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    std::uint64_t mp = (5 * doy + 2) / 153;     // from March, 0..11
    std::uint64_t month = mp < 10 ? mp + 3 : mp - 9;
    std::uint64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

    return (static_cast<std::int64_t>(year) - 1970) * 12
           + static_cast<std::int64_t>(month) - 1;
}

}  // namespace

std::int64_t windowNumber(std::uint64_t nowMs, std::uint64_t periodS,
    bool calendar) noexcept
{
    if (periodS == 0) {
        return 0;
    }

    if (calendar && periodS == RL_CORE_PERIOD_MONTH) {
        return monthNumber(nowMs / msPerDay);
    }

    if (calendar && periodS == RL_CORE_PERIOD_WEEK) {
        std::uint64_t weekMs = periodS * 1000;

        if (nowMs < firstMondayMs) {
            return -1;
        }

        return static_cast<std::int64_t>((nowMs - firstMondayMs) / weekMs);
    }

    // At most 2^64 / 1000, so it fits an int64_t.
    return static_cast<std::int64_t>(nowMs / (periodS * 1000));
}

}  // namespace rl
