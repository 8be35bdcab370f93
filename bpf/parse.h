/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Bounds-checked header parsers. A cursor walks the packet; every parser
 * returns NULL when the header does not fit, and moves past it otherwise. */
#ifndef XLEAF_PARSE_H
#define XLEAF_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
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
	struct iphdr *ip;
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
