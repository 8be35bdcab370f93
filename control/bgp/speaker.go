// Package bgp wraps the embedded GoBGP (v4) speaker: sessions and their
// keeper, EVPN Type-5 and Type-2 origination, the underlay's IPv4 routes,
// and received routes decoded from GoBGP's native paths into this
// package's own small types (Route, RT, Underlay). It is the only package
// that imports GoBGP, and it imports nothing of xleaf's.
package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Speaker is one BGP instance.
type Speaker struct {
	s    *server.BgpServer
	log  *slog.Logger
	asn  uint32
	port uint16             // listening port (0: none)
	stop context.CancelFunc // ends the session keeper

	policySet bool            // the export policy is in place; only its neighbour set changes
	type5Only map[string]bool // the neighbour set's entries

	peerOps  sync.Mutex          // serialises adding and deleting peers in GoBGP; taken before mu
	mu       sync.Mutex          // guards sessions
	sessions map[string]*session // configured peers by address without zone (sessionKey)
}

// Global is the instance's identity.
type Global struct {
	ASN        uint32
	RouterID   netip.Addr
	ListenPort int32    // 179; -1 to not listen
	ListenAddr []string // default: all
}

// New starts a speaker's event loop; Start brings up BGP. With a grpc
// address (host:port) GoBGP's own API listens there, for the stock gobgp CLI.
func New(log *slog.Logger, grpc ...string) *Speaker {
	// No level variable: log's own handler decides what is shown, and the
	// gobgp CLI's "log level" changes nothing.
	opts := []server.ServerOption{server.LoggerOption(log, nil)}
	if len(grpc) > 0 && grpc[0] != "" {
		opts = append(opts, server.GrpcListenAddress(grpc[0]))
	}
	s := server.NewBgpServer(opts...)
	go s.Serve()
	return &Speaker{s: s, log: log, sessions: map[string]*session{}, stop: func() {}}
}

// Start brings up BGP with g.
func (sp *Speaker) Start(ctx context.Context, g Global) error {
	err := sp.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: g.ASN, RouterId: g.RouterID.String(), ListenPort: g.ListenPort, ListenAddresses: g.ListenAddr,
	}})
	if err != nil {
		return fmt.Errorf("start bgp: %w", err)
	}
	sp.asn = g.ASN
	if g.ListenPort > 0 {
		sp.port = uint16(g.ListenPort)
	}
	if err := sp.SetType5Only(ctx, nil); err != nil {
		return fmt.Errorf("start bgp: export policy: %w", err)
	}
	keeperCtx, stop := context.WithCancel(context.Background())
	if err := sp.keep(keeperCtx); err != nil {
		stop()
		return fmt.Errorf("start bgp: watch sessions: %w", err)
	}
	sp.stop = stop
	return nil
}

// Stop ends every session and the instance. Gracefully, peers that
// negotiated graceful restart get no NOTIFICATION: they keep our routes,
// marked stale, until we are back or our restart time ends. Otherwise
// every peer gets one and drops our routes at once.
// StopBgp ends the server for good in v4: a Speaker is not started twice.
func (sp *Speaker) Stop(graceful bool) error {
	sp.stop()
	sp.mu.Lock()
	peers := map[endpoint]bool{}
	for _, s := range sp.sessions {
		port := uint16(179)
		if s.peer.Port != 0 {
			port = uint16(s.peer.Port)
		}
		peers[endpoint{s.peer.Address.WithZone("").Unmap(), port}] = true
	}
	clear(sp.sessions) // nothing is re-added from here on
	sp.mu.Unlock()
	if graceful {
		n := cutSessions(peers, sp.port)
		sp.log.Debug("graceful stop: sessions cut before GoBGP stops", "sessions", n)
	}
	return sp.s.StopBgp(context.Background(), &api.StopBgpRequest{AllowGracefulRestart: graceful})
}

// Restarted says our restart is over (every peer's End-of-RIB came, or we
// stopped waiting): a session configured afresh from now on no longer
// claims a restart.
func (sp *Speaker) Restarted() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, s := range sp.sessions {
		s.peer.GR.Restarting = false
	}
}

// Peer is a neighbour.
type Peer struct {
	Address      netip.Addr // for unnumbered: the resolved IPv6 link-local
	Interface    string     // unnumbered: the interface (zone of Address)
	ASN          uint32     // 0: any (remote-as external)
	Port         uint32     // default 179
	Passive      bool
	LocalAddr    netip.Addr
	IPv4         bool // address-family ipv4-unicast
	EVPN         bool // address-family l2vpn-evpn
	HoldTime     uint64
	Keepalive    uint64 // 0: a third of HoldTime
	ConnectRetry uint64
	GR           GR // graceful restart; the zero value is off
}

