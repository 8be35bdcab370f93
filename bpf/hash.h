/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow hash of the inner packet: picks the ECMP slot and the outer UDP
 * source port. The Go model (dataplane/model.go) computes the same. */
#ifndef XLEAF_HASH_H
#define XLEAF_HASH_H

#include <linux/in.h>
#include <linux/ip.h>
#include "parse.h"

/* murmur3's finalizer: every input bit moves every output bit, so the low
 * bits (slot) and the high bits (source port) are both well spread. */
static __always_inline __u32 mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* 5-tuple for TCP/UDP/SCTP, 3-tuple for fragments and other protocols (a
 * later fragment carries no ports, and all fragments must take one path). */
static __always_inline __u32 flow_hash(const struct iphdr *ip, const void *end)
{
	__u32 ports = 0;

	if (!ipv4_is_fragment(ip) &&
	    (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP ||
	     ip->protocol == IPPROTO_SCTP)) {
		const __u32 *l4 = (const void *)ip + ip->ihl * 4;

		if ((const void *)(l4 + 1) <= end)
			ports = *l4;
	}
	return mix32(ip->saddr ^ mix32(ip->daddr ^ mix32(ports ^ ip->protocol)));
}

/* IPv6: the same mix of the addresses (each folded to 32 bits), and the
 * ports when the next header is TCP, UDP or SCTP; for any other (extension
 * headers, fragments, ICMPv6) the flow label instead, which a sender sets
 * per flow (RFC 6437) and every fragment repeats. */
static __always_inline __u32 flow_hash6(const struct ipv6hdr *ip6, const void *end)
{
	const __u32 *s = ip6->saddr.in6_u.u6_addr32, *d = ip6->daddr.in6_u.u6_addr32;
	__u32 ports;

	if (ip6->nexthdr == IPPROTO_TCP || ip6->nexthdr == IPPROTO_UDP ||
	    ip6->nexthdr == IPPROTO_SCTP) {
		const __u32 *l4 = (const void *)(ip6 + 1);

		ports = (const void *)(l4 + 1) <= end ? *l4 : 0;
	} else {
		ports = *(const __u32 *)ip6 & bpf_htonl(0x000fffff);
	}
	return mix32((s[0] ^ s[1] ^ s[2] ^ s[3]) ^
		     mix32((d[0] ^ d[1] ^ d[2] ^ d[3]) ^ mix32(ports ^ ip6->nexthdr)));
}

#endif
