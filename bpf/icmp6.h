/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMPv6 errors for IPv6 packets a VRF cannot forward (RFC 4443), built and
 * routed as icmp.h does IPv4's: the dropped packet's frame becomes the
 * error, from the VRF's IPv6 address, and is routed in the same VRF back
 * to the packet's source. Destination unreachable (no route), packet too
 * big (IPv6 is never fragmented on the way: the sender must learn the
 * path's MTU), time exceeded (hop limit). */
#ifndef XLEAF_ICMP6_H
#define XLEAF_ICMP6_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include "csum.h"
#include "maps.h"
#include "parse.h"
#include "stats.h"

#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_NOROUTE 0
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_EXC_HOPLIMIT 0
/* Types below this are errors, never answered (RFC 4443 2.4 e). */
#define ICMPV6_INFO_MIN 128
#define ICMP6_HOP_LIMIT 64

/* ICMPv6's header: type, code, checksum, then the word an error uses
 * (packet too big: the MTU; the others: unused). */
struct icmp6_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 word;
};

#define ICMP6_PREPEND (sizeof(struct ipv6hdr) + sizeof(struct icmp6_hdr))

/* Whether RFC 4443 2.4 (e) lets us answer the packet: not an ICMPv6 error
 * itself. Its addresses are unicast already (classify_ipv6). A packet whose
 * next header is an extension header is not answered: what follows it is
 * not looked at, and could be an error. */
static __always_inline int icmp6_may_answer(const struct flow *f)
{
	const struct ipv6hdr *ip6 = f->ip6;
	__u8 nh = ip6->nexthdr;

	if (nh == IPPROTO_ICMPV6) {
		const __u8 *type = (const void *)(ip6 + 1);

		/* Within the packet, not the frame's padding. */
		if ((const void *)(type + 1) > f->end || !ip6->payload_len)
			return 0;
		return *type >= ICMPV6_INFO_MIN;
	}
	return !(nh == 0 || nh == 43 || nh == 44 || nh == 50 || nh == 51 || nh == 60 ||
		 nh == 135 || nh == 139 || nh == 140 || nh == 253 || nh == 254);
}

/* Rewrites the frame f describes into the ICMPv6 error err from src, and
 * points f at the error:
 *   [outer headers, if it came in VXLAN][Ethernet][IPv6][ICMPv6][the packet, up to 1232 bytes]
 * The quoted packet stays where it is; the new headers go in front of it,
 * the outer ones are left for the forwarding to rewrite or remove. Its
 * checksum covers the quote too: summed from a per-CPU copy, since the
 * verifier follows no packet read of variable length. */
static __always_inline int icmp6_build(struct xdp_md *ctx, struct flow *f, const struct icmp_err *err,
				       const __u8 *src, __u32 frame_len)
{
	__u32 off = f->encapped ? VXLAN_ENCAP_LEN : 0;
	__u32 quote = sizeof(struct ipv6hdr) + bpf_ntohs(f->ip6->payload_len);
	__u32 ip_off = (void *)f->ip6 - (void *)(long)ctx->data;
	__u32 zero = 0, n, c1, c2, c3;
	struct icmp6_scratch *s = bpf_map_lookup_elem(&icmp6_scratch, &zero);
	/* The pseudo-header (RFC 8200 8.1) and the ICMPv6 header, summed with
	 * the quote: source, destination, length, next header, then type,
	 * code, zero checksum, word. */
	struct {
		__u8 src[16];
		__u8 dst[16];
		__be32 len;
		__be32 next;
		struct icmp6_hdr h;
	} ph = {};
	__u16 smac[3], dmac[3];
	struct icmp6_hdr *icmp;
	struct ipv6hdr *ip6;
	struct ethhdr *eth;
	void *pkt, *end;
	__s64 sum;
	int len;

	if (!s)
		return -1;
	if (quote > ICMP6_QUOTE_MAX)
		quote = ICMP6_QUOTE_MAX;
	__builtin_memcpy(ph.src, src, sizeof(ph.src));
	__builtin_memcpy(ph.dst, &f->ip6->saddr, sizeof(ph.dst));
	ph.len = bpf_htonl(sizeof(struct icmp6_hdr) + quote);
	ph.next = bpf_htonl(IPPROTO_ICMPV6);
	ph.h.type = err->type;
	ph.h.code = err->code;
	if (err->type == ICMPV6_PKT_TOOBIG)
		ph.h.word = bpf_htonl(err->mtu);

	/* The quote's sum, zero padded to whole words, in at most three
	 * pieces (bpf_csum_diff takes 512 bytes at once). */
	*(__u32 *)&s->b[quote & ~3u] = 0;
	if (bpf_xdp_load_bytes(ctx, ip_off, s->b, quote))
		return -1;
	/* Masks the verifier can follow: 0..1023, 0..1023, 0..255. */
	n = (quote + 3) & ~3u;
	c1 = (n > 512 ? 512 : n) & 0x3fc;
	c2 = (n > 1024 ? 512 : n > 512 ? n - 512 : 0) & 0x3fc;
	c3 = (n > 1024 ? n - 1024 : 0) & 0xfc;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)s->b, c1, 0);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&s->b[512], c2, sum);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&s->b[1024], c3, sum);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), sum);
	if (sum < 0)
		return -1;

	mac_copy((__u8 *)smac, f->eth->h_source);
	mac_copy((__u8 *)dmac, f->eth->h_dest);
	if (bpf_xdp_adjust_head(ctx, -(int)ICMP6_PREPEND))
		return -1;
	len = off + sizeof(*eth) + ICMP6_PREPEND + quote;
	if (bpf_xdp_adjust_tail(ctx, len - (int)(frame_len + ICMP6_PREPEND)))
		return -1;
	pkt = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = pkt + off;
	ip6 = (void *)(eth + 1);
	icmp = (void *)(ip6 + 1);
	if ((void *)(icmp + 1) > end)
		return -1;

	/* The forwarding sets the MACs again; these are for the reader. */
	mac_copy(eth->h_dest, (__u8 *)smac);
	mac_copy(eth->h_source, (__u8 *)dmac);
	eth->h_proto = bpf_htons(ETH_P_IPV6);

	*(__be32 *)ip6 = bpf_htonl(0x60000000); /* version 6, class 0, no flow label */
	ip6->payload_len = bpf_htons(sizeof(*icmp) + quote);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = ICMP6_HOP_LIMIT;
	__builtin_memcpy(&ip6->saddr, ph.src, sizeof(ph.src));
	__builtin_memcpy(&ip6->daddr, ph.dst, sizeof(ph.dst));

	icmp->type = ph.h.type;
	icmp->code = ph.h.code;
	icmp->word = ph.h.word;
	icmp->checksum = csum_fold((__u32)sum);

	f->eth = eth;
	f->ip6 = ip6;
	f->end = end;
	return 0;
}

#endif
