#pragma once

// Redis keys: PREFIX:{ZONE:CLIENT}:TAG[:WINDOW].
//
// The braces are the Redis Cluster hash tag, never empty, so all keys of
// one zone's decision share a slot.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rl_core.h"

namespace rl {

// The client key as it appears in Redis keys.  Kept as is when at most
// RL_CORE_CLIENT_KEY_MAX bytes and not beginning with '#', otherwise "#"
// and its SHA-1 in lowercase hex, written into hashed.  Not idempotent on
// purpose (a hashed form begins with '#', so it is hashed again): callers
// pass raw keys, and the command builder and the deny cache apply this
// themselves.
std::string_view clientKey(std::string_view key,
    char (&hashed)[RL_CORE_HASHED_KEY_LEN]) noexcept;

// The length clientKey() will return, without hashing.
std::size_t clientKeyLength(std::string_view key) noexcept;

struct KeyParts {
    std::string_view prefix;
    std::string_view zone;
    std::string_view client;    // already through clientKey()
    std::string_view tag;

    // Bytes of PREFIX:{ZONE:CLIENT}:TAG.
    std::size_t baseLength() const noexcept;
    // Writes PREFIX:{ZONE:CLIENT}:TAG at p (no NUL); returns the end.
    char *writeBase(char *p) const noexcept;
};

// The number of the window holding nowMs: floor(nowMs / (periodS *
// 1000)), windows aligned to the Unix epoch; with calendar (fixed_window),
// a week's windows begin on Mondays (window 0 on 1970-01-05, so earlier
// times are in window -1) and RL_CORE_PERIOD_MONTH's are calendar months
// numbered (year - 1970) * 12 + month - 1, all in UTC.
std::int64_t windowNumber(std::uint64_t nowMs, std::uint64_t periodS,
    bool calendar) noexcept;

}  // namespace rl
