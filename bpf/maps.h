/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions only. All are pinned by name under the pin path, so a
 * restarted agent finds the tables it left and traffic keeps flowing. */
#ifndef XLEAF_MAPS_H
#define XLEAF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

/* ifindex -> role (uplink/access), VRF and interface MAC */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct iface);
	__uint(max_entries, MAX_IFACES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifaces SEC(".maps");

/* ifindex -> the same as ifaces, for indexes below IFACE_INDEX_MAX (a
 * leaf's): an array lookup where the hash costs a hash. role 0 = not
 * there (ask ifaces). Not pinned: Go builds it from ifaces at every start
 * and keeps it with every change of ifaces. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct iface);
	__uint(max_entries, IFACE_INDEX_MAX);
} iface_index SEC(".maps");

/* local VTEP addresses: VXLAN to any other address is not ours */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u32);
	__uint(max_entries, MAX_VTEPS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vteps SEC(".maps");

/* L3VNI -> VRF id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAX_VRFS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vni_vrf SEC(".maps");

/* VNI's low 16 bits -> the VRF id of the VNI that holds the position (0:
 * none), when that VRF terminates at a local VTEP: a VXLAN packet's VRF in
 * one array load, taken only if the VRF's entry in vrfs has the packet's
 * VNI and outer destination; any other packet takes vteps and vni_vrf.
 * Not pinned: Go builds it from those at every start, and keeps it with
 * every change of them; mmapped, so a position changes in one store. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, VNI_INDEX);
	__uint(map_flags, BPF_F_MMAPABLE);
} vni_index SEC(".maps");

/* VRF id -> L3VNI, local VTEP, router MAC */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vrf);
	__uint(max_entries, MAX_VRFS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vrfs SEC(".maps");

/* A VRF's routing table: prefix -> route. Each VRF gets its own trie,
 * created by Go with the size it is asked for (LPM tries are not
 * preallocated). This instance is only the template: declaring it here puts
 * the key and value types in BTF, which an inner map alone does not. */
struct vrf_table {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_key);
	__type(value, struct route);
	__uint(max_entries, ROUTES_PER_VRF);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} vrf_table_tmpl SEC(".maps");

/* VRF id -> that VRF's table; replacing the inner map swaps a whole table
 * atomically */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, MAX_VRFS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct vrf_table);
} vrf_tables SEC(".maps");

/* A VRF's IPv6 routing table: the program looks routes up in it directly
 * (an LPM trie; its cost per table size is BenchmarkLookup6's). Each VRF
 * gets its own, created by Go on the VRF's first IPv6 route. */
struct vrf_table6 {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm6_key);
	__type(value, struct route);
	__uint(max_entries, ROUTES6_PER_VRF);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} vrf_table6_tmpl SEC(".maps");

/* VRF id -> that VRF's IPv6 table */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, MAX_VRFS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct vrf_table6);
} vrf_tables6 SEC(".maps");

/* (VRF, length, masked address) -> route: the IPv6 routes of every VRF,
 * kept by Go beside the tries (which stay the record). Not pinned: every
 * start builds its own from the tries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fib6_key);
	__type(value, struct route);
	__uint(max_entries, FIB6_ROUTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} fib6 SEC(".maps");

/* VRF id -> its IPv6 prefix lengths, packed (types.h); mmapped by Go */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, MAX_VRFS);
	__uint(map_flags, BPF_F_MMAPABLE);
} fib6_lens SEC(".maps");

/* The compiled FIB the program looks routes up in (built by Go from the
 * tables above, which stay the record of routes): not pinned, since every
 * start builds its own before its program takes over. A VRF's first level
 * is a fixed-size array (so its lookups are inlined), mmapped by Go: 256
 * rows of 256 entries, by the address's first byte, then its second (rows,
 * since an mmapped array spaces its values 8 bytes apart). */
struct fib_l1 {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fib_chunk);
	__uint(max_entries, FIB_L1_SIZE / FIB_CHUNK_LEN);
	__uint(map_flags, BPF_F_MMAPABLE);
} fib_l1_tmpl SEC(".maps");

/* VRF id -> that VRF's first level */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, MAX_VRFS);
	__array(values, struct fib_l1);
} fib_vrfs SEC(".maps");