// GR is a session's graceful restart (RFC 4724), for each of its families.
type GR struct {
	Enabled bool
	// HelperOnly keeps a restarting peer's routes but promises nothing of
	// our own: peers drop our routes when we restart.
	HelperOnly bool
	// RestartTime is how long, in seconds, peers keep our routes while
	// we restart (1-4095; more would spill into the capability's flags).
	RestartTime uint32
	// Restarting says this speaker restarts with its forwarding state
	// kept (the R bit, and the F bit for every family): peers keep our
	// routes until our End-of-RIB. GoBGP then holds back what it sends
	// until every graceful peer's End-of-RIB, or Deferral seconds.
	Restarting bool
	Deferral   uint32
}

var (
	familyEVPN = &api.Family{Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN}
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
)

// AddPeer configures a neighbour; the session keeper looks after it from
// then on.
func (sp *Speaker) AddPeer(ctx context.Context, p Peer) error {
	if !p.LocalAddr.IsValid() && p.Interface != "" {
		// Without its own link-local address GoBGP sends "::" as the next
		// hop of IPv4 routes over an unnumbered session.
		p.LocalAddr = LinkLocal(p.Interface)
	}
	sp.peerOps.Lock()
	defer sp.peerOps.Unlock()
	if p.Interface != "" {
		refreshZones()
	}
	// Known to the keeper before GoBGP has it: the peer's first state
	// changes come at once.
	key := sessionKey(p.Address)
	sp.mu.Lock()
	if sp.sessions[key] != nil {
		sp.mu.Unlock()
		return fmt.Errorf("add peer %v: already configured", p.Address)
	}
	s := &session{peer: p, since: time.Now()}
	sp.sessions[key] = s
	sp.mu.Unlock()
	err := sp.s.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p)})
	if err == nil && p.Interface != "" && p.LocalAddr.IsValid() {
		if err = sp.nexthopSelf(ctx, p); err != nil {
			// Not half configured: a peer without its next hop would
			// send "::" and never be retried.
			sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()})
		}
	}
	if err != nil {
		sp.mu.Lock()
		if sp.sessions[key] == s {
			delete(sp.sessions, key)
		}
		sp.mu.Unlock()
		return fmt.Errorf("add peer %v: %w", p.Address, err)
	}
	return nil
}

// apiPeer is a neighbour as GoBGP takes it. An unnumbered peer is given
// by its zoned link-local address alone: with NeighborInterface set GoBGP
// looks the address up again in the kernel's neighbour table on every
// add and delete, and fails while the table has none or two.
func apiPeer(p Peer) *api.Peer {
	var afs []*api.AfiSafi
	family := func(f *api.Family) *api.AfiSafi {
		af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if p.GR.Enabled {
			// Without it the family has no tuple in the capability, and
			// peers drop its routes at once even on a graceful restart.
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		return af
	}
	if p.IPv4 {
		afs = append(afs, family(familyIPv4))
	}
	if p.EVPN {
		afs = append(afs, family(familyEVPN))
	}
	peer := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN},
		Transport: &api.Transport{RemotePort: p.Port, PassiveMode: p.Passive},
		AfiSafis:  afs,
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: p.HoldTime, ConnectRetry: p.ConnectRetry, KeepaliveInterval: cmp.Or(p.Keepalive, p.HoldTime/3)}},
	}
	if p.LocalAddr.IsValid() {
		peer.Transport.LocalAddress = p.LocalAddr.String()
	}
	if p.GR.Enabled {
		peer.GracefulRestart = &api.GracefulRestart{Enabled: true, HelperOnly: p.GR.HelperOnly,
			RestartTime: min(p.GR.RestartTime, 4095), LocalRestarting: p.GR.Restarting && !p.GR.HelperOnly,
			DeferralTime: p.GR.Deferral}
	}
	return peer
}

// nexthopSelf sets our link-local address as the next hop of the IPv4
// routes sent over an unnumbered session: GoBGP's own next-hop-self sends
// "::" there (it cannot parse a zoned local address).
func (sp *Speaker) nexthopSelf(ctx context.Context, p Peer) error {
	name := "xleaf-nh-" + p.Interface
	peerSet := netip.PrefixFrom(p.Address.WithZone(""), 128).String()
	if err := sp.s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: name, List: []string{peerSet}}}); err != nil {
		return fmt.Errorf("neighbour set: %w", err)
	}
	policy := &api.Policy{Name: name, Statements: []*api.Statement{{Name: name,
		Conditions: &api.Conditions{AfiSafiIn: []*api.Family{familyIPv4}, NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: name}},
		Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
			Nexthop: &api.NexthopAction{Address: p.LocalAddr.WithZone("").String()}}}}}
	if err := sp.s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: policy}); err != nil {
		return fmt.Errorf("next-hop policy: %w", err)
	}
	return sp.s.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT, Policies: []*api.Policy{{Name: name}}, DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT}})
}

