// The C ABI of rl_core.h for Redis Cluster routing (cluster.hpp): thin
// wrappers, noexcept, catching where the C++ side can throw (the map
// allocates).

#include "rl_core.h"

#include <cstring>
#include <new>
#include <string_view>

#include "cluster.hpp"
#include "key.hpp"

#define RL_CORE_EXPORT  extern "C" __attribute__((visibility("default")))

// The opaque handle of rl_core.h.
struct rl_core_cluster_map_s {
    rl::SlotMap map;
};

namespace {

std::string_view view(const char *s, std::size_t len) noexcept
{
    return s != nullptr ? std::string_view(s, len) : std::string_view();
}

void writeError(char *err, std::size_t errlen, const char *msg) noexcept
{
    if (err != nullptr && errlen > 0) {
        std::size_t n = std::strlen(msg);

        if (n >= errlen) {
            n = errlen - 1;
        }

        std::memcpy(err, msg, n);
        err[n] = '\0';
    }
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


RL_CORE_EXPORT rl_core_status_e
rl_core_cluster_map_create(const rl_core_cluster_range_t *ranges, size_t n,
    const char *origin, size_t origin_len, rl_core_cluster_map_t **map,
    char *err, size_t errlen) noexcept
{
    if (map == nullptr) {
        writeError(err, errlen, "no map to return");
        return RL_CORE_EINVAL;
    }

    *map = nullptr;

    if (ranges == nullptr && n > 0) {
        writeError(err, errlen, "no slot ranges");
        return RL_CORE_EINVAL;
    }

    rl_core_cluster_map_t *m = nullptr;

    try {
        m = new rl_core_cluster_map_t;

        rl_core_status_e rc = m->map.build(ranges, n,
                                           view(origin, origin_len), err,
                                           errlen);
        if (rc != RL_CORE_OK) {
            delete m;
            return rc;
        }

    } catch (...) {
        delete m;
        writeError(err, errlen, "out of memory");
        return RL_CORE_ENOMEM;
    }

    *map = m;
    return RL_CORE_OK;
}


RL_CORE_EXPORT void
rl_core_cluster_map_destroy(rl_core_cluster_map_t *map) noexcept
{
    delete map;
}


RL_CORE_EXPORT uint32_t
rl_core_cluster_map_lookup(const rl_core_cluster_map_t *map, uint16_t slot)
    noexcept
{
    return map != nullptr ? map->map.lookup(slot) : RL_CORE_CLUSTER_NO_NODE;
}


RL_CORE_EXPORT uint32_t
rl_core_cluster_map_node_count(const rl_core_cluster_map_t *map) noexcept
{
    return map != nullptr ? static_cast<uint32_t>(map->map.nodeCount()) : 0;
}


RL_CORE_EXPORT size_t
rl_core_cluster_map_unassigned(const rl_core_cluster_map_t *map) noexcept
{
    return map != nullptr ? map->map.unassigned() : RL_CORE_CLUSTER_SLOTS;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_cluster_map_node(const rl_core_cluster_map_t *map, uint32_t index,
    rl_core_cluster_node_t *out) noexcept
{
    if (map == nullptr || out == nullptr || index >= map->map.nodeCount()) {
        return RL_CORE_EINVAL;
    }

    const rl::SlotMap::Node &node = map->map.node(index);

    out->host = node.host.c_str();
    out->host_len = node.host.size();
    out->port = node.port;
    return RL_CORE_OK;
}


RL_CORE_EXPORT uint32_t
rl_core_cluster_map_find(const rl_core_cluster_map_t *map, const char *host,
    size_t host_len, uint16_t port) noexcept
{
    if (map == nullptr || host == nullptr) {
        return RL_CORE_CLUSTER_NO_NODE;
    }

    return map->map.find(std::string_view(host, host_len), port);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_parse_redirect(const char *msg, size_t len, rl_core_redirect_t *out)
    noexcept
{
    if (out == nullptr || (msg == nullptr && len > 0)) {
        return RL_CORE_EINVAL;
    }

    return rl::parseRedirect(view(msg, len), *out);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_cluster_group(const uint16_t *slots, size_t n, size_t *order,
    rl_core_cluster_group_t *groups, size_t *ngroups) noexcept
{
    if (ngroups == nullptr
        || (n > 0 && (slots == nullptr || order == nullptr
                      || groups == nullptr)))
    {
        return RL_CORE_EINVAL;
    }

    for (size_t i = 0; i < n; i++) {
        if (slots[i] >= RL_CORE_CLUSTER_SLOTS) {
            *ngroups = 0;
            return RL_CORE_EINVAL;
        }
    }

    rl::groupBySlot(slots, n, order, groups, *ngroups);
    return RL_CORE_OK;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_cluster_outcome(const rl_core_cluster_group_t *groups,
    size_t ngroups, const size_t *order, size_t n,
    const rl_core_group_state_e *states, const int *allowed,
    rl_core_outcome_e *outcome, rl_core_cluster_refund_t *refunds,
    size_t *nrefunds) noexcept
{
    if (outcome == nullptr || nrefunds == nullptr
        || (ngroups > 0 && (groups == nullptr || states == nullptr))
        || (n > 0 && (order == nullptr || allowed == nullptr
                      || refunds == nullptr)))
    {
        return RL_CORE_EINVAL;
    }

    return rl::clusterOutcome(groups, ngroups, order, n, states, allowed,
                              *outcome, refunds, *nrefunds);
}
