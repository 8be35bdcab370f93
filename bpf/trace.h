/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* xleafctl explain: the same program, built once more with XLEAF_TRACE,
 * records each decision it takes into trace_log, a step at a time, instead
 * of counting the packet or telling the agent of a miss. Go runs that
 * build on one packet through BPF_PROG_TEST_RUN against the live maps
 * (dataplane.Explain). In the forwarding build TRACE is nothing: not an
 * instruction of it changes. */
#ifndef XLEAF_TRACE_H
#define XLEAF_TRACE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

/* What a step says, and its three words. */
enum trace_kind {
	TRACE_INGRESS = 1,  /* ifindex, role (0: not ours), access port's VRF */
	TRACE_VXLAN,        /* outer destination, VNI, how its VRF was found (enum trace_vni) */
	TRACE_VRF,          /* VRF id, its VNI, its local VTEP */
	TRACE_FIB,          /* VRF id, destination, FIB entry (0: no route) */
	TRACE_GROUP,        /* nexthop group id, members, flow hash */
	TRACE_MEMBER,       /* member index, VTEP, VNI */
	TRACE_UNDERLAY,     /* how (enum trace_underlay), egress ifindex, BPF_FIB_LKUP_RET_* */
	TRACE_NEIGH,        /* host's VRF, host address, egress ifindex (0: not resolved) */
	TRACE_EVENT,        /* the miss event the live program would send: kind, VRF, address */
	TRACE_ICMP,         /* the drop is answered: ICMP type, code, next-hop MTU */
	TRACE_VERDICT,      /* counted under: VRF, reason, leak matrix column */
	TRACE_FIB6,         /* VRF id, destination's last 32 bits, route (kind << 24 | target; 0: no route) */
};

enum trace_vni {
	TRACE_VNI_INDEX = 1, /* vni_index, checked against the VRF */
	TRACE_VNI_HASH = 2,  /* vteps and vni_vrf */
};

enum trace_underlay {
	TRACE_UNDERLAY_RESOLVED = 1, /* the agent's next hops */
	TRACE_UNDERLAY_KERNEL = 2,   /* bpf_fib_lookup */
};

#define TRACE_STEPS 24

struct trace_step {
	__u32 kind; /* enum trace_kind */
	__u32 a, b, c;
};

struct trace_log {
	__u32 n;
	__u32 pad;
	struct trace_step step[TRACE_STEPS];
};

#ifdef XLEAF_TRACE

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct trace_log);
	__uint(max_entries, 1);
} trace_log SEC(".maps");

/* A global function: the verifier checks it once, not at every step. */
__attribute__((noinline)) int xleaf_trace(__u32 kind, __u32 a, __u32 b, __u32 c)
{
	__u32 zero = 0, i;
	struct trace_log *t = bpf_map_lookup_elem(&trace_log, &zero);

	if (!t)
		return 0;
	i = t->n;
	if (i >= TRACE_STEPS)
		return 0;
	t->step[i].kind = kind;
	t->step[i].a = a;
	t->step[i].b = b;
	t->step[i].c = c;
	t->n = i + 1;
	return 0;
}
#define TRACE(kind, a, b, c) xleaf_trace(kind, a, b, c)

#else
#define TRACE(kind, a, b, c) do { } while (0)
#endif

#endif
