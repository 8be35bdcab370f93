/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The forwarding decision: a VRF's LPM lookup, then encapsulate towards a
 * remote VTEP or deliver to a local host, in this VRF or a leaked one. */
#ifndef XLEAF_FORWARD_H
#define XLEAF_FORWARD_H

#include <linux/bpf.h>
#include <linux/socket.h>
#include "fib.h"
#include "hash.h"
#include "maps.h"
#include "stats.h"
#include "vxlan.h"
#include "trace.h"
#include "icmp6.h"

/* Takes one event from this CPU's budget; false when it is spent. */
static __always_inline int event_allowed(void)
{
	__u32 zero = 0;
	struct event_budget *b = bpf_map_lookup_elem(&event_budget, &zero);

	if (!b)
		return 0;
	if (!bucket_take(&b->tokens, &b->last, EVENT_BURST, EVENT_NS_PER_TOKEN)) {
		b->suppressed++;
		return 0;
	}
	return 1;
}

static __always_inline void notify(__u32 kind, __u32 vrf, __u32 ifindex,
				   __u32 family, const __be32 *addr)
{
#ifdef XLEAF_TRACE
	TRACE(TRACE_EVENT, kind, vrf, addr[0]);
	return;
#endif
	if (!event_allowed())
		return;
	struct event ev = {
		.kind = kind,
		.vrf = vrf,
		.ifindex = ifindex,
		.family = family,
	};

	__builtin_memcpy(ev.addr, addr, sizeof(ev.addr));
	bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
}

