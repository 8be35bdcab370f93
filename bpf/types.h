/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared with Go (bpf2go generates the Go side from these).
 * Fixed-width fields, explicit padding: the Go layout test guards them. */
#ifndef XLEAF_TYPES_H
#define XLEAF_TYPES_H

#include <linux/types.h>

/* VRF ids are 1..MAX_VRFS-1; 0 stands for "no VRF known yet" in counters. */
#define MAX_VRFS 1024
/* Counter slots per VRF: room for reasons to come, so that a new one does
 * not change the pinned counters' map and an upgrade keeps it. */
#define REASON_SLOTS 32
/* The leak matrix: forwarded packets per (ingress VRF, egress), counted in
 * stats after the per-reason counters, instead of them (one counter per
 * packet, as for any other). Rows: ingress VRF ids below LEAK_ROWS.
 * Columns: for a packet encapsulated, the column Go gave the VNI it leaves
 * with (struct nexthop's col; leak_vnis names it); for a packet delivered,
 * its host's VRF id. Two cells per pair, encapsulated then delivered. A
 * packet outside (a VRF id or column too high, column 0: none) is counted
 * under its reason alone. Go adds the cells to the reasons' counters. */
#define LEAK_ROWS 64
#define LEAK_COLS 128
#define LEAK_BASE (MAX_VRFS * REASON_SLOTS)
#define STATS_SLOTS (LEAK_BASE + LEAK_ROWS * LEAK_COLS * 2)
/* Distinct nexthop groups; routes share groups, so a fabric needs few. */
#define MAX_NHGS 8192
/* Members of one ECMP group: more than any leaf pair or spine layer has. */
#define MAX_ECMP 16
/* Resilient-hash slot table: 256 slots keep the share of 2..16 members
 * within a few percent while removing a member moves only its own slots.
 * Must be a power of two (the slot is hash & (NHG_SLOTS - 1)). */
#define NHG_SLOTS 256
#define MAX_NEIGHS 65536
#define MAX_IFACES 1024
/* Interfaces whose index is below this are found in an array (iface_index)
 * before the hash (ifaces). */
#define IFACE_INDEX_MAX 4096
#define MAX_VTEPS 64
/* The underlay next hops the agent resolved: remote VTEPs it can hold, and
 * the kernel's ECMP paths it keeps per VTEP (more than a spine layer has). */
#define MAX_UNDERLAY_HOPS 4096
#define UNDERLAY_ECMP 8
/* A VTEP's underlay paths are picked by a resilient slot table, as nexthop
 * groups are: a path that goes moves only its own flows. */
#define UNDERLAY_PICKS 256
/* Where the program finds a remote VTEP's next hops without hashing: the
 * VTEP's position in underlay_index (a power of two, twice the VTEPs, so
 * that they seldom collide) names its slot in underlay_slots (twice the
 * VTEPs: a changed entry is written to a fresh slot, the old one freed after
 * a grace period). */
#define UNDERLAY_INDEX 8192
#define UNDERLAY_INDEX_BITS 13
#define UNDERLAY_SLOTS (2 * MAX_UNDERLAY_HOPS)
/* vni_index: a VNI's VRF at the VNI's low 16 bits. */
#define VNI_INDEX 65536
/* The compiled FIB: per VRF a first level indexed by the top 16 bits of
 * the address, then 256-entry chunks for the next 8 bits, then for the last
 * 8 either a 256-entry chunk or a range chunk (struct fib_small: the first
 * addresses of up to FIB_MAX_RANGES runs in its first bytes, their routes
 * from word FIB_RANGE_BASE). An entry is 0 (no route), FIB_CHUNK | the
 * index of a 256-entry chunk, FIB_CHUNK | FIB_RANGES | the index of a range
 * chunk, or a route: kind << FIB_KIND_SHIFT | target. */
#define FIB_L1_SIZE 65536
#define FIB_CHUNK_LEN 256
#define FIB_CHUNK 0x80000000u
#define FIB_RANGES 0x40000000u
#define FIB_MAX_RANGES 12
#define FIB_RANGE_BASE 4
#define FIB_KIND_SHIFT 24
#define FIB_TARGET_MASK 0x00ffffffu
#define FIB_SMALL_LEN 16
/* Template sizes of the pools; Go sizes them at load (Options.FIBChunks,
 * Options.FIBSmallChunks). */
#define FIB_CHUNKS 4096
#define FIB_SMALL_CHUNKS 262144

struct fib_chunk {
	__u32 e[FIB_CHUNK_LEN];
};

struct fib_small {
	__u32 e[FIB_SMALL_LEN];
};

/* Template size of a VRF's LPM trie; Go creates each VRF's own trie with
 * the size it is asked for (LPM tries are not preallocated). */
