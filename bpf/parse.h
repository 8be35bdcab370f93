/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Bounds-checked header parsers. A cursor walks the packet; every parser
 * returns NULL when the header does not fit, and moves past it otherwise. */
#ifndef XLEAF_PARSE_H
#define XLEAF_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

struct cursor {
	void *pos;
	void *end;
};

struct vxlanhdr {
	__be32 flags;
	__be32 vni; /* VNI in the upper 24 bits, low byte reserved */
};

/* Outer (or inner) Ethernet + IPv4 + UDP + VXLAN + inner Ethernet. */
#define VXLAN_ENCAP_LEN \
	(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + \
	 sizeof(struct vxlanhdr))

/* The inner packet being routed. Everything the egress needs is read
 * before a head adjustment invalidates packet pointers. */
struct flow {
	__u32 vrf; /* where it is looked up (the ingress VRF) */
	int encapped; /* arrived in VXLAN: outer headers are in front */
	struct ethhdr *eth;
	struct iphdr *ip;    /* IPv4: its header */
	struct ipv6hdr *ip6; /* IPv6: its fixed header (ip is NULL) */
	void *end;
};

/* ICMP (RFC 792): linux/icmp.h pulls in libc headers BPF cannot build. */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu; /* fragmentation needed: the next hop's (RFC 1191) */
};

#define ICMP_DEST_UNREACH 3
#define ICMP_NET_UNREACH 0
#define ICMP_FRAG_NEEDED 4
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_TIME_EXCEEDED 11
#define ICMP_EXC_TTL 0
#define ICMP_PARAMETERPROB 12

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

static __always_inline void *cursor_take(struct cursor *c, __u32 len)
{
	void *hdr = c->pos;

	if (hdr + len > c->end)
		return NULL;
	c->pos = hdr + len;
	return hdr;
}

static __always_inline struct ethhdr *parse_eth(struct cursor *c)
{
	return cursor_take(c, sizeof(struct ethhdr));
}

static __always_inline struct udphdr *parse_udp(struct cursor *c)
{
	return cursor_take(c, sizeof(struct udphdr));
}

static __always_inline struct vxlanhdr *parse_vxlan(struct cursor *c)
{
	return cursor_take(c, sizeof(struct vxlanhdr));
}

/* An IPv4 header we can route: version 4, a length that fits the frame,
 * options included. The cursor ends after the options. */
static __always_inline struct iphdr *parse_ipv4(struct cursor *c)
{
	struct iphdr *ip = cursor_take(c, sizeof(*ip));
	__u32 hlen, tot;

	if (!ip || ip->version != 4 || ip->ihl < 5)
		return NULL;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || (void *)ip + tot > c->end)
		return NULL;
	if (!cursor_take(c, hlen - sizeof(*ip)))
		return NULL;
	return ip;
}

/* An IPv6 packet we can route: version 6, a payload that fits the frame.
 * Extension headers are not parsed: the fixed header is all the routing
 * needs (hop-by-hop options are not acted on, as Linux forwards them). */
static __always_inline struct ipv6hdr *parse_ipv6(struct cursor *c)
{
	struct ipv6hdr *ip6 = cursor_take(c, sizeof(*ip6));

	if (!ip6 || ip6->version != 6)
		return NULL;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > c->end)
		return NULL;
	return ip6;
}

/* Link-local (fe80::/10) or multicast (ff00::/8): an address whose packets
 * stay on their link or are not routed by us. */
static __always_inline int ipv6_link_scoped(const struct in6_addr *a)
{
	__u8 b0 = a->s6_addr[0], b1 = a->s6_addr[1];

	return b0 == 0xff || (b0 == 0xfe && (b1 & 0xc0) == 0x80);
}

static __always_inline int ipv6_unspecified(const struct in6_addr *a)
{
	return !(a->s6_addr32[0] | a->s6_addr32[1] | a->s6_addr32[2] | a->s6_addr32[3]);
}

/* The traffic class, for the outer header's TOS. */
static __always_inline __u8 ipv6_tclass(const struct ipv6hdr *ip6)
{
	return ip6->priority << 4 | ip6->flow_lbl[0] >> 4;
}

static __always_inline int ipv4_is_fragment(const struct iphdr *ip)
{
	return ip->frag_off & bpf_htons(IP_MF | IP_OFFSET);
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

/* Halfword moves: a MAC sits at an even offset everywhere (packet, maps,
 * struct bpf_fib_lookup on the stack), and the stack demands alignment. */
static __always_inline void mac_copy(__u8 *dst, const __u8 *src)
{
	((__u16 *)dst)[0] = ((const __u16 *)src)[0];
	((__u16 *)dst)[1] = ((const __u16 *)src)[1];
	((__u16 *)dst)[2] = ((const __u16 *)src)[2];
}

#endif