static __always_inline int redirect(struct xdp_md *ctx, __u32 ifindex)
{
	/* Hairpin out of the interface it came in on: XDP_TX is cheaper. */
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

#ifndef AF_INET6
#define AF_INET6 10
#endif

/* forward_remote and forward_local serve both families: v6 is a constant
 * at every call, so each inlined copy keeps only its own family's code. */
static __always_inline int forward_remote(struct xdp_md *ctx, struct verdict *v,
					  const struct flow *f, const struct vrf *vrf,
					  __u32 nhg_id, const int v6)
{
	struct bpf_fib_lookup fib;
	struct nhg *g = bpf_map_lookup_elem(&nhgs, &nhg_id);
	struct nexthop *nh;
	struct egress e;
	struct outer o;
	__u32 hash;
	__u8 idx;
	int rc;

	if (!g || !g->members)
		return decide(v, f->vrf, REASON_DROP_BAD_NEXTHOP, XDP_DROP);
	hash = v6 ? flow_hash6(f->ip6, f->end) : flow_hash(f->ip, f->end);
	idx = g->slot[hash & (NHG_SLOTS - 1)];
	if (idx >= MAX_ECMP || idx >= g->members)
		return decide(v, f->vrf, REASON_DROP_BAD_NEXTHOP, XDP_DROP);
	nh = &g->member[idx];
	TRACE(TRACE_GROUP, nhg_id, g->members, hash);
	TRACE(TRACE_MEMBER, idx, nh->vtep, nh->vni);

	o.inner_len = f->end - (void *)f->eth;
	o.tos = v6 ? ipv6_tclass(f->ip6) : f->ip->tos;
	o.hash = hash;
	o.saddr = vrf->vtep;
	o.daddr = nh->vtep;
	o.vni = nh->vni;

	rc = underlay_egress(ctx, &fib, &o, &e);
	/* Too big once encapsulated: the sender learns the inner packet's
	 * limit, the underlay's MTU less the VXLAN overhead. No fragmenting
	 * here: a packet without DF is dropped, counted. IPv6 is never
	 * fragmented on the way: its sender always learns the limit. */
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		if (e.mtu <= VXLAN_ENCAP_LEN)
			return decide(v, f->vrf, REASON_DROP_MTU, XDP_DROP);
		if (v6)
			return drop_answer(v, f->vrf, REASON_DROP_MTU, ICMPV6_PKT_TOOBIG, 0, e.mtu - VXLAN_ENCAP_LEN);
		if (!(f->ip->frag_off & bpf_htons(IP_DF)) || e.mtu <= VXLAN_ENCAP_LEN)
			return decide(v, f->vrf, REASON_DROP_MTU, XDP_DROP);
		return drop_answer(v, f->vrf, REASON_DROP_MTU, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED,
				   e.mtu - VXLAN_ENCAP_LEN);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		notify(EVENT_UNDERLAY_MISS, f->vrf, fib.ifindex, fib.family, fib.ipv6_dst);
		return decide(v, f->vrf, REASON_DROP_UNDERLAY_NEIGH, XDP_DROP);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return decide(v, f->vrf, REASON_DROP_NO_UNDERLAY, XDP_DROP);
	o.smac = e.smac;
	o.dmac = e.dmac;

	mac_copy(f->eth->h_dest, nh->rmac);
	mac_copy(f->eth->h_source, vrf->rmac);
	if (v6)
		f->ip6->hop_limit--;
	else
		ipv4_decrease_ttl(f->ip);

	/* A VXLAN packet re-encapsulated (leaked across sites or VRFs) reuses
	 * its outer headers in place; a tenant packet needs room for them. */
	if (!f->encapped && bpf_xdp_adjust_head(ctx, -(int)VXLAN_ENCAP_LEN))
		return decide(v, f->vrf, REASON_DROP_ERROR, XDP_DROP);
	if (vxlan_write_outer(ctx, &o))
		return decide(v, f->vrf, REASON_DROP_ERROR, XDP_DROP);
	v->to = nh->col;
	return decide(v, f->vrf, REASON_FWD_REMOTE, redirect(ctx, e.ifindex));
}

/* The attached host f is for, in host_vrf's neighbours of f's family. */
static __always_inline struct neigh *host_of(const struct flow *f, __u32 host_vrf, const int v6)
{
	struct neigh *n;

	if (v6) {
		struct neigh6_key key6 = { .vrf = host_vrf };

		__builtin_memcpy(key6.addr, &f->ip6->daddr, sizeof(key6.addr));
		n = bpf_map_lookup_elem(&neighs6, &key6);
		TRACE(TRACE_NEIGH, host_vrf, f->ip6->daddr.in6_u.u6_addr32[3], n ? n->ifindex : 0);
		if (!n)
			notify(EVENT_NEIGH_MISS, host_vrf, 0, AF_INET6, (const __be32 *)key6.addr);
	} else {
		struct neigh_key key = { .vrf = host_vrf, .addr = f->ip->daddr };

		n = bpf_map_lookup_elem(&neighs, &key);
		TRACE(TRACE_NEIGH, host_vrf, key.addr, n ? n->ifindex : 0);
		if (!n)
			notify(EVENT_NEIGH_MISS, host_vrf, 0, AF_INET, &key.addr);
	}
	return n;
}

static __always_inline int forward_local(struct xdp_md *ctx, struct verdict *v,
					 const struct flow *f, __u32 host_vrf, const int v6)
{
	struct neigh *n = host_of(f, host_vrf, v6);
	__s32 len_diff = f->encapped ? -(int)VXLAN_ENCAP_LEN : 0;
	__u32 mtu = 0;
	long rc;

	if (!n)
		return decide(v, f->vrf, REASON_DROP_NO_NEIGH, XDP_DROP);
	rc = bpf_check_mtu(ctx, n->ifindex, &mtu, len_diff, 0);
	if (rc < 0)
		return decide(v, f->vrf, REASON_DROP_ERROR, XDP_DROP);
	if (rc != BPF_MTU_CHK_RET_SUCCESS) {
		if (v6)
			return drop_answer(v, f->vrf, REASON_DROP_MTU, ICMPV6_PKT_TOOBIG, 0, mtu);
		if (!(f->ip->frag_off & bpf_htons(IP_DF)))
			return decide(v, f->vrf, REASON_DROP_MTU, XDP_DROP);
		return drop_answer(v, f->vrf, REASON_DROP_MTU, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu);
	}

	mac_copy(f->eth->h_dest, n->mac);
	mac_copy(f->eth->h_source, n->smac);
	if (v6)
		f->ip6->hop_limit--;
	else
		ipv4_decrease_ttl(f->ip);

	if (f->encapped && bpf_xdp_adjust_head(ctx, VXLAN_ENCAP_LEN))
		return decide(v, f->vrf, REASON_DROP_ERROR, XDP_DROP);
	v->to = host_vrf;
	return decide(v, f->vrf, REASON_FWD_LOCAL, redirect(ctx, n->ifindex));
}

/* Longest-prefix match in a VRF's compiled FIB: at most three dependent
 * array loads (16 and 8 bits of the address, then the last 8 bits in a
 * 256-entry chunk or a range chunk). Returns the entry: 0 for no route. */
static __always_inline __u32 fib_lookup(__u32 vrf, __be32 daddr)
{
	__u32 a = bpf_ntohl(daddr), idx = a >> 24, e, b, n = 0;
	void *l1 = bpf_map_lookup_elem(&fib_vrfs, &vrf);
	struct fib_chunk *c;
	struct fib_small *s;
	__u8 *start;

	if (!l1)
		return 0;
	c = bpf_map_lookup_elem(l1, &idx);
	if (!c)
		return 0;
	e = c->e[(a >> 16) & 0xff];
	if (!(e & FIB_CHUNK))
		return e;
	idx = e & ~FIB_CHUNK;
	c = bpf_map_lookup_elem(&fib_chunks, &idx);
	if (!c)
		return 0;
	e = c->e[(a >> 8) & 0xff];
	if (!(e & FIB_CHUNK))
		return e;
	idx = e & ~(FIB_CHUNK | FIB_RANGES);
	b = a & 0xff;
	if (e & FIB_RANGES) {
		/* The address's run: how many of starts 1..11 are at or below
		 * it (unused slots repeat the last run). Counted without a
		 * branch (b - start is negative, as 32 bits, when start > b),
		 * so the verifier walks one path, not 2^11. */
		s = bpf_map_lookup_elem(&fib_small, &idx);
		if (!s)
			return 0;
		start = (__u8 *)s->e;
#pragma unroll
		for (int i = 1; i < FIB_MAX_RANGES; i++)
			n += 1 - ((b - start[i]) >> 31);
		return s->e[FIB_RANGE_BASE + n];
	}
	c = bpf_map_lookup_elem(&fib_chunks, &idx);
	if (!c)
		return 0;
	e = c->e[b];
	return e & FIB_CHUNK ? 0 : e; /* no fourth level */
}

/* Longest-prefix match in the flow's VRF, then by the route's kind. */
static __always_inline int route(struct xdp_md *ctx, struct verdict *v,
				 const struct flow *f, const struct vrf *vrf)
{
	__u32 e = fib_lookup(f->vrf, f->ip->daddr);
	struct route rt, *r = &rt;

	TRACE(TRACE_FIB, f->vrf, f->ip->daddr, e);

	/* No route: the VRF's default is unreachable, as Linux and FRR
	 * install it, which answers net unreachable. */
	if (!e)
		return drop_answer(v, f->vrf, REASON_DROP_NO_ROUTE, ICMP_DEST_UNREACH, ICMP_NET_UNREACH, 0);
	rt.kind = e >> FIB_KIND_SHIFT;
	rt.target = e & FIB_TARGET_MASK;
	/* Before the TTL check: a ping to the gateway with TTL 1 is valid.
	 * Only from an access port: in VXLAN the kernel would get the outer
	 * datagram, which no device of its takes. */
	if (r->kind == ROUTE_RECEIVE) {
		if (f->encapped)
			return decide(v, f->vrf, REASON_DROP_HOST_VXLAN, XDP_DROP);
		return decide(v, f->vrf, REASON_PASS_HOST, XDP_PASS);
	}
	/* A blackhole (an aggregate's, as FRR installs it) drops silently. */
	if (r->kind == ROUTE_BLACKHOLE)
		return decide(v, f->vrf, REASON_DROP_BLACKHOLE, XDP_DROP);
	if (f->ip->ttl <= 1)
		return drop_answer(v, f->vrf, REASON_DROP_TTL, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0);
	if (r->kind == ROUTE_REMOTE)
		return forward_remote(ctx, v, f, vrf, r->target, 0);
	if (r->kind == ROUTE_LOCAL)
		return forward_local(ctx, v, f, r->target, 0);
	return decide(v, f->vrf, REASON_DROP_BAD_NEXTHOP, XDP_DROP);
}

/* Longest-prefix match of dst in the VRF's IPv6 routes: fib6 probed at
 * each of the VRF's lengths, longest first (types.h), or the VRF's trie
 * when it has no lengths word. NULL: no route. */
static __always_inline struct route *fib6_lookup(__u32 vrf, const struct in6_addr *dst)
{
	__u64 *w = bpf_map_lookup_elem(&fib6_lens, &vrf);
	struct fib6_key key = { .vrf = vrf };
	struct route *r;
	__u64 lens;

	if (!w)
		return NULL;
	lens = *(volatile __u64 *)w;
	if (!lens) {
		struct lpm6_key k = { .prefixlen = 128 };
		void *t = bpf_map_lookup_elem(&vrf_tables6, &vrf);

		__builtin_memcpy(k.addr, dst, sizeof(k.addr));
		return t ? bpf_map_lookup_elem(t, &k) : NULL;
	}
#pragma unroll
	for (int i = 0; i < FIB6_LENS; i++) {
		__u32 len = lens & 0xff;

		if (!len)
			break;
		key.len = --len;
		lens >>= 8;
#pragma unroll
		for (int j = 0; j < 4; j++) {
			__s32 bits = (__s32)len - 32 * j;
			__u32 m = bits >= 32 ? ~0u : bits <= 0 ? 0 : bpf_htonl(~0u << (32 - bits));

			((__u32 *)key.addr)[j] = dst->in6_u.u6_addr32[j] & m;
		}
		r = bpf_map_lookup_elem(&fib6, &key);
		if (r)
			return r;
	}
	return NULL;
}

/* IPv6: longest-prefix match in the VRF's IPv6 routes, then as route()
 * does, drops answered with ICMPv6 errors. The hop limit has no checksum
 * to fix (and the outer UDP checksum stays 0, allowed over IPv4). */
static __always_inline int route6(struct xdp_md *ctx, struct verdict *v,
				  const struct flow *f, const struct vrf *vrf)
{
	struct route *r = fib6_lookup(f->vrf, &f->ip6->daddr);

	TRACE(TRACE_FIB6, f->vrf, f->ip6->daddr.in6_u.u6_addr32[3],
	      r ? (__u32)r->kind << FIB_KIND_SHIFT | r->target : 0);
	if (!r)
		return drop_answer(v, f->vrf, REASON_DROP_NO_ROUTE, ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE, 0);
	if (r->kind == ROUTE_RECEIVE) {
		if (f->encapped)
			return decide(v, f->vrf, REASON_DROP_HOST_VXLAN, XDP_DROP);
		return decide(v, f->vrf, REASON_PASS_HOST, XDP_PASS);
	}
	if (r->kind == ROUTE_BLACKHOLE)
		return decide(v, f->vrf, REASON_DROP_BLACKHOLE, XDP_DROP);
	if (f->ip6->hop_limit <= 1)
		return drop_answer(v, f->vrf, REASON_DROP_TTL, ICMPV6_TIME_EXCEED, ICMPV6_EXC_HOPLIMIT, 0);
	if (r->kind == ROUTE_REMOTE)
		return forward_remote(ctx, v, f, vrf, r->target, 1);
	if (r->kind == ROUTE_LOCAL)
		return forward_local(ctx, v, f, r->target, 1);
	return decide(v, f->vrf, REASON_DROP_BAD_NEXTHOP, XDP_DROP);
}

#endif