// LinkLocal is an interface's own IPv6 link-local address, with zone
// (invalid if it has none).
func LinkLocal(ifname string) netip.Addr {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsLinkLocalUnicast() {
			return p.Addr().WithZone(ifname)
		}
	}
	return netip.Addr{}
}

// refreshZones makes Go's net package read the interface table again.
// It maps an address's zone (fe80::1%swp1) to an interface index through a
// cache it refreshes once a minute, or when a name is not in it: a port
// deleted and created anew keeps its name and gets a new index, and every
// dial to or from an address zoned with it would go to the old index, and
// fail, for up to a minute. A zone no interface has forces the refresh.
func refreshZones() {
	c, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: net.IPv6loopback, Port: 9, Zone: "xleaf-refresh-zones"})
	if err == nil {
		c.Close()
	}
}

// DeletePeer removes a neighbour and its routes.
func (sp *Speaker) DeletePeer(ctx context.Context, p Peer) error {
	sp.peerOps.Lock()
	defer sp.peerOps.Unlock()
	sp.mu.Lock()
	delete(sp.sessions, sessionKey(p.Address))
	sp.mu.Unlock()
	if err := sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
		return fmt.Errorf("delete peer %v: %w", p.Address, err)
	}
	if p.Interface != "" {
		name := "xleaf-nh-" + p.Interface
		sp.s.DeletePolicyAssignment(ctx, &api.DeletePolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT, Policies: []*api.Policy{{Name: name}}}})
		// All: its statement too, or the set stays in use and the next
		// AddPeer on this port finds the statement already defined.
		sp.s.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: name}, All: true})
		sp.s.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: name}, All: true})
	}
	return nil
}

// Type5 is an EVPN IP prefix route this leaf originates for a VRF.
type Type5 struct {
	RD        string // router-id:N
	Prefix    netip.Prefix
	VTEP      netip.Addr // next hop
	VNI       uint32     // label: the VRF's L3VNI
	RouterMAC net.HardwareAddr
	RTs       []RT // export targets
	// Incomplete marks a redistributed route (ORIGIN incomplete, "?"),
	// as FRR sends connected subnets; else IGP ("i"), as aggregates.
	Incomplete bool
}

func (t Type5) path(asn uint32, withdraw bool) (*apiutil.Path, error) {
	rd, err := bgp.ParseRouteDistinguisher(t.RD)
	if err != nil {
		return nil, fmt.Errorf("rd %q: %w", t.RD, err)
	}
	// The gateway is the family's unspecified address (0.0.0.0 or ::):
	// the route's next hop is the VTEP, as FRR sends it.
	gw := netip.IPv4Unspecified()
	switch a := t.Prefix.Addr(); {
	case a.Is6() && !a.Is4In6() && a.Zone() == "":
		gw = netip.IPv6Unspecified()
	case !a.Is4():
		return nil, fmt.Errorf("prefix %v: not an IPv4 or IPv6 prefix", t.Prefix)
	}
	nlri, err := bgp.NewEVPNIPPrefixRoute(rd, bgp.EthernetSegmentIdentifier{}, 0, uint8(t.Prefix.Bits()),
		t.Prefix.Addr(), gw, t.VNI)
	if err != nil {
		return nil, fmt.Errorf("type-5 nlri: %w", err)
	}
	origin := uint8(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)
	if t.Incomplete {
		origin = bgp.BGP_ORIGIN_ATTR_TYPE_INCOMPLETE
	}
	attrs, err := evpnAttrs(nlri, origin, t.VTEP, t.RouterMAC, t.RTs)
	if err != nil {
		return nil, err
	}
	attrs = append(attrs, bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(asn, markType5, markType5)}))
	return localPath(bgp.RF_EVPN, nlri, attrs, withdraw), nil
}

// localPath is a route this leaf originates, as GoBGP's AddPath and
// DeletePath take it: no peer (that makes it local).
func localPath(family bgp.Family, nlri bgp.NLRI, attrs []bgp.PathAttributeInterface, withdraw bool) *apiutil.Path {
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw, Age: time.Now().Unix()}
}

