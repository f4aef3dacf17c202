// The test-only entry points of rl_core_test.h: what the unit tests look
// at inside the core that the module has no use for.  Kept apart so that
// the module's link does not pull them from the archive.

#include "rl_core_test.h"

#include <string_view>

#include "algorithm.hpp"
#include "capi.hpp"
#include "key.hpp"
#include "sha1.hpp"

namespace {

std::string_view view(const char *s, std::size_t len) noexcept
{
    return s != nullptr ? std::string_view(s, len) : std::string_view();
}

}  // namespace


RL_CORE_EXPORT const char *
rl_core_algorithm_name(rl_core_algorithm_e algorithm) noexcept
{
    const rl::Algorithm *alg = rl::findAlgorithm(algorithm);

    // The names are string literals, so data() is NUL-terminated.
    return alg != nullptr ? alg->name.data() : "unknown";
}


RL_CORE_EXPORT void
rl_core_client_key(const char *key, size_t len,
    char hashed[RL_CORE_HASHED_KEY_LEN], const char **out, size_t *out_len)
    noexcept
{
    if (out == nullptr || out_len == nullptr) {
        return;
    }

    std::string_view k = view(key, len);

    // hashed is only needed for a long key; without it a long key has no
    // form, and the caller gets NULL rather than an unset pointer.
    if (hashed == nullptr) {
        bool kept = k.size() <= RL_CORE_CLIENT_KEY_MAX
                    && (k.empty() || k[0] != '#');

        *out = kept ? k.data() : nullptr;
        *out_len = kept ? k.size() : 0;
        return;
    }

    char (&h)[RL_CORE_HASHED_KEY_LEN] =
        *reinterpret_cast<char (*)[RL_CORE_HASHED_KEY_LEN]>(hashed);
    k = rl::clientKey(k, h);

    *out = k.data();
    *out_len = k.size();
}


RL_CORE_EXPORT size_t
rl_core_zone_key_count(rl_core_algorithm_e algorithm) noexcept
{
    const rl::Algorithm *alg = rl::findAlgorithm(algorithm);

    return alg != nullptr ? alg->keyCount : 0;
}


RL_CORE_EXPORT void
rl_core_sha1_hex(const void *data, size_t len, char out[41]) noexcept
{
    rl::sha1Hex(data, len, out);
    out[rl::sha1HexSize] = '\0';
}


RL_CORE_EXPORT size_t
rl_core_cache_size(const rl_core_cache_t *cache) noexcept
{
    return cache != nullptr ? cache->cache.size() : 0;
}
