/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The one exit: every verdict is counted per (VRF, reason), per CPU. */
#ifndef XLEAF_STATS_H
#define XLEAF_STATS_H

#include "maps.h"

/* What the packet's path decided; counted once, at the exit. */
struct verdict {
	__u32 vrf;
	__u32 reason;
	__u64 bytes; /* frame length as received */
};

static __always_inline int decide(struct verdict *v, __u32 vrf, enum reason r,
				  int action)
{
	v->vrf = vrf;
	v->reason = r;
	return action;
}

static __always_inline void count(const struct verdict *v)
{
	__u32 vrf = v->vrf < MAX_VRFS ? v->vrf : 0;
	__u32 key = vrf * REASON_SLOTS + v->reason;
	struct counter *c = bpf_map_lookup_elem(&stats, &key);

	if (c) {
		c->packets++;
		c->bytes += v->bytes;
	}
}

#endif
