// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Benchmarks only (bench/rate_test.go, the "floor" path): the DCI
 * hairpin's packet work with no lookup at all, to show how close to the
 * redirect-only ceiling any program doing that work can come. It parses the
 * outer and inner headers as xleaf does, checks the inner checksum, hashes
 * the flow, decrements the TTL, rewrites both Ethernet headers and the outer
 * IPv4/UDP/VXLAN headers (checksum included) and redirects; everything a
 * lookup would give is a constant Go sets at load. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "types.h"
#include "parse.h"
#include "csum.h"
#include "hash.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* MACs as three halfwords: volatile element reads, so clang cannot fold
 * the zeros they start as. */
volatile const __u32 out_ifindex = 0, out_vni = 0;
volatile const __be32 out_saddr = 0, out_daddr = 0;
volatile const __u16 out_smac[3] = {}, out_dmac[3] = {}, rmac[3] = {}, remote_rmac[3] = {};

#define LOCAL(m) __u16 m##_l[3] = { m[0], m[1], m[2] }

SEC("xdp")
int floor_dci(struct xdp_md *ctx)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct ethhdr *eth = parse_eth(&c), *ieth;
	struct vxlanhdr *vx;
	struct iphdr *ip, *iip;
	struct udphdr *udp;
	LOCAL(out_smac);
	LOCAL(out_dmac);
	LOCAL(rmac);
	LOCAL(remote_rmac);
	__u32 hash;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = cursor_take(&c, sizeof(*ip));
	if (!ip || *(__u8 *)ip != 0x45 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	udp = parse_udp(&c);
	vx = udp ? parse_vxlan(&c) : NULL;
	if (!vx || vx->flags != bpf_htonl(VXLAN_FLAGS_I))
		return XDP_DROP;
	ieth = parse_eth(&c);
	if (!ieth || !mac_eq(ieth->h_dest, (const __u8 *)rmac_l))
		return XDP_DROP;
	iip = parse_ipv4(&c);
	if (!iip || !ipv4_csum_ok(ctx, iip) || iip->ttl <= 1)
		return XDP_DROP;
	hash = flow_hash(iip, c.end);

	mac_copy(ieth->h_dest, (const __u8 *)remote_rmac_l);
	mac_copy(ieth->h_source, (const __u8 *)rmac_l);
	ipv4_decrease_ttl(iip);
	mac_copy(eth->h_dest, (const __u8 *)out_dmac_l);
	mac_copy(eth->h_source, (const __u8 *)out_smac_l);
	ip->tos = iip->tos;
	ip->id = 0;
	ip->frag_off = bpf_htons(IP_DF);
	ip->ttl = UNDERLAY_TTL;
	ip->check = 0;
	ip->saddr = out_saddr;
	ip->daddr = out_daddr;
	ip->check = ipv4_csum(ip);
	udp->source = bpf_htons(VXLAN_SPORT_BASE | ((hash >> 16) & VXLAN_SPORT_MASK));
	udp->check = 0;
	vx->vni = bpf_htonl(out_vni << 8);
	return bpf_redirect(out_ifindex, 0);
}
