package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
)

// The peers part: the BGP sessions of the default VRF, numbered and
// unnumbered (link-local discovery, router advertisements: the _unnumbered
// and _ra files), and the Type-5-only export filter that names them.

// peerSpeaker is what the peers part needs of BGP.
type peerSpeaker interface {
	AddPeer(context.Context, bgp.Peer) error
	DeletePeer(context.Context, bgp.Peer) error
	SetType5Only(context.Context, []netip.Addr) error
	Retry(context.Context, netip.Addr)
}

// peers owns the sessions.
type peers struct {
	log     *slog.Logger
	speaker peerSpeaker
	ctx     context.Context // the agent's lifetime: unnumbered ports' goroutines

	// ops serialises what changes sessions (apply, an unnumbered port's
	// follower); it is held over GoBGP and netlink calls. Readers (shows,
	// the underlay, the kernel watch) take only mu.
	ops sync.Mutex

	// restarting: sessions added now claim a restart with forwarding
	// kept (the restart part clears it); deferral bounds how long GoBGP
	// then holds back what it sends, in seconds.
	restarting atomic.Bool
	deferral   uint32

	mu        sync.Mutex
	cfg       *config.Config
	sessions  map[string]bgp.Peer           // by neighbour name (address or port)
	announced map[string]context.CancelFunc // unnumbered ports sending RAs and followed: stops them
}

func newPeers(log *slog.Logger, speaker peerSpeaker) *peers {
	return &peers{log: log, speaker: speaker, ctx: context.Background(), announced: map[string]context.CancelFunc{},
		sessions: map[string]bgp.Peer{}}
}

// apply brings the sessions in line with cfg. An unnumbered neighbour
// whose link-local address is not seen yet gets its session from its
// port's follower when it appears.
func (ps *peers) apply(ctx context.Context, cfg *config.Config) error {
	ps.ops.Lock()
	defer ps.ops.Unlock()
	ps.mu.Lock()
	ps.cfg = cfg
	have := maps.Clone(ps.sessions)
	ps.mu.Unlock()
	for name, p := range have {
		n, ok := cfg.Default.Neighbors[name]
		if ok {
			// Same session unless what it negotiates changed.
			next, err := ps.peerFor(cfg, n)
			if errors.Is(err, errNoNeighborYet) {
				// Its neighbour is out of sight for now: the session
				// stays as it is; the follower re-points it.
				next.Address, next.Interface, next.LocalAddr, err = p.Address, p.Interface, p.LocalAddr, nil
			}
			// A restart that ended is no change: the session stays.
			next.GR.Restarting = p.GR.Restarting
			ok = err == nil && next == p
		}
		if !ok {
			if err := ps.speaker.DeletePeer(ctx, p); err != nil {
				ps.log.Warn("delete peer", "neighbor", name, "err", err)
			}
			ps.set(name, nil)
		}
	}
	ps.mu.Lock()
	for port, stop := range ps.announced {
		if n := cfg.Default.Neighbors[port]; n == nil || n.Type != config.Unnumbered {
			stop()
			delete(ps.announced, port)
		}
	}
	ps.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(cfg.Default.Neighbors)) {
		n := cfg.Default.Neighbors[name]
		if n.Type == config.Unnumbered {
			ps.follow(name)
		}
		if _, ok := ps.session(name); ok {
			continue
		}
		p, err := ps.peerFor(cfg, n)
		if errors.Is(err, errNoNeighborYet) {
			ps.log.Info("unnumbered neighbour not seen yet: its session starts when it appears", "neighbor", name, "err", err)
			continue
		}
		if err != nil {
			ps.log.Warn("neighbor not started", "neighbor", name, "err", err)
			continue
		}
		if err := ps.speaker.AddPeer(ctx, p); err != nil {
			return err
		}
		ps.set(name, &p)
	}
	return ps.applyType5Only(ctx)
}

func (ps *peers) set(name string, p *bgp.Peer) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p == nil {
		delete(ps.sessions, name)
	} else {
		ps.sessions[name] = *p
	}
}

func (ps *peers) session(name string) (bgp.Peer, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.sessions[name]
	return p, ok
}

// peerFor turns a configured neighbour into a session. An unnumbered
// neighbour not seen yet is errNoNeighborYet; it is not waited for.
func (ps *peers) peerFor(cfg *config.Config, n *config.Neighbor) (bgp.Peer, error) {
	g := cfg.Default.PeerGroups[n.PeerGroup]
	p := bgp.Peer{ConnectRetry: 5, HoldTime: 9, GR: ps.gr(cfg)}
	p.IPv4, p.EVPN = families(cfg, n)
	if g != nil {
		p.HoldTime, p.Keepalive = cmp.Or(g.HoldTime, p.HoldTime), g.Keepalive
	}
	ras := cfg.Default.NeighborRemoteAS(n)
	switch ras.Kind {
	case config.ASExternal:
		p.ASN = 0 // any AS but ours
	case config.ASInternal:
		p.ASN = cfg.ASN
	case config.ASNumber:
		p.ASN = ras.ASN
	default:
		return p, fmt.Errorf("neighbor %s: no remote-as", n.Name)
	}
	if n.Type == config.Unnumbered {
		ifc, err := net.InterfaceByName(n.Name)
		if err != nil {
			return p, fmt.Errorf("unnumbered %s: %w", n.Name, err)
		}
		ll, err := oneLinkLocalNeighbor(ifc)
		if err != nil {
			pingAllNodes(ifc)
			return p, fmt.Errorf("%w: %v", errNoNeighborYet, err)
		}
		p.Address, p.Interface, p.LocalAddr = ll, n.Name, bgp.LinkLocal(n.Name)
		return p, nil
	}
	addr, err := netip.ParseAddr(n.Name)
	if err != nil {
		return p, fmt.Errorf("neighbor %s: %w", n.Name, err)
	}
	p.Address = addr
	return p, nil
}