#define ROUTES_PER_VRF 1048576
/* Template size of a VRF's IPv6 trie, and the IPv6 hosts on access ports:
 * a tenant's IPv6 table is a few prefixes per subnet (/64s, /128 hosts,
 * aggregates); Go sizes each VRF's trie (Options.Routes6PerVRF). */
#define ROUTES6_PER_VRF 262144
#define MAX_NEIGHS6 65536
/* The IPv6 lookup: every VRF's IPv6 routes in one hash (fib6), keyed by
 * VRF, prefix length and masked address, probed longest length first over
 * the lengths the VRF has: fib6_lens holds them, up to FIB6_LENS, each as
 * length + 1 in a byte, longest in the low byte, 0 ending them; one 64-bit
 * word, so Go changes a VRF's lengths in one store. A word of 0 (more
 * lengths than that, or not built) sends the VRF's lookups to its trie. A
 * tenant's table has a few lengths (/128 hosts, /64 subnets, /48 sites,
 * /0), and a probe costs one hash lookup where the trie walks a node per
 * bit that differs. */
#define FIB6_LENS 8
#define FIB6_ROUTES 1048576

#define VXLAN_PORT 4789
/* VXLAN header word 0: only the I flag (RFC 7348); Linux drops anything
 * else too, so a packet the kernel would refuse is never forwarded here. */
#define VXLAN_FLAGS_I 0x08000000
/* Outer TTL of packets we encapsulate, like Linux vxlan's default. */
#define UNDERLAY_TTL 64
/* Source ports for the underlay's ECMP entropy (RFC 7348 5.). */
#define VXLAN_SPORT_BASE 49152
#define VXLAN_SPORT_MASK 0x3fff
/* The underlay lookup is made as if the packet came from the host itself
 * (loopback is ifindex 1 in every network namespace). */
#define LOOPBACK_IFINDEX 1

enum iface_role {
	IFACE_UPLINK = 1, /* fabric side: VXLAN in and out */
	IFACE_ACCESS = 2, /* tenant side: member of one VRF */
};

enum route_kind {
	ROUTE_REMOTE = 1,    /* target = nexthop group id: encapsulate */
	ROUTE_LOCAL = 2,     /* target = VRF of the attached host: neighbour */
	ROUTE_BLACKHOLE = 3, /* aggregates: drop */
	ROUTE_RECEIVE = 4,   /* the router's own address: to the kernel */
};

/* Every verdict is counted under exactly one reason. */
enum reason {
	REASON_PASS = 0,          /* not ours: to the kernel untouched */
	REASON_PASS_HOST,         /* addressed to the router itself */
	REASON_FWD_REMOTE,        /* encapsulated towards a remote VTEP */
	REASON_FWD_LOCAL,         /* delivered to a host on an access interface */
	REASON_DROP_MALFORMED,    /* truncated or inconsistent headers */
	REASON_DROP_BAD_VXLAN,    /* reserved VXLAN flags or bits set */
	REASON_DROP_UNKNOWN_VNI,  /* no VRF has this L3VNI */
	REASON_DROP_BAD_RMAC,     /* inner destination is not our router MAC */
	REASON_DROP_UNSUPPORTED,  /* inner frame is neither untagged IPv4 nor IPv6 */
	REASON_DROP_TTL,          /* TTL would expire here */
	REASON_DROP_NO_ROUTE,     /* no route in the VRF (unreachable) */
	REASON_DROP_BLACKHOLE,    /* blackhole route (aggregate) */
	REASON_DROP_NO_NEIGH,     /* local host not resolved; agent told */
	REASON_DROP_NO_UNDERLAY,  /* kernel has no underlay route to the VTEP */
	REASON_DROP_UNDERLAY_NEIGH, /* underlay next hop not resolved; agent told */
	REASON_DROP_MTU,          /* too big for the egress interface */
	REASON_DROP_BAD_NEXTHOP,  /* route names an empty or unknown group */
	REASON_DROP_NO_VRF,       /* access interface's VRF is not configured */
	REASON_DROP_ERROR,        /* a helper failed */
	REASON_DROP_BAD_CSUM,     /* inner IPv4 header checksum wrong (RFC 1812 5.2.2) */
	REASON_DROP_HOST_VXLAN,   /* for the router's own address, arrived in VXLAN: no kernel device takes it */
	REASON_DROP_SCOPE,        /* IPv6 link-local, multicast or unspecified address in VXLAN: no router routes it (RFC 4291 2.5.6) */
	REASON_MAX,
};

enum event_kind {
	EVENT_NEIGH_MISS = 1,    /* (vrf, addr): resolve a local host */
	EVENT_UNDERLAY_MISS = 2, /* (ifindex, addr): resolve an underlay next hop */
};

