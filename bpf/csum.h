/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 checksums: incremental for the TTL, full for headers we build. */
#ifndef XLEAF_CSUM_H
#define XLEAF_CSUM_H

#include <linux/ip.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* RFC 1624 update for TTL - 1, as the kernel's ip_decrease_ttl does. */
static __always_inline void ipv4_decrease_ttl(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

/* Whether an IPv4 header (options included) sums to all ones, as RFC 1812
 * 5.2.2 has a router verify. parse_ipv4 has bounded ihl * 4 by the frame.
 * Without options (the usual case) the 20 bytes are summed in place; with
 * them the header is copied to a zeroed buffer first, since the verifier
 * cannot follow a packet read of variable length. */
static __always_inline int ipv4_csum_ok(struct xdp_md *ctx, const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 len = ip->ihl * 4, sum = 0;

	if (len == sizeof(*ip)) {
#pragma unroll
		for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
			sum += w[i];
		return csum_fold(sum) == 0;
	}
	{
		/* Zeroed only here, off the usual path: the words past len add
		 * nothing. */
		__u16 buf[30] = {};

		if (len < sizeof(*ip) || len > sizeof(buf))
			return 0;
		if (bpf_xdp_load_bytes(ctx, (void *)ip - (void *)(long)ctx->data, buf, len))
			return 0;
#pragma unroll
		for (int i = 0; i < (int)(sizeof(buf) / 2); i++)
			sum += buf[i];
	}
	return csum_fold(sum) == 0;
}

/* Checksum of a 20-byte header with no options, check field zero. */
static __always_inline __u16 ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	return csum_fold(sum);
}

#endif
