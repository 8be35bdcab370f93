/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The one exit: every verdict is counted per (VRF, reason), a forwarded
 * one per (VRF, where it went), per CPU. */
#ifndef XLEAF_STATS_H
#define XLEAF_STATS_H

#include "maps.h"
#include "trace.h"

/* Takes a token from a bucket that earns one every ns_per_token, holding
 * at most burst; false when it is empty. The bucket is per CPU: no lock. */
static __always_inline int bucket_take(__u64 *tokens, __u64 *last, __u64 burst,
				       __u64 ns_per_token)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 earned = (now - *last) / ns_per_token;

	if (earned) {
		*tokens += earned;
		*last += earned * ns_per_token; /* keeps the part of a token */
		if (*tokens >= burst) {
			*tokens = burst;
			*last = now;
		}
	}
	if (!*tokens)
		return 0;
	(*tokens)--;
	return 1;
}

/* An ICMP error the packet's source should hear of (type 0: none). */
struct icmp_err {
	__u8 type;
	__u8 code;
	__u16 mtu; /* next-hop MTU, for fragmentation needed */
};

/* What the packet's path decided; counted once, at the exit. */
struct verdict {
	__u32 vrf;
	__u32 reason;
	__u64 bytes; /* frame length as received */
	struct icmp_err icmp;
	/* Forwarded: the leak matrix column (0: none). In a stack slot of its
	 * own: a store into icmp's would hide from the verifier that icmp is
	 * still zero on the way to the exit. */
	__u64 to;
};

static __always_inline int decide(struct verdict *v, __u32 vrf, enum reason r,
				  int action)
{
	v->vrf = vrf;
	v->reason = r;
	return action;
}

/* A drop the packet's source is told of: the exit answers it with an
 * ICMP error of type and code (and the next-hop MTU, when too big). */
static __always_inline int drop_answer(struct verdict *v, __u32 vrf, enum reason r,
				       __u8 type, __u8 code, __u16 mtu)
{
	v->icmp.type = type;
	v->icmp.code = code;
	v->icmp.mtu = mtu;
	return decide(v, vrf, r, XDP_DROP);
}

static __always_inline void count(const struct verdict *v)
{
	__u32 vrf = v->vrf < MAX_VRFS ? v->vrf : 0;
	__u32 key = vrf * REASON_SLOTS + v->reason;
	struct counter *c;

	if (v->to && v->to < LEAK_COLS && vrf < LEAK_ROWS)
		key = LEAK_BASE + (vrf * LEAK_COLS + v->to) * 2 + (v->reason == REASON_FWD_LOCAL);
	TRACE(TRACE_VERDICT, vrf, v->reason, v->to);
	c = bpf_map_lookup_elem(&stats, &key);

	if (c) {
		c->packets++;
		c->bytes += v->bytes;
	}
}

#endif