// evpnAttrs are the attributes of a route this leaf originates: its VTEP
// as next hop, the route targets, VXLAN encapsulation and the router MAC.
func evpnAttrs(nlri bgp.NLRI, origin uint8, vtep netip.Addr, rmac net.HardwareAddr, rts []RT) ([]bgp.PathAttributeInterface, error) {
	comms := []bgp.ExtendedCommunityInterface{}
	for _, rt := range rts {
		comms = append(comms, routeTarget(rt))
	}
	comms = append(comms, bgp.NewEncapExtended(bgp.TUNNEL_TYPE_VXLAN), bgp.NewRoutersMacExtended(rmac.String()))
	reach, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_EVPN, []bgp.PathNLRI{{NLRI: nlri}}, vtep)
	if err != nil {
		return nil, fmt.Errorf("next hop %v: %w", vtep, err)
	}
	return []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(origin),
		reach,
		bgp.NewPathAttributeExtendedCommunities(comms),
	}, nil
}

func routeTarget(rt RT) bgp.ExtendedCommunityInterface {
	if rt.Addr.Is4() {
		c, _ := bgp.NewIPv4AddressSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, rt.Addr, uint16(rt.Value), true) // fails only for a non-IPv4 address
		return c
	}
	if rt.ASN > 0xffff {
		return bgp.NewFourOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, rt.ASN, uint16(rt.Value), true)
	}
	return bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, uint16(rt.ASN), rt.Value, true)
}

// addPath and deletePath are GoBGP's native AddPath and DeletePath for
// one route (no protobuf on the way).
func (sp *Speaker) addPath(p *apiutil.Path) error {
	_, err := sp.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
	return err
}

func (sp *Speaker) deletePath(p *apiutil.Path) error {
	return sp.s.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}})
}

// Advertise originates t (replacing an earlier one with the same RD and
// prefix).
func (sp *Speaker) Advertise(ctx context.Context, t Type5) error {
	p, err := t.path(sp.asn, false)
	if err == nil {
		err = sp.addPath(p)
	}
	if err != nil {
		return fmt.Errorf("advertise %v: %w", t.Prefix, err)
	}
	return nil
}

// Withdraw stops originating t.
func (sp *Speaker) Withdraw(ctx context.Context, t Type5) error {
	p, err := t.path(sp.asn, true)
	if err == nil {
		err = sp.deletePath(p)
	}
	if err != nil {
		return fmt.Errorf("withdraw %v: %w", t.Prefix, err)
	}
	return nil
}

// WithdrawAll stops originating every EVPN route at once; peers get the
// withdrawals packed, as after a table dump.
func (sp *Speaker) WithdrawAll(ctx context.Context) error {
	evpn := bgp.RF_EVPN
	if err := sp.s.DeletePath(apiutil.DeletePathRequest{DeleteAll: true, DeleteFamily: &evpn}); err != nil {
		return fmt.Errorf("withdraw all: %w", err)
	}
	return nil
}

// Event is a received route, or its withdrawal: an EVPN route (Route) or
// an underlay IPv4 route (Underlay); or a peer's End-of-RIB (EOR) for a
// family, after all of its routes of that family.
type Event struct {
	Route    *Route
	Underlay *Underlay
	Withdraw bool
	EOR      *EOR
}

// EOR is a peer's End-of-RIB: it has sent its whole table of a family.
type EOR struct {
	Peer string // the session's address, with its zone when unnumbered
	EVPN bool   // l2vpn-evpn; else ipv4-unicast
}

// RT is a route target as it travels in a route: ASN:value, a two-octet
// AS with a four-octet value or a four-octet AS with a two-octet one; or
// Addr:value, an IPv4 address with a two-octet value.
type RT struct {
	Addr  netip.Addr // the IPv4-address-specific form; ASN is 0
	ASN   uint32
	Value uint32
}

func (rt RT) String() string {
	if rt.Addr.IsValid() {
		return fmt.Sprintf("%s:%d", rt.Addr, rt.Value)
	}
	return fmt.Sprintf("%d:%d", rt.ASN, rt.Value)
}

// Route is an EVPN route from a peer as Watch decodes it: a Type-5 IP
// prefix route, or a Type-2 MAC/IP route with an L3VNI as a /32 host route.
type Route struct {
	Peer      string // the session's address, with its zone when unnumbered
	RD        string
	Prefix    netip.Prefix
	VTEP      netip.Addr
	VNI       uint32 // the label: the L3VNI to encapsulate with
	RouterMAC net.HardwareAddr
	RTs       []RT
	ASPath    []uint32
	Origin    uint8  // BGP ORIGIN: 0 IGP, 1 EGP, 2 incomplete
	LocalPref uint32 // 0: none sent (default 100)
	Type2     bool
	HostMAC   net.HardwareAddr // Type-2: the host's MAC
}

