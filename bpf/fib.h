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

#ifndef AF_INET
#define AF_INET 2
#endif

/* Where an encapsulated packet leaves, and from which MAC to which. */
struct egress {
	const __u8 *smac, *dmac;
	__u32 ifindex;
	__u32 mtu; /* the path's MTU, when the packet is too big for it */
};

/* Which of a VTEP's underlay paths a flow takes: bits 8..15 of its hash,
 * which neither the nexthop group's slot (bits 0..7) nor the outer source
 * port (bits 16..29) uses, so the choices do not correlate. The Go model
 * (dataplane/model.go) picks the same. */
static __always_inline __u32 underlay_pick(__u32 hash, __u32 members)
{
	return ((hash >> 8) & 0xff) % members;
}

/* Finds the egress towards o's remote VTEP; returns a BPF_FIB_LKUP_RET_*
 * code. The agent's resolved next hops come first (a hash lookup, no FIB
 * walk, and the kernel's ECMP paths spread by the inner flow); a VTEP it has
 * not resolved is asked of the kernel with bpf_fib_lookup, which fills fib
 * (and so must outlive e), counted in underlay_fallbacks. Either way the
 * encapsulated size is checked against the path's MTU. */
static __always_inline int underlay_egress(struct xdp_md *ctx, struct bpf_fib_lookup *fib,
					   const struct outer *o, struct egress *e)
{
	__u32 tot_len = o->inner_len + sizeof(struct iphdr) + sizeof(struct udphdr) +
			sizeof(struct vxlanhdr);
	struct underlay_hop *h = bpf_map_lookup_elem(&underlay_hops, &o->daddr);
	__u32 zero = 0;
	__u64 *fallbacks;
	int rc;

	if (h && h->members) {
		__u32 i = underlay_pick(o->hash, h->members);

		if (i < UNDERLAY_ECMP) {
			struct underlay_member *m = &h->member[i];

			e->ifindex = m->ifindex;
			e->smac = m->smac;
			e->dmac = m->dmac;
			e->mtu = m->mtu;
			return tot_len > m->mtu ? BPF_FIB_LKUP_RET_FRAG_NEEDED : BPF_FIB_LKUP_RET_SUCCESS;
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
	return rc;
}

#endif
