package control

import (
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Keeping neighbours. The kernel forgets a neighbour entry nothing uses:
// once its table (one per family, shared by every namespace) holds
// gc_thresh1 entries (128 by default), its periodic collection deletes
// every entry STALE and unused for gc_stale_time (60 s). The data path
// forwards to tenant hosts and underlay next hops without the kernel
// seeing a packet, so their entries go STALE and then go: a quiet host
// would lose its routes (its /32 or /128, its Type-2 route, aggregates
// over it elsewhere) and an uplink its next hop. So xleafd uses the
// entries it forwards with, as a packet sent through the kernel would
// (and as Cumulus's neighmgrd keeps hosts): when one goes STALE it asks
// the kernel to confirm it (NTF_USE). The entry goes to DELAY, then a
// unicast probe, then REACHABLE again; or FAILED and deleted, and a host
// that is gone is removed as before. It costs one unicast ARP or NS
// probe per kept entry per reachable time (15-45 s by default).

// keepNeighbor asks the kernel to confirm the neighbour addr on ifindex.
func keepNeighbor(ifindex int, addr netip.Addr) error {
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	return netlink.NeighSet(&netlink.Neigh{LinkIndex: ifindex, Family: family, IP: addr.AsSlice(), Flags: netlink.NTF_USE})
}
