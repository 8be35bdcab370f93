package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Limits of the data path, from bpf/types.h.
const (
	MaxVRFs  = 1024 // VRF ids are 1..MaxVRFs-1
	MaxNHGs  = 8192
	MaxECMP  = 16
	NHGSlots = 256
	// IfaceIndexMax: interfaces with a lower index are found in an array.
	IfaceIndexMax = 4096
)

// VRFID names a VRF in the data path: 1..MaxVRFs-1. 0 means "no VRF" and
// appears only in counters, for packets dropped before their VRF was known.
type VRFID uint32

// VRF is what the data path needs to know about a tenant VRF.
type VRF struct {
	ID        VRFID
	VNI       uint32           // L3VNI, 1..2^24-1
	RouterMAC net.HardwareAddr // inner destination of routed VXLAN; inner source of ours
	VTEP      netip.Addr       // local VTEP: outer source address
	ICMP      ICMPErrors       // how it answers packets it cannot forward
}

// ICMPErrors is how a VRF answers the packets it cannot forward (TTL
// expired, too big for the next hop with DF set, no route) with ICMP
// errors: from its own address Source, routed back to the packet's source
// in the VRF, at most PerSecond a second per CPU after a Burst. The zero
// value sends none.
type ICMPErrors struct {
	Source    netip.Addr // IPv4 errors' (none if invalid)
	Source6   netip.Addr // ICMPv6 errors' (none if invalid)
	PerSecond uint32     // both families together
	Burst     uint32
}

// On says whether the VRF sends errors at all.
func (e ICMPErrors) On() bool {
	return (e.Source.IsValid() || e.Source6.IsValid()) && e.PerSecond > 0 && e.Burst > 0
}

// ICMPStats tallies a VRF's ICMP errors, over all CPUs.
type ICMPStats struct {
	Sent       uint64 // forwarded towards the dropped packet's source
	Suppressed uint64 // not sent: the rate limit
	Unroutable uint64 // built, but the VRF had no way back to the source
}

// RouteKind says what a route does with a packet.
type RouteKind uint8

const (
	RouteRemote    = RouteKind(xleafRouteKindROUTE_REMOTE)    // encapsulate to one of Remote
	RouteLocal     = RouteKind(xleafRouteKindROUTE_LOCAL)     // deliver to a host in HostVRF
	RouteBlackhole = RouteKind(xleafRouteKindROUTE_BLACKHOLE) // drop (aggregates)
	RouteReceive   = RouteKind(xleafRouteKindROUTE_RECEIVE)   // the router's own address
)

func (k RouteKind) String() string {
	switch k {
	case RouteRemote:
		return "remote"
	case RouteLocal:
		return "local"
	case RouteBlackhole:
		return "blackhole"
	case RouteReceive:
		return "receive"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Remote is one ECMP member of a remote route: a VTEP, the VNI to
// encapsulate with (the route's label, another VRF's L3VNI when the route
// was leaked), and that VTEP's router MAC.
type Remote struct {
	VTEP      netip.Addr
	VNI       uint32
	RouterMAC net.HardwareAddr
}

// Route is one prefix of a VRF's table.
type Route struct {
	Prefix  netip.Prefix
	Kind    RouteKind
	Remotes []Remote // RouteRemote: the ECMP group, at most MaxECMP
	HostVRF VRFID    // RouteLocal: whose neighbours hold the host (leaking if not this VRF)
}

// Neighbor is a host on an access interface, as the kernel resolved it.
type Neighbor struct {
	Ifindex int
	MAC     net.HardwareAddr // the host's
	SrcMAC  net.HardwareAddr // ours on that interface
}

// Errors the caller can act on.
var (
	ErrBadVRF       = errors.New("vrf id out of range")
	ErrUnknownVRF   = errors.New("vrf not configured")
	ErrTooManyPaths = fmt.Errorf("more than %d ecmp members", MaxECMP)
	ErrNoGroupSpace = fmt.Errorf("all %d nexthop groups in use", MaxNHGs)
)

func checkVRF(id VRFID) error {
	if id == 0 || id >= MaxVRFs {
		return fmt.Errorf("vrf %d: %w (1..%d)", id, ErrBadVRF, MaxVRFs-1)
	}
	return nil
}

func mac6(hw net.HardwareAddr) ([6]uint8, error) {
	var m [6]uint8
	if len(hw) != 6 {
		return m, fmt.Errorf("mac %q: want 6 bytes", hw)
	}
	copy(m[:], hw)
	return m, nil
}

// be32 is an IPv4 address as the data path stores it: network byte order
// read as a little-endian word (the way the kernel loads it on bpfel).
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func addrFromBe32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
}

func checkIPv4(a netip.Addr, what string) error {
	if !a.Is4() {
		return fmt.Errorf("%s %v: not an IPv4 address", what, a)
	}
	return nil
}