// families are the address families of a neighbour's session: ipv4-unicast
// and l2vpn-evpn, from its peer group or the default VRF.
func families(cfg *config.Config, n *config.Neighbor) (ipv4, evpn bool) {
	if g := cfg.Default.PeerGroups[n.PeerGroup]; g != nil {
		return g.IPv4Unicast, g.L2VPNEVPN
	}
	return cfg.Default.IPv4Unicast, cfg.Default.L2VPNEVPN
}

// Default graceful restart timers, Cumulus's.
const (
	defaultRestartTime = 120 // seconds
)

// gr is the sessions' graceful restart as cfg has it.
func (ps *peers) gr(cfg *config.Config) bgp.GR {
	switch cfg.GR.Mode {
	case config.GROff:
		return bgp.GR{}
	case config.GRHelperOnly:
		return bgp.GR{Enabled: true, HelperOnly: true, RestartTime: uint32(cmp.Or(cfg.GR.RestartTime, defaultRestartTime))}
	}
	return bgp.GR{Enabled: true, RestartTime: uint32(cmp.Or(cfg.GR.RestartTime, defaultRestartTime)),
		Restarting: ps.restarting.Load(), Deferral: ps.deferral}
}

// nameOf is the neighbour a session's address (as GoBGP names its peer,
// with the zone of an unnumbered one) belongs to; "" if none.
func (ps *peers) nameOf(peer string) string {
	if port := ps.portOf(peer); port != "" {
		return port // an unnumbered neighbour is named by its port
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for name, p := range ps.sessions {
		if p.Address.WithZone("").String() == peer {
			return name
		}
	}
	return ""
}

// applyType5Only gives the export policy the addresses of the peers under
// a Type-5-only route-map. Called with ps.ops held, after any peer change.
func (ps *peers) applyType5Only(ctx context.Context) error {
	ps.mu.Lock()
	cfg := ps.cfg
	var only []netip.Addr
	for name, p := range ps.sessions {
		if n := cfg.Default.Neighbors[name]; n != nil && type5Only(ps.log, cfg, n) {
			only = append(only, p.Address)
		}
	}
	ps.mu.Unlock()
	return ps.speaker.SetType5Only(ctx, only)
}

// type5Only says whether a neighbour's EVPN outbound route-map lets only
// Type-5 routes out, as the guide's control_t5 does. Route-maps that pass
// everything need no filter; other combinations are not supported yet and
// are enforced as Type-5 only, with a warning.
func type5Only(log *slog.Logger, cfg *config.Config, n *config.Neighbor) bool {
	g := cfg.Default.PeerGroups[n.PeerGroup]
	if g == nil || g.EVPNOutboundRouteMap == "" {
		return false
	}
	rm := cfg.RouteMaps[g.EVPNOutboundRouteMap]
	permits := func(routeType string) bool {
		for _, r := range rm.Rules { // sorted by sequence; the first match decides
			if r.MatchRouteType == "" || r.MatchRouteType == routeType {
				return r.Action == "permit"
			}
		}
		return false // route-maps end with an implicit deny
	}
	t5, t2, t3 := permits("ip-prefix"), permits("macip"), permits("multicast")
	switch {
	case t5 && !t2 && !t3:
		return true
	case t5 && t2 && t3:
		return false
	}
	log.Warn("route-map not supported as written; sending Type-5 routes only", "neighbor", n.Name, "route-map", rm.Name)
	return true
}

// names maps each session's address to its neighbour's name.
func (ps *peers) names() map[string]string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := map[string]string{}
	for name, p := range ps.sessions {
		out[p.Address.String()] = name
	}
	return out
}

// portOf is the interface of an unnumbered session, given as GoBGP names
// its peer ("" if none).
func (ps *peers) portOf(peer string) string {
	if _, zone, ok := strings.Cut(peer, "%"); ok {
		return zone
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.sessions {
		if p.Address.WithZone("").String() == peer {
			return p.Interface
		}
	}
	return ""
}

// retryOn restarts at once the sessions over port that are down: its
// link-local address has just become usable (the link came up), so they
// can connect now, out of any backoff.
func (ps *peers) retryOn(ctx context.Context, port string) {
	var retry []netip.Addr
	ps.mu.Lock()
	for _, p := range ps.sessions {
		if p.Interface == port {
			retry = append(retry, p.Address)
		}
	}
	ps.mu.Unlock()
	for _, addr := range retry {
		ps.speaker.Retry(ctx, addr)
	}
}
