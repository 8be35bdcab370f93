/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMP errors for packets a VRF cannot forward (RFC 792, RFC 1812 4.3.2).
 *
 * The dropped packet's own frame is rewritten in place into the error, which
 * is then routed in the same VRF back to the packet's source, as any packet
 * the router originates in that VRF: to a local host, or in VXLAN towards
 * the source's VTEP with the VNI of the source's route (in a DCI whose sites
 * number their VNIs differently, the sender's VNI, not ours). The error
 * never leaves the VRF and never reaches the kernel. */
#ifndef XLEAF_ICMP_H
#define XLEAF_ICMP_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include "csum.h"
#include "maps.h"
#include "parse.h"
#include "stats.h"

/* Octets of the packet's data quoted after its header: RFC 792's 8, all
 * that traceroute (UDP ports) and path-MTU discovery (TCP ports) read. */
#define ICMP_QUOTE_DATA 8
/* What goes in front of the quoted packet: the error's IPv4 and ICMP
 * headers. */
#define ICMP_PREPEND (sizeof(struct iphdr) + sizeof(struct icmphdr))
#define ICMP_TTL 64
/* As Linux: the packet's TOS bits with the precedence of network control. */
#define ICMP_MAX_TYPE 18

/* Whether RFC 1812 4.3.2.7 lets a router answer this packet with an error:
 * not a later fragment, not from an address that names no single host, not
 * to a group, and not itself an ICMP error (nor of an unknown type, as
 * Linux treats those). */
static __always_inline int icmp_may_answer(const struct flow *f)
{
	const struct iphdr *ip = f->ip;
	__u8 src = ((const __u8 *)&ip->saddr)[0];
	__u8 dst = ((const __u8 *)&ip->daddr)[0];

	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return 0;
	if (src == 0 || src == 127 || src >= 224 || dst >= 224)
		return 0;
	if (ip->protocol == IPPROTO_ICMP) {
		const __u8 *type = (const void *)ip + ip->ihl * 4;

		/* Within the packet, not the frame's padding. */
		if ((const void *)(type + 1) > f->end || ip->ihl * 4 >= bpf_ntohs(ip->tot_len))
			return 0;
		if (*type > ICMP_MAX_TYPE || *type == ICMP_DEST_UNREACH ||
		    *type == ICMP_SOURCE_QUENCH || *type == ICMP_REDIRECT ||
		    *type == ICMP_TIME_EXCEEDED || *type == ICMP_PARAMETERPROB)
			return 0;
	}
	return 1;
}

/* Rewrites the frame f describes into the ICMP error err from src, and
 * points f at the error:
 *   [outer headers, if it came in VXLAN][Ethernet][IPv4][ICMP][its IPv4 header][8 octets]
 * The outer headers are left for the forwarding to rewrite or remove.
 * frame_len is the frame's length as it came (the verifier allows no
 * arithmetic on data_end). */
static __always_inline int icmp_build(struct xdp_md *ctx, struct flow *f,
				      const struct icmp_err *err, __be32 src, __u32 frame_len)
{
	__u32 off = f->encapped ? VXLAN_ENCAP_LEN : 0;
	__u32 hlen = f->ip->ihl * 4;
	__u32 data = bpf_ntohs(f->ip->tot_len) - hlen;
	__u32 data_off = (void *)f->ip + hlen - (void *)(long)ctx->data;
	__be32 dst = f->ip->saddr;
	__u8 tos = (f->ip->tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL;
	/* The quoted data, zero padded: the sum reads whole words. */
	__u16 buf[ICMP_QUOTE_DATA / 2] = {};
	__u16 smac[3], dmac[3];
	struct icmphdr *icmp;
	struct ethhdr *eth;
	struct iphdr *ip;
	void *pkt, *end;
	__u32 sum;
	int len;

	if (data > ICMP_QUOTE_DATA)
		data = ICMP_QUOTE_DATA;
	if (data && bpf_xdp_load_bytes(ctx, data_off, buf, data))
		return -1;
	/* The quoted header adds nothing to the sum: its checksum was verified
	 * on the way in, so its words sum to all ones, one's complement zero. */
	sum = buf[0] + buf[1] + buf[2] + buf[3];
	mac_copy((__u8 *)smac, f->eth->h_source);
	mac_copy((__u8 *)dmac, f->eth->h_dest);

	if (bpf_xdp_adjust_head(ctx, -(int)ICMP_PREPEND))
		return -1;
	len = off + sizeof(*eth) + ICMP_PREPEND + hlen + data;
	if (bpf_xdp_adjust_tail(ctx, len - (int)(frame_len + ICMP_PREPEND)))
		return -1;
	pkt = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = pkt + off;
	ip = (void *)(eth + 1);
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) > end)
		return -1;

	/* The forwarding sets the MACs again; these are for the reader. */
	mac_copy(eth->h_dest, (__u8 *)smac);
	mac_copy(eth->h_source, (__u8 *)dmac);
	eth->h_proto = bpf_htons(ETH_P_IP);

	*(__u8 *)ip = 0x45;
	ip->tos = tos;
	ip->tot_len = bpf_htons(ICMP_PREPEND + hlen + data);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = ICMP_TTL;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = src;
	ip->daddr = dst;
	ip->check = ipv4_csum(ip);

	icmp->type = err->type;
	icmp->code = err->code;
	icmp->checksum = 0;
	icmp->unused = 0;
	icmp->mtu = bpf_htons(err->mtu);
	sum += ((__u16 *)icmp)[0] + ((__u16 *)icmp)[2] + ((__u16 *)icmp)[3];
	icmp->checksum = csum_fold(sum);

	f->eth = eth;
	f->ip = ip;
	f->end = end;
	return 0;
}

#endif