// Underlay is an IPv4 unicast route from a peer: the fabric's loopbacks.
type Underlay struct {
	Peer    string // the session's address, with its zone when unnumbered
	Prefix  netip.Prefix
	NextHop netip.Addr // IPv4, or the peer's IPv6 link-local (RFC 5549)
}

// ErrSkipped marks a received path that is not for the RIB (own routes,
// other EVPN route types); Watch counts and logs the others.
var ErrSkipped = errors.New("not a route for the agent")

// Watch calls fn for every best EVPN path from a peer, starting with the
// current table, until ctx ends. Paths it cannot decode are logged and
// passed to bad; the session and every other route are kept.
func (sp *Speaker) Watch(ctx context.Context, fn func(Event), bad func(error)) error {
	// GoBGP's paths are handed over as they are in its table (NLRI and
	// attributes shared with it): decode only reads them.
	var n names // the watcher calls back from one goroutine
	return sp.s.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnBestPath: func(paths []*apiutil.Path, _ time.Time) {
		for _, p := range paths {
			if p.Family == bgp.RF_IPv4_UC {
				if u, err := decodeIPv4(p); err == nil {
					fn(Event{Underlay: u, Withdraw: p.Withdrawal})
				}
				continue
			}
			if p.Family != bgp.RF_EVPN {
				continue
			}
			path, err := decode(p, &n)
			switch {
			case errors.Is(err, ErrSkipped):
			case err != nil:
				sp.log.Warn("undecodable evpn path", "peer", p.PeerAddress, "err", err)
				if bad != nil {
					bad(err)
				}
			default:
				fn(Event{Route: path, Withdraw: p.Withdrawal})
			}
		}
	}, OnPathEor: func(p *apiutil.Path, _ time.Time) {
		if p.PeerAddress.IsValid() && (p.Family == bgp.RF_EVPN || p.Family == bgp.RF_IPv4_UC) {
			fn(Event{EOR: &EOR{Peer: p.PeerAddress.String(), EVPN: p.Family == bgp.RF_EVPN}})
		}
	}}, server.WatchBestPath(true), server.WatchEor(false))
}

// decodeIPv4 reads a received IPv4 unicast path (ErrSkipped for our own).
func decodeIPv4(p *apiutil.Path) (*Underlay, error) {
	if !p.PeerAddress.IsValid() {
		return nil, ErrSkipped // our own: GoBGP's local paths have no peer
	}
	nlri, ok := p.Nlri.(*bgp.IPAddrPrefix)
	if !ok {
		return nil, fmt.Errorf("ipv4 nlri %T: not a prefix", p.Nlri)
	}
	u := &Underlay{Peer: p.PeerAddress.String(), Prefix: nlri.Prefix}
	for _, attr := range p.Attrs {
		switch a := attr.(type) {
		case *bgp.PathAttributeNextHop:
			u.NextHop = a.Value
		case *bgp.PathAttributeMpReachNLRI:
			// RFC 5549: an IPv6 next hop comes in MP_REACH; GoBGP keeps
			// only the first (global) address of a global+link-local pair.
			u.NextHop = a.Nexthop
		}
	}
	u.NextHop = u.NextHop.Unmap()
	if !u.NextHop.IsValid() {
		return nil, fmt.Errorf("ipv4 %v: no next hop", u.Prefix)
	}
	return u, nil
}

// AdvertiseIPv4 originates an underlay prefix (the loopback); GoBGP sets
// the next hop to the session's own address towards each peer.
func (sp *Speaker) AdvertiseIPv4(ctx context.Context, p netip.Prefix, withdraw bool) error {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return fmt.Errorf("underlay %v: %w", p, err)
	}
	nh, _ := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified()) // fails only for an invalid address
	path := localPath(bgp.RF_IPv4_UC, nlri, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh}, withdraw)
	if withdraw {
		err = sp.deletePath(path)
	} else {
		err = sp.addPath(path)
	}
	if err != nil {
		return fmt.Errorf("underlay %v: %w", p, err)
	}
	return nil
}

// names holds the strings decode gives the routes of a table: the peers'
// addresses and the route distinguishers, one copy of each (a million
// routes come from a few peers with a few RDs: made for each route, they
// were two allocations a route and about 50 MB of a 1M-route agent's
// heap, by its profiles before and after).
type names struct {
	peers map[netip.Addr]string
	rds   map[rdKey]string
}

