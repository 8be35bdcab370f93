package control

import (
	"net/netip"
	"time"

	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/dataplane"
)

// The data path as the agent's parts use it: each part takes the role it
// needs, so a part's test gives it that and nothing more.
// *dataplane.Dataplane (the maps of the loaded program) and
// *dataplane.Fake (the same tables in memory, for tests without root)
// both play every role.

// VRFTable is the data path's VRFs and the local VTEP: the agent's.
type VRFTable interface {
	SetVRF(dataplane.VRF) error
	DeleteVRF(dataplane.VRFID) error
	VRFs() ([]dataplane.VRF, error)
	AddVTEP(netip.Addr) error
}

// RouteTable is each VRF's routes: the pipeline's.
type RouteTable interface {
	rib.Dataplane
	Routes(dataplane.VRFID) ([]dataplane.Route, error)
	EachRoute(dataplane.VRFID, func(dataplane.Route) error) error
}

// PortTable is which ports run the data path, and how: the ports part's.
type PortTable interface {
	AttachUplink(ifname string) error
	AttachAccess(ifname string, vrf dataplane.VRFID) error
	Detach(ifname string) error
	Attached() ([]string, error)
}

// HostTable is the attached hosts and the misses the data path reports
// for hosts it cannot reach yet: the hosts part's.
type HostTable interface {
	SetNeighbor(dataplane.VRFID, netip.Addr, dataplane.Neighbor) error
	DeleteNeighbor(dataplane.VRFID, netip.Addr) error
	Neighbors() (map[dataplane.ModelNeighborKey]dataplane.Neighbor, error)
	Events() (dataplane.EventReader, error)
}

// CounterTable is the per-VRF verdict counters: the views'.
type CounterTable interface {
	Counters() (map[dataplane.CounterKey]dataplane.Counter, error)
	Leaks() (map[dataplane.Leak]dataplane.Counter, error)
	SuppressedEvents() (uint64, error)
	ICMPStats() (map[dataplane.VRFID]dataplane.ICMPStats, error)
	FIBPools() []dataplane.FIBPool
}

// HopTable is the underlay next hops in the data path: the hops part's.
type HopTable interface {
	RemoteVTEPs() []netip.Addr
	RemoteVTEPsChanged() <-chan struct{}
	SetUnderlayHop(netip.Addr, dataplane.UnderlayHop) error
	RenewUnderlayHops(valid time.Duration) error
	UnderlayHopsLive() (bool, error)
	DeleteUnderlayHop(netip.Addr) error
	UnderlayHops() (map[netip.Addr]dataplane.UnderlayHop, error)
	UnderlayFallbacks() (uint64, error)
	LocalVTEPs() ([]netip.Addr, error)
}

// Dataplane is every role: what NewAgent takes.
type Dataplane interface {
	VRFTable
	RouteTable
	PortTable
	HostTable
	CounterTable
	HopTable
}

var (
	_ Dataplane = (*dataplane.Dataplane)(nil)
	_ Dataplane = (*dataplane.Fake)(nil)
)
