// Package config reads xleaf's configuration: the NVUE command listings of
// the guide (`nv config show -o commands`) or the same tree as NVUE's
// startup.yaml, into one validated model.
package config

import "net/netip"

// Config is a whole leaf's configuration.
type Config struct {
	Hostname   string          // system hostname: shown, never applied to the host
	ASN        uint32          // router bgp autonomous-system
	RouterID   netip.Addr      // router bgp router-id
	BGP        bool            // router bgp enable on
	EVPN       bool            // evpn enable on
	VXLAN      bool            // nve vxlan enable on
	GR         GracefulRestart // router bgp graceful-restart
	Interfaces map[string]*Interface
	RouteMaps  map[string]*RouteMap
	VRFs       map[string]*VRF     // tenant VRFs: not default, not mgmt
	Default    Default             // vrf default router bgp
	Ignored    []Ignored           // keys accepted and ignored, once each, with why
	Where      map[string]Position // where each key was first set, without its value ("vrf RED evpn vni"): for errors
}

// GracefulRestart is BGP graceful restart (RFC 4724) on every session, as
// Cumulus spells it (router bgp graceful-restart ...). Zero values are the
// agent's defaults.
type GracefulRestart struct {
	Mode            GRMode
	RestartTime     uint64 // restart-time, seconds (1-4095); 0: 120
	StaleRoutesTime uint64 // stale-routes-time, seconds (1-4095); 0: 360
}

// GRMode is graceful-restart mode.
type GRMode int

const (
	// GRDefault is full: xleaf's data path outlives its agent, so it can
	// promise its peers that forwarding goes on (Cumulus's default is
	// helper-only).
	GRDefault GRMode = iota
	// GRFull: restarting speaker (forwarding preserved) and helper.
	GRFull
	// GRHelperOnly keeps a restarting peer's routes, but this leaf's own
	// restart is an ordinary one: its peers drop its routes.
	GRHelperOnly
	// GROff: no graceful restart capability; sessions end as before.
	GROff
)

func (m GRMode) String() string {
	switch m {
	case GRHelperOnly:
		return "helper-only"
	case GROff:
		return "off"
	}
	return "full"
}

// Interface is one port, loopback or SVI; ranges (swp1-3) are expanded.
type Interface struct {
	Name      string
	Type      string // eth, loopback, swp, ... (NVUE's words, shown as given)
	VRF       string // ip vrf; "" = default; "mgmt" = management (not in Config.VRFs)
	Addresses []netip.Prefix
}

// RouteMap is a policy route-map; rules are kept sorted by sequence.
type RouteMap struct {
	Name  string
	Rules []RouteMapRule
}

// RouteMapRule is one rule. An empty match matches everything.
type RouteMapRule struct {
	Seq            int
	Action         string // permit | deny
	MatchRouteType string // evpn-route-type: ip-prefix | macip | multicast | ""
}

// RouteTarget is a route target: ASN:VALUE (two- or four-octet AS),
// A.B.C.D:VALUE (IPv4-address-specific), or, to import, ANY:VALUE which
// matches any global administrator.
type RouteTarget struct {
	Any   bool
	Addr  netip.Addr // the IPv4-address form; ASN is 0
	ASN   uint32
	Value uint32
}

// VRF is a tenant VRF with its EVPN L3VNI and BGP instance.
type VRF struct {
	Name                  string
	EVPN                  bool   // evpn enable on
	VNI                   uint32 // evpn vni
	BGP                   bool   // router bgp enable on
	ASN                   uint32 // router bgp autonomous-system (default: the global one)
	RouterID              netip.Addr
	IPv4Unicast           bool // address-family ipv4-unicast enable on
	RedistributeConnected bool
	ExportToEVPN          bool // route-export to-evpn enable on
	// address-family ipv6-unicast: the same, for the VRF's IPv6 routes
	// (FRR's advertise ipv6 unicast is route-export to-evpn)
	IPv6Unicast            bool
	RedistributeConnected6 bool
	ExportToEVPN6          bool
	Aggregates             []netip.Prefix // of both families
	ImportRTs              []RouteTarget  // route-import from-evpn route-target; empty = auto (ANY:VNI)
	ExportRTs              []RouteTarget  // route-export to-evpn route-target; empty = auto (ASN:VNI)
}

// Default is the default VRF's BGP instance: the underlay and EVPN sessions.
type Default struct {
	BGP                   bool
	IPv4Unicast           bool
	Networks              []netip.Prefix
	RedistributeConnected bool
	L2VPNEVPN             bool
	Neighbors             map[string]*Neighbor
	PeerGroups            map[string]*PeerGroup
}

// RemoteAS is remote-as external | internal | N.
type RemoteAS struct {
	Kind RemoteASKind // unset: from the peer group
	ASN  uint32       // Kind == ASNumber
}

// RemoteASKind is how a neighbour's AS is given.
type RemoteASKind uint8

const (
	ASUnset    RemoteASKind = iota
	ASExternal              // any AS but ours
	ASInternal              // ours
	ASNumber                // RemoteAS.ASN
)

func (k RemoteASKind) String() string {
	return [...]string{"", "external", "internal", "number"}[k]
}

// Neighbor is a BGP neighbour: an interface (unnumbered) or an address.
type Neighbor struct {
	Name      string // interface name or IP address as written
	Type      NeighborType
	PeerGroup string
	RemoteAS  RemoteAS
}

// NeighborType is how a neighbour is reached.
type NeighborType uint8

const (
	Unnumbered NeighborType = iota + 1 // over the interface Name, at its IPv6 link-local address
	Numbered                           // at the IP address Name
)

func (t NeighborType) String() string {
	return [...]string{"", "unnumbered", "numbered"}[t]
}

// PeerGroup holds the settings its neighbours inherit.
type PeerGroup struct {
	Name                 string
	RemoteAS             RemoteAS
	IPv4Unicast          bool   // address-family ipv4-unicast enable: on unless set off, as in NVUE
	L2VPNEVPN            bool   // address-family l2vpn-evpn enable
	EVPNOutboundRouteMap string // address-family l2vpn-evpn policy outbound route-map
	HoldTime             uint64 // timers hold, seconds; 0: the agent's default (9)
	Keepalive            uint64 // timers keepalive, seconds; 0: a third of the hold time
}

// Ignored is a key we accept and do nothing with, and why.
type Ignored struct {
	Pos    Position
	Key    string // e.g. "service lldp"
	Reason string
}

// Position is where a key was written.
type Position struct {
	File string
	Line int
}

// IsLoopback says whether the interface is the loopback, which holds the
// VTEP address.
func (i *Interface) IsLoopback() bool { return i.Type == "loopback" || i.Name == "lo" }
