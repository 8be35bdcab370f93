// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xleaf's XDP program: parse -> classify -> forward -> one exit.
 *
 * Uplinks carry VXLAN from the fabric: a packet for one of our VTEPs is
 * decapsulated into the VRF of its L3VNI. Access interfaces carry tenant
 * traffic of one VRF. Either way the inner IPv4 or IPv6 packet is routed in
 * its VRF, whose routes may lead into other VRFs (leaking), and leaves
 * encapsulated with the route's own VNI or delivered to a local host; an
 * IPv4 packet it cannot forward may be answered with an ICMP error, routed
 * back the same way.
 * Anything that is not ours goes to the kernel untouched: the control plane
 * must never break. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "types.h"
#include "maps.h"
#include "trace.h"
#include "parse.h"
#include "stats.h"
#include "forward.h"
#include "icmp.h"


char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Types that only Go reads (events, enums) reach BTF, and so bpf2go, only
 * through a global; the pointer costs nothing at run time. */
struct go_types {
	struct event event;
	enum reason reason;
	enum route_kind route_kind;
	enum iface_role iface_role;
	enum event_kind event_kind;
	struct trace_log trace_log;
	enum trace_kind trace_kind;
	enum trace_vni trace_vni;
	enum trace_underlay trace_underlay;
	struct lpm6_key lpm6_key;
	struct neigh6_key neigh6_key;
};
const struct go_types *go_types __attribute__((unused));

/* The ingress interface's role, VRF and MAC: from the array if its index
 * is in it, else from the hash. */
static __always_inline struct iface *iface_of(__u32 ifindex)
{
	if (ifindex < IFACE_INDEX_MAX) {
		struct iface *i = bpf_map_lookup_elem(&iface_index, &ifindex);

		if (i && i->role)
			return i;
	}
	return bpf_map_lookup_elem(&ifaces, &ifindex);
}

/* Classifying returns this when the flow is ready to be routed: an IPv4
 * packet, or an IPv6 one. */
#define ROUTE_IT -1
#define ROUTE_IT6 -2

/* An IPv6 packet in vrf, whose cursor is at its header: routable unless an
 * address of it is one a router does not route. On an access port, the
 * link's own traffic (ND, RS/RA, MLD: anything to fe80::/10 or ff00::/8,
 * or from fe80::/10 or ::, as a host's unicast NUD probe to our address
 * is) is the kernel's, as ARP is; Linux's ip6_forward routes nothing
 * from or to a link-local address (the lab checks the leafs' kernels
 * forward no tenant packet). In VXLAN it is
 * dropped: the fabric routes, it is no link. */
static __always_inline int classify_ipv6(struct verdict *v, struct flow *f, struct cursor *c,
					 const struct vrf *vrf, const struct vrf **vrfp)
{
	f->ip6 = parse_ipv6(c);
	if (!f->ip6)
		return decide(v, f->vrf, REASON_DROP_MALFORMED, XDP_DROP);
	if (ipv6_link_scoped(&f->ip6->daddr) || ipv6_link_scoped(&f->ip6->saddr) ||
	    ipv6_unspecified(&f->ip6->saddr)) {
		if (!f->encapped)
			return decide(v, 0, REASON_PASS, XDP_PASS);
		return decide(v, f->vrf, REASON_DROP_SCOPE, XDP_DROP);
	}
	if (!vrf || !vrf->vni)
		return decide(v, f->vrf, REASON_DROP_NO_VRF, XDP_DROP);
	if (!f->encapped) /* from VXLAN, traced at its VNI */
		TRACE(TRACE_VRF, f->vrf, vrf->vni, vrf->vtep);
	*vrfp = vrf;
	return ROUTE_IT6;
}

