"""Link-layer headers: where the IP packet starts in a record, per link type.

Numbers are LINKTYPE_* values from tcpdump.org/linktypes.html (what pcap and pcapng
files carry), not the platform's DLT_* values.
"""

from __future__ import annotations

LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, told apart by the version nibble
LINKTYPE_LOOP = 108  # OpenBSD loopback: address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
DLT_RAW_BSD = 12  # DLT_RAW as some BSDs number it; seen in old files

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
    DLT_RAW_BSD: "raw IP",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad (QinQ), old QinQ

# Address families of IPv4 and IPv6 as BSD loopback headers carry them: AF_INET is 2
# everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
AF_INET = 2
AF_INET6 = frozenset({10, 24, 28, 30})


def _ip_version_at(buf: bytes, ip: int, end: int) -> int:
    if ip >= end:
        return -1
    version = buf[ip] >> 4
    return ip if version in (4, 6) else -1


def ip_offset(buf: bytes, start: int, end: int, linktype: int) -> int:
    """Offset of the IP header in ``buf[start:end]``, or -1 when the record is not IP."""
    if linktype == LINKTYPE_ETHERNET:
        p = start + 12
        if p + 2 > end:
            return -1
        ethertype = (buf[p] << 8) | buf[p + 1]
        while ethertype in ETH_VLAN:  # each tag: 2 bytes TCI, then the next ethertype
            p += 4
            if p + 2 > end:
                return -1
            ethertype = (buf[p] << 8) | buf[p + 1]
        if ethertype == ETH_IPV4 or ethertype == ETH_IPV6:
            return _ip_version_at(buf, p + 2, end)
        return -1
    if linktype == LINKTYPE_LINUX_SLL:
        if start + 16 > end:
            return -1
        protocol = (buf[start + 14] << 8) | buf[start + 15]
        if protocol == ETH_IPV4 or protocol == ETH_IPV6:
            return _ip_version_at(buf, start + 16, end)
        return -1
    if linktype == LINKTYPE_LINUX_SLL2:
        if start + 20 > end:
            return -1
        protocol = (buf[start] << 8) | buf[start + 1]
        if protocol == ETH_IPV4 or protocol == ETH_IPV6:
            return _ip_version_at(buf, start + 20, end)
        return -1
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, DLT_RAW_BSD):
        return _ip_version_at(buf, start, end)
    if linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if start + 4 > end:
            return -1
        if linktype == LINKTYPE_LOOP:
            family = int.from_bytes(buf[start : start + 4], "big")
        else:
            # Host byte order of the machine that captured: the small reading is the right one.
            family = min(
                int.from_bytes(buf[start : start + 4], "little"),
                int.from_bytes(buf[start : start + 4], "big"),
            )
        if family == AF_INET or family in AF_INET6:
            return _ip_version_at(buf, start + 4, end)
        return -1
    return -1