/* chunk index -> 256 entries, shared by every VRF; mmapped by Go */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fib_chunk);
	__uint(max_entries, FIB_CHUNKS);
	__uint(map_flags, BPF_F_MMAPABLE);
} fib_chunks SEC(".maps");

/* chunk index -> a range chunk (a /24's runs), shared by every VRF;
 * mmapped by Go */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fib_small);
	__uint(max_entries, FIB_SMALL_CHUNKS);
	__uint(map_flags, BPF_F_MMAPABLE);
} fib_small SEC(".maps");

/* nexthop group id -> members and resilient slot table */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct nhg);
	__uint(max_entries, MAX_NHGS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nhgs SEC(".maps");

/* remote VTEP -> its underlay next hops, resolved by the agent from the
 * kernel's routes and neighbours; a VTEP found in none of the three maps
 * below is looked up with bpf_fib_lookup. None is pinned: a starting agent
 * resolves its own, and its program asks the kernel until then.
 *
 * underlay_index: the VTEP's position (underlay_pos) -> its slot in
 * underlay_slots (0: none); mmapped, so a VTEP moves to a new slot in one
 * store, and a slot is written only while no position names it. A VTEP
 * whose position another holds is in underlay_hops, a hash. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, UNDERLAY_INDEX);
	__uint(map_flags, BPF_F_MMAPABLE);
} underlay_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct underlay_hop);
	__uint(max_entries, UNDERLAY_SLOTS);
} underlay_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, struct underlay_hop);
	__uint(max_entries, MAX_UNDERLAY_HOPS);
} underlay_hops SEC(".maps");

/* The underlay next hops are used only while the agent keeps them in step
 * with the kernel: it renews this watchdog every pass (a program it runs,
 * xleaf_hops_renew: live = 1, and the timer restarted); if it stops (killed,
 * hung), the timer fires and clears live, and packets ask the kernel again.
 * One flag read per packet, where a clock read costs ~25 ns. Pinned: a
 * timer dies with the last user reference to its map, and must outlive the
 * agent that armed it. */
struct hops_watchdog {
	struct bpf_timer timer;
	__u32 live;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hops_watchdog);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hops_watchdog SEC(".maps");

/* packets whose underlay next hop was not in underlay_hops (asked of the
 * kernel instead), per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} underlay_fallbacks SEC(".maps");

/* (VRF, host address) -> access interface and MACs, kept by the agent */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct neigh_key);
	__type(value, struct neigh);
	__uint(max_entries, MAX_NEIGHS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} neighs SEC(".maps");

/* (VRF, IPv6 host address) -> access interface and MACs, kept by the
 * agent from the kernel's ND neighbours */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct neigh6_key);
	__type(value, struct neigh);
	__uint(max_entries, MAX_NEIGHS6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} neighs6 SEC(".maps");

/* (VRF * REASON_SLOTS + reason), then the leak matrix's cells (types.h)
 * -> {packets, bytes}, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, STATS_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* leak matrix column -> the VNI it counts (0: free); Go's record, which
 * the program never reads: pinned, so that a restarted agent names the
 * columns the counters were kept under */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, LEAK_COLS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} leak_vnis SEC(".maps");

/* each CPU's budget of miss events (per CPU: no lock, no contention) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct event_budget);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_budget SEC(".maps");

/* VRF id -> source and rate of its ICMP errors */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vrf_icmp);
	__uint(max_entries, MAX_VRFS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vrf_icmp SEC(".maps");

/* VRF id -> the source of its ICMPv6 errors */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vrf_icmp6);
	__uint(max_entries, MAX_VRFS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vrf_icmp6 SEC(".maps");

/* each CPU's scratch for an ICMPv6 error's checksum */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct icmp6_scratch);
	__uint(max_entries, 1);
} icmp6_scratch SEC(".maps");

/* VRF id -> each CPU's ICMP error bucket and tallies */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct icmp_budget);
	__uint(max_entries, MAX_VRFS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} icmp_budget SEC(".maps");

/* neighbour misses for the agent to resolve; full ring = event lost, the
 * drop is still counted */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

#endif