static __always_inline int from_uplink(struct xdp_md *ctx, struct verdict *v,
				       const struct iface *ifc, struct flow *f,
				       const struct vrf **vrfp)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct ethhdr *eth = parse_eth(&c);
	struct vxlanhdr *vx;
	struct udphdr *udp;
	struct iphdr *ip;
	struct vrf *vrf;
	__u32 vni, *vrf_id;

	f->encapped = 1;
	f->end = c.end;

	/* Outer: only unfragmented, option-less IPv4/UDP to our VTEP port is
	 * VXLAN for us; the kernel gets the rest (BGP, ARP, ND, ...). An IPv4
	 * frame to us cut inside its IPv4 header, or a datagram to our VTEP
	 * cut inside its UDP header, is garbage to the kernel too: counted
	 * here, and dropped. */
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP) || !mac_eq(eth->h_dest, ifc->mac))
		return decide(v, 0, REASON_PASS, XDP_PASS);
	ip = cursor_take(&c, sizeof(*ip));
	if (!ip)
		return decide(v, 0, REASON_DROP_MALFORMED, XDP_DROP);
	if (*(__u8 *)ip != 0x45 || ip->protocol != IPPROTO_UDP || ipv4_is_fragment(ip))
		return decide(v, 0, REASON_PASS, XDP_PASS);
	udp = parse_udp(&c);
	vx = udp ? parse_vxlan(&c) : NULL;

	/* The usual packet, well-formed VXLAN to one of our VTEPs with a VNI
	 * of ours, finds its VRF in two array loads; anything else takes the
	 * checks below, in their order, to learn whether it is ours at all
	 * and why it is dropped. vni_index only points: the VRF's own entry
	 * decides (a VNI sharing its low bits with the indexed one, or a VRF
	 * being changed, fails the check and takes the checks below). */
	if (vx && udp->dest == bpf_htons(VXLAN_PORT) && vx->flags == bpf_htonl(VXLAN_FLAGS_I) &&
	    !(vx->vni & bpf_htonl(0xff))) {
		__u32 pos = (bpf_ntohl(vx->vni) >> 8) & (VNI_INDEX - 1);
		__u32 *id = bpf_map_lookup_elem(&vni_index, &pos);

		vni = bpf_ntohl(vx->vni) >> 8;
		if (id) {
			f->vrf = *(volatile __u32 *)id;
			vrf = bpf_map_lookup_elem(&vrfs, &f->vrf);
			if (vrf && vni && vrf->vni == vni && vrf->vtep == ip->daddr) {
				TRACE(TRACE_VXLAN, ip->daddr, vni, TRACE_VNI_INDEX);
				goto known;
			}
		}
	}
	if (!bpf_map_lookup_elem(&vteps, &ip->daddr))
		return decide(v, 0, REASON_PASS, XDP_PASS);
	if (!udp)
		return decide(v, 0, REASON_DROP_MALFORMED, XDP_DROP);
	if (udp->dest != bpf_htons(VXLAN_PORT))
		return decide(v, 0, REASON_PASS, XDP_PASS);
	if (!vx)
		return decide(v, 0, REASON_DROP_MALFORMED, XDP_DROP);
	if (vx->flags != bpf_htonl(VXLAN_FLAGS_I) || (vx->vni & bpf_htonl(0xff)))
		return decide(v, 0, REASON_DROP_BAD_VXLAN, XDP_DROP);
	vni = bpf_ntohl(vx->vni) >> 8;
	vrf_id = bpf_map_lookup_elem(&vni_vrf, &vni);
	if (!vrf_id)
		return decide(v, 0, REASON_DROP_UNKNOWN_VNI, XDP_DROP);
	f->vrf = *vrf_id;
	vrf = bpf_map_lookup_elem(&vrfs, &f->vrf);
	if (!vrf || !vrf->vni)
		return decide(v, f->vrf, REASON_DROP_UNKNOWN_VNI, XDP_DROP);
	TRACE(TRACE_VXLAN, ip->daddr, vni, TRACE_VNI_HASH);
known:
	TRACE(TRACE_VRF, f->vrf, vrf->vni, vrf->vtep);

	f->eth = parse_eth(&c);
	if (!f->eth)
		return decide(v, f->vrf, REASON_DROP_MALFORMED, XDP_DROP);
	/* Symmetric IRB: routed traffic is addressed to our router MAC. */
	if (!mac_eq(f->eth->h_dest, vrf->rmac))
		return decide(v, f->vrf, REASON_DROP_BAD_RMAC, XDP_DROP);
	if (f->eth->h_proto != bpf_htons(ETH_P_IP)) {
		if (f->eth->h_proto == bpf_htons(ETH_P_IPV6))
			return classify_ipv6(v, f, &c, vrf, vrfp);
		return decide(v, f->vrf, REASON_DROP_UNSUPPORTED, XDP_DROP);
	}
	f->ip = parse_ipv4(&c);
	if (!f->ip)
		return decide(v, f->vrf, REASON_DROP_MALFORMED, XDP_DROP);
	if (!ipv4_csum_ok(ctx, f->ip))
		return decide(v, f->vrf, REASON_DROP_BAD_CSUM, XDP_DROP);
	*vrfp = vrf;
	return ROUTE_IT;
}

static __always_inline int from_access(struct xdp_md *ctx, struct verdict *v,
				       const struct iface *ifc, struct flow *f,
				       const struct vrf **vrfp)
{
	struct cursor c = { (void *)(long)ctx->data, (void *)(long)ctx->data_end };
	struct vrf *vrf;

	f->vrf = ifc->vrf;
	f->encapped = 0;
	f->end = c.end;

	/* ARP, tagged frames and frames for other MACs: the kernel's. */
	f->eth = parse_eth(&c);
	if (!f->eth || (f->eth->h_proto != bpf_htons(ETH_P_IP) &&
			f->eth->h_proto != bpf_htons(ETH_P_IPV6)))
		return decide(v, 0, REASON_PASS, XDP_PASS);
	vrf = bpf_map_lookup_elem(&vrfs, &f->vrf);
	if (!mac_eq(f->eth->h_dest, ifc->mac) && !(vrf && mac_eq(f->eth->h_dest, vrf->rmac)))
		return decide(v, 0, REASON_PASS, XDP_PASS);
	if (f->eth->h_proto == bpf_htons(ETH_P_IPV6))
		return classify_ipv6(v, f, &c, vrf, vrfp);
	if (!vrf || !vrf->vni)
		return decide(v, f->vrf, REASON_DROP_NO_VRF, XDP_DROP);
	TRACE(TRACE_VRF, f->vrf, vrf->vni, vrf->vtep);
	/* Options are routed like any packet (and carried as they are, as
	 * from VXLAN): passing them up would let a tenant reach the default
	 * VRF's own addresses through the kernel. */
	f->ip = parse_ipv4(&c);
	if (!f->ip)
		return decide(v, f->vrf, REASON_DROP_MALFORMED, XDP_DROP);
	if (!ipv4_csum_ok(ctx, f->ip))
		return decide(v, f->vrf, REASON_DROP_BAD_CSUM, XDP_DROP);
	*vrfp = vrf;
	return ROUTE_IT;
}

