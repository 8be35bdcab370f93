/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Route lookups alone, for benchmarks and tests: the compiled FIB and the
 * LPM trie it is built from, on the same keys. Go loads these programs
 * only when asked (Dataplane.LookupPrograms), never to forward.
 *
 * The packet is a VRF id, then LOOKUP_KEYS IPv4 addresses (network
 * order); each address is replaced by what the lookup finds for it, as a
 * FIB entry (0: no route). The LPM program reads the trie Go loads it
 * with in place of the template (one VRF's), not the VRF id: a program
 * that names the array of tries loses the key and value types from the
 * object's BTF (clang 14). */
#ifndef XLEAF_LOOKUP_H
#define XLEAF_LOOKUP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"
#include "maps.h"
#include "forward.h"

#define LOOKUP_KEYS 64

/* One lookup each, as global functions: the verifier checks each once, not
 * once per key of the loops below. Both loops pay the same call. */
__attribute__((noinline)) __u32 lookup_fib_one(__u32 vrf, __be32 daddr)
{
	return fib_lookup(vrf, daddr);
}

__attribute__((noinline)) __u32 lookup_lpm_one(__be32 daddr)
{
	struct lpm_key key = { .prefixlen = 32, .addr = daddr };
	struct route *r = bpf_map_lookup_elem(&vrf_table_tmpl, &key);

	return r ? (__u32)r->kind << FIB_KIND_SHIFT | r->target : 0;
}

SEC("xdp")
int xleaf_lookup_fib(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 *w = data, vrf;

	if ((void *)(w + 1) > end)
		return XDP_ABORTED;
	vrf = w[0];
	for (int i = 1; i <= LOOKUP_KEYS; i++) {
		__u32 *k = w + i;

		if ((void *)(k + 1) > end)
			return XDP_ABORTED;
		*k = lookup_fib_one(vrf, *k);
	}
	return XDP_PASS;
}

SEC("xdp")
int xleaf_lookup_lpm(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 *w = data;

	for (int i = 1; i <= LOOKUP_KEYS; i++) {
		__u32 *k = w + i;

		if ((void *)(k + 1) > end)
			return XDP_ABORTED;
		*k = lookup_lpm_one(*k);
	}
	return XDP_PASS;
}

#endif
