/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Building the outer Ethernet/IPv4/UDP/VXLAN headers. */
#ifndef XLEAF_VXLAN_H
#define XLEAF_VXLAN_H

#include <linux/bpf.h>
#include <linux/in.h>
#include "csum.h"
#include "parse.h"
#include "types.h"

struct outer {
	const __u8 *smac, *dmac; /* underlay next hop */
	__be32 saddr, daddr;     /* local and remote VTEP */
	__u32 vni;
	__u32 hash;
	__u16 inner_len; /* inner Ethernet frame */
	__u8 tos;
};

/* Writes the outer headers at the start of the packet, which must already
 * have room for them. Returns 0, or -1 if the packet is too short. */
static __always_inline int vxlan_write_outer(struct xdp_md *ctx, const struct outer *o)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct vxlanhdr *vx = (void *)(udp + 1);
	__u16 udp_len = o->inner_len + sizeof(*udp) + sizeof(*vx);

	if ((void *)(vx + 1) > data_end)
		return -1;

	mac_copy(eth->h_dest, o->dmac);
	mac_copy(eth->h_source, o->smac);
	eth->h_proto = bpf_htons(ETH_P_IP);

	/* DF: a VXLAN underlay is sized for the overlay (RFC 7348 4.3). */
	*(__u8 *)ip = 0x45;
	ip->tos = o->tos;
	ip->tot_len = bpf_htons(udp_len + sizeof(*ip));
	ip->id = 0;
	ip->frag_off = bpf_htons(IP_DF);
	ip->ttl = UNDERLAY_TTL;
	ip->protocol = IPPROTO_UDP;
	ip->check = 0;
	ip->saddr = o->saddr;
	ip->daddr = o->daddr;
	ip->check = ipv4_csum(ip);

	udp->source = bpf_htons(VXLAN_SPORT_BASE | ((o->hash >> 16) & VXLAN_SPORT_MASK));
	udp->dest = bpf_htons(VXLAN_PORT);
	udp->len = bpf_htons(udp_len);
	udp->check = 0; /* allowed for IPv4 (RFC 7348 5.) */

	vx->flags = bpf_htonl(VXLAN_FLAGS_I);
	vx->vni = bpf_htonl(o->vni << 8);
	return 0;
}

#endif