struct iface {
	__u32 vrf; /* access only */
	__u8 role; /* enum iface_role */
	__u8 pad;
	__u8 mac[6];
};

struct vrf {
	__u32 vni;   /* L3VNI; 0 = slot unused */
	__be32 vtep; /* local VTEP: outer source address */
	__u8 rmac[6];
	__u8 pad[2];
};

struct lpm_key {
	__u32 prefixlen;
	__be32 addr;
};

/* fib6's key: the address with the bits past len cleared. */
struct fib6_key {
	__u32 vrf;
	__u32 len;
	__u8 addr[16];
};

/* An IPv6 trie's key: the prefix length, then the address. */
struct lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct route {
	__u8 kind; /* enum route_kind */
	/* The route's own prefix length: an LPM lookup returns the longest
	 * match, so this is how Go tells an exact match from a covering route. */
	__u8 prefixlen;
	__u8 pad[2];
	__u32 target; /* nexthop group id or VRF id, by kind */
};

struct nexthop {
	__be32 vtep;
	__u32 vni; /* the route's label: another VRF's VNI when leaked */
	__u8 rmac[6];
	__u16 col; /* vni's column in the leak matrix (0: none) */
};

struct nhg {
	__u32 members; /* 0 = unused */
	__u32 pad;
	struct nexthop member[MAX_ECMP];
	__u8 slot[NHG_SLOTS]; /* member index per hash slot */
};

/* One path of the kernel's route to a remote VTEP, resolved by the agent:
 * egress interface, its MTU (the route's, if it sets one), our MAC on it and
 * the next hop's. */
struct underlay_member {
	__u32 ifindex;
	__u16 mtu;
	__u8 smac[6];
	__u8 dmac[6];
	__u8 pad[2];
};

/* Remote VTEP -> its underlay paths; a flow takes one by its hash. */
struct underlay_hop {
	__u32 members; /* 1..UNDERLAY_ECMP; 0 = ask the kernel */
	__be32 vtep;   /* whose: a slot is checked against the packet's */
	struct underlay_member member[UNDERLAY_ECMP];
	__u8 pick[UNDERLAY_PICKS]; /* member per slot (flow hash bits 8..15) */
};

struct neigh_key {
	__u32 vrf;
	__be32 addr;
};

struct neigh6_key {
	__u32 vrf;
	__u8 addr[16];
};

struct neigh {
	__u32 ifindex;
	__u8 mac[6];  /* the host's */
	__u8 smac[6]; /* ours on that interface */
	__u8 pad[4];
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* Miss events a CPU may send: a token bucket, so a flood of packets to one
 * unresolved host cannot flood the agent's ring. */
#define EVENT_BURST 64
#define EVENT_NS_PER_TOKEN 1000000 /* 1000 events a second per CPU */
struct event_budget {
	__u64 tokens;     /* events it may send now, up to EVENT_BURST */
	__u64 last;       /* bpf_ktime_get_ns() of the last refill */
	__u64 suppressed; /* events not sent for want of tokens */
};

/* How a VRF answers packets it cannot forward with ICMP errors (RFC 1812
 * 4.3.2), from the agent: the VRF's own address they come from (0 = send
 * none) and a token bucket per CPU and VRF, so a flood of expiring or
 * unroutable packets costs the fabric a bounded trickle of errors. */
struct vrf_icmp {
	__be32 src;
	__u32 burst;         /* errors a CPU may send at once in this VRF */
	__u64 ns_per_token;  /* 1e9 / errors a second; 0 = none */
};

/* The VRF's IPv6 address its ICMPv6 errors come from (all zeros: none);
 * their rate is vrf_icmp's, and so is their bucket. */
struct vrf_icmp6 {
	__u8 src[16];
};

/* An ICMPv6 error quotes as much of the packet as keeps it within the
 * minimum IPv6 MTU (RFC 4443 2.4 c): 1280 less its own 48 bytes. */
#define ICMP6_QUOTE_MAX 1232

/* Scratch for the ICMPv6 checksum: the quoted packet, and room past it
 * for the zeros that end an odd length (and for the verifier's bounds:
 * 512 + 1024: a size the verifier sees as up to 1020). Per CPU. */
struct icmp6_scratch {
	__u8 b[1536];
};

/* Per CPU and VRF: the bucket and what became of the errors. */
struct icmp_budget {
	__u64 tokens;
	__u64 last;
	__u64 sent;       /* built and forwarded towards the packet's source */
	__u64 suppressed; /* not built: the bucket was empty */
	__u64 unroutable; /* built, but the VRF could not forward it back */
};

struct event {
	__u32 kind; /* enum event_kind */
	__u32 vrf;
	__u32 ifindex;
	__u32 family; /* AF_INET or AF_INET6 (unnumbered underlay) */
	__be32 addr[4];
};

#endif