// rdKey is a route distinguisher of a known type, comparable.
type rdKey struct {
	typ      uint8
	addr     netip.Addr
	admin    uint32
	assigned uint32
}

// maxNames bounds names: past it, it starts again.
const maxNames = 1 << 12

func (n *names) peer(a netip.Addr) string {
	if s, ok := n.peers[a]; ok {
		return s
	}
	if n.peers == nil || len(n.peers) >= maxNames {
		n.peers = map[netip.Addr]string{}
	}
	s := a.String()
	n.peers[a] = s
	return s
}

func (n *names) rd(rd bgp.RouteDistinguisherInterface) string {
	var k rdKey
	switch v := rd.(type) {
	case *bgp.RouteDistinguisherTwoOctetAS:
		k = rdKey{typ: 0, admin: uint32(v.Admin), assigned: v.Assigned}
	case *bgp.RouteDistinguisherIPAddressAS:
		k = rdKey{typ: 1, addr: v.Admin, assigned: uint32(v.Assigned)}
	case *bgp.RouteDistinguisherFourOctetAS:
		k = rdKey{typ: 2, admin: v.Admin, assigned: uint32(v.Assigned)}
	default:
		return rd.String()
	}
	if s, ok := n.rds[k]; ok {
		return s
	}
	if n.rds == nil || len(n.rds) >= maxNames {
		n.rds = map[rdKey]string{}
	}
	s := rd.String()
	n.rds[k] = s
	return s
}

