package control

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nudValid are the neighbour states the kernel forwards with (NUD_VALID):
// bpf_fib_lookup answers "no neighbour" for any other, and the data path
// uses a host or next hop only in them.
const nudValid = unix.NUD_PERMANENT | unix.NUD_NOARP | unix.NUD_REACHABLE | unix.NUD_PROBE | unix.NUD_STALE | unix.NUD_DELAY

// kernelNeighbour is one of the kernel's neighbour entries in a valid state.
type kernelNeighbour struct {
	mac   net.HardwareAddr
	stale bool // NUD_STALE: collected unless used (below)
}

// neighKey names a neighbour entry: its port and address.
type neighKey struct {
	ifindex int
	addr    netip.Addr
}

// kernelNeighbours is one dump of the kernel's valid neighbour entries
// with an Ethernet address, both families.
func kernelNeighbours() (map[neighKey]kernelNeighbour, error) {
	out := map[neighKey]kernelNeighbour{}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ns, err := netlink.NeighList(0, family)
		if err != nil {
			return nil, fmt.Errorf("list neighbours: %w", err)
		}
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP); ok && n.State&nudValid != 0 && len(n.HardwareAddr) == 6 {
				out[neighKey{n.LinkIndex, a.Unmap()}] = kernelNeighbour{mac: n.HardwareAddr, stale: n.State == netlink.NUD_STALE}
			}
		}
	}
	return out, nil
}

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
