// The C ABI of rl_core.h for Redis Cluster routing (cluster.hpp): thin
// wrappers, noexcept, catching where the C++ side can throw (the map
// allocates).

#include "rl_core.h"

#include <string_view>

#include "cluster.hpp"
#include "key.hpp"

#define RL_CORE_EXPORT  extern "C" __attribute__((visibility("default")))

namespace {

std::string_view view(const char *s, std::size_t len) noexcept
{
    return s != nullptr ? std::string_view(s, len) : std::string_view();
}

}  // namespace


RL_CORE_EXPORT uint16_t
rl_core_crc16(const char *data, size_t len) noexcept
{
    return data != nullptr ? rl::crc16(data, len) : rl::crc16("", 0);
}


RL_CORE_EXPORT uint16_t
rl_core_key_slot(const char *key, size_t len) noexcept
{
    return rl::keySlot(view(key, len));
}


RL_CORE_EXPORT rl_core_status_e
rl_core_zone_slot(const rl_core_zone_request_t *zone, uint16_t *slot)
    noexcept
{
    if (zone == nullptr || slot == nullptr || zone->key == nullptr
        || zone->key_len == 0
        || (zone->prefix == nullptr && zone->prefix_len > 0)
        || (zone->zone == nullptr && zone->zone_len > 0)
        || zone->prefix_len > RL_CORE_PREFIX_MAX
        || zone->zone_len > RL_CORE_ZONE_NAME_MAX)
    {
        return RL_CORE_EINVAL;
    }

    // PREFIX:{ZONE:CLIENT}: exactly as the command builder writes it, up
    // to where the keys differ (TAG, :WINDOW).  When its hash tag closes
    // inside it, every key of the zone has that tag, so this is the slot
    // Redis computes for each of them.
    char hashed[RL_CORE_HASHED_KEY_LEN];
    char buf[RL_CORE_PREFIX_MAX + RL_CORE_ZONE_NAME_MAX
             + RL_CORE_CLIENT_KEY_MAX + 8];
    rl::KeyParts parts;

    parts.prefix = view(zone->prefix, zone->prefix_len);
    parts.zone = view(zone->zone, zone->zone_len);
    parts.client = rl::clientKey(view(zone->key, zone->key_len), hashed);
    parts.tag = std::string_view();

    std::size_t len = parts.baseLength();

    if (len > sizeof(buf)) {
        return RL_CORE_EINVAL;
    }

    parts.writeBase(buf);

    std::string_view base(buf, len);

    if (rl::hashTagEnd(base) == std::string_view::npos) {
        return RL_CORE_EINVAL;
    }

    *slot = rl::keySlot(base);
    return RL_CORE_OK;
}

