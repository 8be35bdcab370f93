/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The underlay: the kernel's routing and neighbour tables pick the egress
 * interface and MACs towards a remote VTEP, so xleaf needs no copy of them. */
#ifndef XLEAF_FIB_H
#define XLEAF_FIB_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/socket.h>
#include "parse.h"
#include "types.h"
#include "vxlan.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* Fills fib with the egress for o; returns a BPF_FIB_LKUP_RET_* code.
 * tot_len makes the kernel check the egress MTU for the encapsulated size. */
static __always_inline int underlay_lookup(struct xdp_md *ctx, struct bpf_fib_lookup *fib,
					   const struct outer *o)
{
	fib->family = AF_INET;
	fib->tos = o->tos;
	fib->l4_protocol = IPPROTO_UDP;
	fib->tot_len = o->inner_len + sizeof(struct iphdr) + sizeof(struct udphdr) +
		       sizeof(struct vxlanhdr);
	fib->ipv4_src = o->saddr;
	fib->ipv4_dst = o->daddr;
	fib->ifindex = LOOPBACK_IFINDEX;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

#endif