// decode turns a GoBGP path into a Route: Type-5 routes of either family,
// and Type-2 MAC/IP routes that carry an L3VNI (second label) as host
// routes (/32, /128).
func decode(p *apiutil.Path, n *names) (*Route, error) {
	if !p.PeerAddress.IsValid() {
		return nil, ErrSkipped // our own
	}
	evpn, ok := p.Nlri.(*bgp.EVPNNLRI)
	if !ok {
		return nil, fmt.Errorf("nlri %T: not evpn", p.Nlri)
	}
	out := &Route{Peer: n.peer(p.PeerAddress)}
	var err error
	switch route := evpn.RouteTypeData.(type) {
	case *bgp.EVPNIPPrefixRoute:
		a := route.IPPrefix
		if a.Is4In6() || !a.IsValid() {
			return nil, fmt.Errorf("type-5 prefix %v: neither IPv4 nor IPv6", route.IPPrefix)
		}
		out.Prefix, err = a.Prefix(int(route.IPPrefixLength))
		if err != nil {
			return nil, fmt.Errorf("type-5 prefix length %d: %w", route.IPPrefixLength, err)
		}
		out.RD, out.VNI = n.rd(route.RD), route.Label
	case *bgp.EVPNMacIPAdvertisementRoute:
		a := route.IPAddress
		if !a.IsValid() || a.Is4In6() || !a.IsGlobalUnicast() || len(route.Labels) < 2 {
			return nil, ErrSkipped // MAC only, link-local, or no L3VNI: layer 2, not ours
		}
		out.Prefix = netip.PrefixFrom(a, a.BitLen())
		// Copied: the agent keeps it, and GoBGP's table still holds this one.
		out.RD, out.VNI, out.Type2, out.HostMAC = n.rd(route.RD), route.Labels[1], true, slices.Clone(route.MacAddress)
	default:
		return nil, ErrSkipped
	}
	if out.VNI == 0 || out.VNI >= 1<<24 {
		return nil, fmt.Errorf("%v: label %d is not a VNI", out.Prefix, out.VNI)
	}
	for _, attr := range p.Attrs {
		switch a := attr.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			out.VTEP = a.Nexthop.Unmap()
		case *bgp.PathAttributeNextHop:
			out.VTEP = a.Value.Unmap()
		case *bgp.PathAttributeOrigin:
			out.Origin = a.Value
		case *bgp.PathAttributeLocalPref:
			out.LocalPref = a.Value
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				out.ASPath = append(out.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeExtendedCommunities:
			for _, ec := range a.Value {
				switch c := ec.(type) {
				case *bgp.TwoOctetAsSpecificExtended:
					if c.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET {
						out.RTs = append(out.RTs, RT{ASN: uint32(c.AS), Value: c.LocalAdmin})
					}
				case *bgp.FourOctetAsSpecificExtended:
					if c.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET {
						out.RTs = append(out.RTs, RT{ASN: c.AS, Value: uint32(c.LocalAdmin)})
					}
				case *bgp.IPv4AddressSpecificExtended:
					if c.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET {
						out.RTs = append(out.RTs, RT{Addr: c.IPv4, Value: uint32(c.LocalAdmin)})
					}
				case *bgp.RouterMacExtended:
					out.RouterMAC = slices.Clone(c.Mac)
				}
			}
		}
	}
	switch {
	case !out.VTEP.Is4():
		return nil, fmt.Errorf("%v: next hop %v is not an IPv4 VTEP", out.Prefix, out.VTEP)
	case len(out.RouterMAC) != 6 || out.RouterMAC[0]&1 == 1 || isZero(out.RouterMAC):
		return nil, fmt.Errorf("%v from %v: no usable router MAC", out.Prefix, out.VTEP)
	case len(out.RTs) == 0:
		return nil, fmt.Errorf("%v from %v: no route target", out.Prefix, out.VTEP)
	}
	return out, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// PeerState is a session as `show bgp summary` shows it.
type PeerState struct {
	Address  string
	ASN      uint32
	State    string    // idle, connect, active, opensent, openconfirm, established
	Since    time.Time // established: since when
	Changed  time.Time // the last state change seen (zero: none yet)
	Failures int       // failed attempts since it was last up for a while
	Received uint64
	Sent     uint64
	GR       GRState
}

// GRState is a session's graceful restart as GoBGP has it.
type GRState struct {
	Mode            string // ours: full, helper-only, off
	Negotiated      bool   // the peer's OPEN carried the capability
	PeerRestarting  bool   // its routes are kept, stale, until it is back
	PeerRestartTime uint32 // seconds it asked us to wait
}

// Peers lists the sessions. Counting what was sent walks the whole table
// for each peer, so it is only done when sent is true (Sent stays 0).
func (sp *Speaker) Peers(ctx context.Context, sent bool) ([]PeerState, error) {
	var out []PeerState
	err := sp.s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: sent}, func(p *api.Peer) {
		ps := PeerState{Address: p.GetConf().GetNeighborAddress(), ASN: p.GetState().GetPeerAsn(),
			State: strings.ToLower(strings.TrimPrefix(p.GetState().GetSessionState().String(), "SESSION_STATE_"))}
		if up := p.GetTimers().GetState().GetUptime(); up != nil && ps.State == "established" {
			ps.Since = up.AsTime()
		}
		for _, af := range p.GetAfiSafis() {
			ps.Received += af.GetState().GetReceived()
			ps.Sent += af.GetState().GetAdvertised()
		}
		gr := p.GetGracefulRestart()
		ps.GR = GRState{Mode: "off", PeerRestarting: gr.GetPeerRestarting(), PeerRestartTime: gr.GetPeerRestartTime()}
		switch {
		case gr.GetEnabled() && gr.GetHelperOnly():
			ps.GR.Mode = "helper-only"
		case gr.GetEnabled():
			ps.GR.Mode = "full"
		}
		for _, c := range p.GetState().GetRemoteCap() {
			ps.GR.Negotiated = ps.GR.Negotiated || c.GetGracefulRestart() != nil
		}
		out = append(out, ps)
	})
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for i, ps := range out {
		if a, err := netip.ParseAddr(ps.Address); err == nil {
			if s := sp.sessions[sessionKey(a)]; s != nil {
				out[i].Changed, out[i].Failures = s.since, s.failures
			}
		}
	}
	return out, nil
}

// Host is an attached host this leaf advertises as a Type-2 MAC/IP route
// carrying the VRF's L3VNI, as a symmetric-IRB leaf does: Type-5-only
// filters (the guide's DCI policy) keep it inside the site.
type Host struct {
	RD        string
	MAC       net.HardwareAddr
	IP        netip.Addr
	VTEP      netip.Addr
	VNI       uint32 // L3VNI, sent as both labels (xleaf has no L2VNI)
	RouterMAC net.HardwareAddr
	RTs       []RT
}

func (h Host) path(withdraw bool) (*apiutil.Path, error) {
	rd, err := bgp.ParseRouteDistinguisher(h.RD)
	if err != nil {
		return nil, fmt.Errorf("rd %q: %w", h.RD, err)
	}
	nlri, err := bgp.NewEVPNMacIPAdvertisementRoute(rd, bgp.EthernetSegmentIdentifier{}, 0, h.MAC.String(), h.IP, []uint32{h.VNI, h.VNI})
	if err != nil {
		return nil, fmt.Errorf("type-2 nlri: %w", err)
	}
	attrs, err := evpnAttrs(nlri, bgp.BGP_ORIGIN_ATTR_TYPE_IGP, h.VTEP, h.RouterMAC, h.RTs)
	if err != nil {
		return nil, err
	}
	return localPath(bgp.RF_EVPN, nlri, attrs, withdraw), nil
}

