/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The underlay: the egress interface and MACs towards a remote VTEP, as the
 * kernel's routing and neighbour tables have them: resolved by the agent
 * ahead of the packets, or asked of the kernel per packet. */
#ifndef XLEAF_FIB_H
#define XLEAF_FIB_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/socket.h>
#include "parse.h"
#include "types.h"
#include "maps.h"
#include "vxlan.h"
#include "trace.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef CLOCK_MONOTONIC
#define CLOCK_MONOTONIC 1
#endif
#ifndef EBUSY
#define EBUSY 16
#endif

/* Where an encapsulated packet leaves, and from which MAC to which. */
struct egress {
	const __u8 *smac, *dmac;
	__u32 ifindex;
	__u32 mtu; /* the path's MTU, when the packet is too big for it */
};

/* Which of a VTEP's underlay paths a flow takes: its slot, bits 8..15 of
 * its hash (which neither the nexthop group's slot, bits 0..7, nor the outer
 * source port, bits 16..29, uses, so the choices do not correlate), in the
 * VTEP's pick table, which the agent fills by rendezvous hashing per slot:
 * when a path goes, only the slots it had change hands. The Go model
 * (dataplane/model.go) picks the same. */
static __always_inline __u32 underlay_pick(__u32 hash, const struct underlay_hop *h)
{
	return h->pick[(hash >> 8) & (UNDERLAY_PICKS - 1)];
}

/* A remote VTEP's position in underlay_index: the top bits of a
 * multiplicative hash (the Go side, dataplane/underlay.go, computes the
 * same), one multiply where a hash map's costs a jhash. */
static __always_inline __u32 underlay_pos(__be32 vtep)
{
	return (vtep * 0x9e3779b1u) >> (32 - UNDERLAY_INDEX_BITS);
}

/* vtep's resolved next hops: its slot if its position names one holding
 * it, else the hash (a VTEP whose position another holds); NULL if none. */
static __always_inline struct underlay_hop *underlay_find(__be32 vtep)
{
	__u32 pos = underlay_pos(vtep), slot;
	__u32 *ref = bpf_map_lookup_elem(&underlay_index, &pos);
	struct underlay_hop *h;

	if (ref) {
		slot = *(volatile __u32 *)ref;
		h = bpf_map_lookup_elem(&underlay_slots, &slot);
		if (h && h->vtep == vtep)
			return h;
	}
	return bpf_map_lookup_elem(&underlay_hops, &vtep);
}

/* Finds the egress towards o's remote VTEP; returns a BPF_FIB_LKUP_RET_*
 * code. The agent's resolved next hops come first (array loads, no FIB
 * walk, and the kernel's ECMP paths spread by the inner flow); a VTEP it has
 * not resolved, or any when it has stopped renewing them (hops_watchdog), is
 * asked of the kernel with bpf_fib_lookup, which fills fib
 * (and so must outlive e), counted in underlay_fallbacks. Either way the
 * encapsulated size is checked against the path's MTU. */
static __always_inline int underlay_egress(struct xdp_md *ctx, struct bpf_fib_lookup *fib,
					   const struct outer *o, struct egress *e)
{
	__u32 tot_len = o->inner_len + sizeof(struct iphdr) + sizeof(struct udphdr) +
			sizeof(struct vxlanhdr);
	struct underlay_hop *h = underlay_find(o->daddr);
	struct hops_watchdog *w = NULL;
	__u32 zero = 0;
	__u64 *fallbacks;
	int rc;

	if (h && h->members)
		w = bpf_map_lookup_elem(&hops_watchdog, &zero);
	if (w && w->live) {
		__u32 i = underlay_pick(o->hash, h);

		if (i < UNDERLAY_ECMP && i < h->members) {
			struct underlay_member *m = &h->member[i];

			e->ifindex = m->ifindex;
			e->smac = m->smac;
			e->dmac = m->dmac;
			e->mtu = m->mtu;
			rc = tot_len > m->mtu ? BPF_FIB_LKUP_RET_FRAG_NEEDED : BPF_FIB_LKUP_RET_SUCCESS;
			TRACE(TRACE_UNDERLAY, TRACE_UNDERLAY_RESOLVED, m->ifindex, rc);
			return rc;
		}
	}

	fallbacks = bpf_map_lookup_elem(&underlay_fallbacks, &zero);
	if (fallbacks)
		(*fallbacks)++;
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->tos = o->tos;
	fib->l4_protocol = IPPROTO_UDP;
	fib->tot_len = tot_len;
	fib->ipv4_src = o->saddr;
	fib->ipv4_dst = o->daddr;
	fib->ifindex = LOOPBACK_IFINDEX;
	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	e->ifindex = fib->ifindex;
	e->smac = fib->smac;
	e->dmac = fib->dmac;
	e->mtu = fib->mtu_result;
	TRACE(TRACE_UNDERLAY, TRACE_UNDERLAY_KERNEL, fib->ifindex, rc);
	return rc;
}

/* The watchdog's timer fired: the agent did not renew it in time. */
static int hops_expired(void *map, __u32 *key, struct hops_watchdog *w)
{
	w->live = 0;
	return 0;
}

/* Run by the agent (BPF_PROG_TEST_RUN) to renew the watchdog: the packet
 * is the time the next hops stay live for, in ns (8 bytes, host order,
 * then padding to a frame's minimum). Returns XDP_PASS once renewed,
 * XDP_ABORTED if it could not be. */
SEC("xdp")
int xleaf_hops_renew(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct hops_watchdog *w = bpf_map_lookup_elem(&hops_watchdog, &zero);
	__u64 ns;
	long err;

	if (!w || data + sizeof(ns) > data_end)
		return XDP_ABORTED;
	ns = *(__u64 *)data;
	err = bpf_timer_init(&w->timer, &hops_watchdog, CLOCK_MONOTONIC);
	if (err && err != -EBUSY) /* -EBUSY: initialised by an earlier renewal */
		return XDP_ABORTED;
	if (bpf_timer_set_callback(&w->timer, hops_expired))
		return XDP_ABORTED;
	if (ns == 0) {
		w->live = 0;
		return XDP_PASS;
	}
	w->live = 1;
	if (bpf_timer_start(&w->timer, ns, 0))
		return XDP_ABORTED;
	return XDP_PASS;
}

#endif