/* The packet f describes was dropped for a reason its source should hear
 * of: rewrite it into the ICMP error (ICMPv6, if v6), if it may be
 * answered, the VRF has an address of the family to send from and a token
 * in this CPU's bucket (one rate for both families). Returns the VRF's
 * tally for the error, or NULL when there is none to send. */
static __always_inline struct icmp_budget *answer(struct xdp_md *ctx, const struct verdict *v,
						  struct flow *f, const int v6)
{
	struct vrf_icmp *cfg = bpf_map_lookup_elem(&vrf_icmp, &f->vrf);
	struct vrf_icmp6 *src6 = NULL;
	struct icmp_budget *b;
	int err;

	if (!cfg || !cfg->ns_per_token)
		return NULL;
	if (v6) {
		src6 = bpf_map_lookup_elem(&vrf_icmp6, &f->vrf);
		if (!src6 || ipv6_unspecified((struct in6_addr *)src6->src) || !icmp6_may_answer(f))
			return NULL;
	} else if (!cfg->src || !icmp_may_answer(f)) {
		return NULL;
	}
	b = bpf_map_lookup_elem(&icmp_budget, &f->vrf);
	if (!b)
		return NULL;
	/* Explaining, the rate limit always has a token: it shows the error
	 * that is sent when the limit allows. */
#ifndef XLEAF_TRACE
	if (!bucket_take(&b->tokens, &b->last, cfg->burst, cfg->ns_per_token)) {
		b->suppressed++;
		return NULL;
	}
#endif
	TRACE(TRACE_ICMP, v->icmp.type, v->icmp.code, v->icmp.mtu);
	if (v6)
		err = icmp6_build(ctx, f, &v->icmp, src6->src, v->bytes);
	else
		err = icmp_build(ctx, f, &v->icmp, cfg->src, v->bytes);
	if (err) {
		b->unroutable++;
		return NULL;
	}
	return b;
}

/* Routes the flow; a packet dropped with an error to send comes round once
 * more as that error, routed like any packet from its VRF. The packet stays
 * counted under its drop reason, the error is tallied in icmp_budget. An
 * error is never answered, and one that cannot be forwarded (no route back,
 * its host not resolved, or back to ourselves) is dropped. A loop, not a
 * second call: route() is inlined once. */
static __always_inline int route_or_answer(struct xdp_md *ctx, struct verdict *v,
					   struct flow *f, const struct vrf *vrf, const int v6)
{
	struct icmp_budget *b = NULL;
	struct verdict reply = {};
	struct verdict *cur = v;
	int action = XDP_DROP;

#pragma clang loop unroll(disable)
	for (int pass = 0; pass < 2; pass++) {
		action = v6 ? route6(ctx, cur, f, vrf) : route(ctx, cur, f, vrf);
		if (b || !v->icmp.type)
			break;
		b = answer(ctx, v, f, v6);
		if (!b)
			return XDP_DROP;
		cur = &reply;
	}
	if (!b)
		return action;
	if (reply.reason != REASON_FWD_REMOTE && reply.reason != REASON_FWD_LOCAL) {
		b->unroutable++;
		return XDP_DROP;
	}
	b->sent++;
	return action;
}

SEC("xdp")
int xleaf(struct xdp_md *ctx)
{
	struct verdict v = { .bytes = ctx->data_end - ctx->data };
	__u32 ifindex = ctx->ingress_ifindex;
	struct iface *ifc = iface_of(ifindex);
	const struct vrf *vrf = NULL;
	struct flow f = {};
	int action;

	TRACE(TRACE_INGRESS, ifindex, ifc ? ifc->role : 0, ifc ? ifc->vrf : 0);
	if (!ifc)
		action = decide(&v, 0, REASON_PASS, XDP_PASS);
	else if (ifc->role == IFACE_UPLINK)
		action = from_uplink(ctx, &v, ifc, &f, &vrf);
	else
		action = from_access(ctx, &v, ifc, &f, &vrf);
	if (action == ROUTE_IT && vrf)
		action = route_or_answer(ctx, &v, &f, vrf, 0);
	else if (action == ROUTE_IT6 && vrf)
		action = route_or_answer(ctx, &v, &f, vrf, 1);
	count(&v);
	return action;
}
#ifndef XLEAF_TRACE
#include "lookup.h"
#endif