// AdvertiseHost originates a host route.
func (sp *Speaker) AdvertiseHost(ctx context.Context, h Host) error {
	p, err := h.path(false)
	if err == nil {
		err = sp.addPath(p)
	}
	if err != nil {
		return fmt.Errorf("advertise host %v: %w", h.IP, err)
	}
	return nil
}

// WithdrawHost stops originating a host route.
func (sp *Speaker) WithdrawHost(ctx context.Context, h Host) error {
	p, err := h.path(true)
	if err == nil {
		err = sp.deletePath(p)
	}
	if err != nil {
		return fmt.Errorf("withdraw host %v: %w", h.IP, err)
	}
	return nil
}

// GoBGP's policies cannot match an EVPN route type, so the Type-5 routes
// this leaf originates carry a large community, ASN:88:5, that the export
// policy matches and strips.
const markType5 = 88<<8 | 5 // "X5"

// SetType5Only makes the export policy send towards peers (a route-map
// like the guide's control_t5: permit ip-prefix, deny the rest) only the
// Type-5 routes this leaf originates: no Type-2 or Type-3 route, and no
// route relayed from another peer. Every peer gets EVPN next hops
// unchanged, so remote leafs encapsulate straight to the originating VTEP.
func (sp *Speaker) SetType5Only(ctx context.Context, peers []netip.Addr) error {
	// A neighbour set with no entry matches every neighbour: a
	// never-used address keeps it from being empty. The set is edited in
	// place: the policy holds the set it was built with, and a replaced
	// set would no longer be the one it evaluates.
	want := map[string]bool{"0.0.0.0/32": true}
	for _, p := range peers {
		want[netip.PrefixFrom(p.WithZone(""), p.BitLen()).String()] = true
	}
	set := func(list []string) *api.DefinedSet {
		return &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: "xleaf-type5-only", List: list}
	}
	var add, del []string
	for p := range want {
		if !sp.type5Only[p] {
			add = append(add, p)
		}
	}
	for p := range sp.type5Only {
		if !want[p] {
			del = append(del, p)
		}
	}
	if len(add) > 0 {
		if err := sp.s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set(add)}); err != nil {
			return fmt.Errorf("neighbour set: %w", err)
		}
	}
	if len(del) > 0 {
		if err := sp.s.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set(del)}); err != nil {
			return fmt.Errorf("neighbour set: %w", err)
		}
	}
	sp.type5Only = want
	// Sessions already up get their routes again through the new policy.
	for _, p := range append(add, del...) {
		if pfx, err := netip.ParsePrefix(p); err == nil && pfx.Addr().IsUnspecified() {
			continue
		} else if err == nil {
			sp.s.ResetPeer(ctx, &api.ResetPeerRequest{Address: pfx.Addr().String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT})
		}
	}
	if sp.policySet {
		return nil
	}
	mark := fmt.Sprintf("^%d:%d:%d$", sp.asn, markType5, markType5)
	if err := sp.s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_LARGE_COMMUNITY, Name: "xleaf-own-type5", List: []string{mark}}}); err != nil {
		return fmt.Errorf("large community set: %w", err)
	}
	evpn := []*api.Family{familyEVPN}
	strip := &api.CommunityAction{Type: api.CommunityAction_TYPE_REMOVE, Communities: []string{mark}}
	unchanged := &api.NexthopAction{Unchanged: true}
	policy := &api.Policy{Name: "xleaf-export", Statements: []*api.Statement{
		{Name: "xleaf-own-type5-to-type5-only", Conditions: &api.Conditions{AfiSafiIn: evpn,
			NeighborSet:       &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: "xleaf-type5-only"},
			LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: "xleaf-own-type5"}},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, LargeCommunity: strip, Nexthop: unchanged}},
		{Name: "xleaf-rest-not-to-type5-only", Conditions: &api.Conditions{AfiSafiIn: evpn,
			NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: "xleaf-type5-only"}},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}},
		{Name: "xleaf-evpn", Conditions: &api.Conditions{AfiSafiIn: evpn},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, LargeCommunity: strip, Nexthop: unchanged}},
	}}
	if err := sp.s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: policy}); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := sp.s.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT, Policies: []*api.Policy{{Name: "xleaf-export"}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT}}); err != nil {
		return fmt.Errorf("policy assignment: %w", err)
	}
	sp.policySet = true
	return nil
}
