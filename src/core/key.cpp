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

std::int64_t windowNumber(std::uint64_t nowMs, std::uint64_t periodS)
    noexcept
{
    if (periodS == 0) {
        return 0;
    }

    // At most 2^64 / 1000, so it fits an int64_t.
    return static_cast<std::int64_t>(nowMs / (periodS * 1000));
}

}  // namespace rl
