package control

import (
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

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/control/show"
	"github.com/xleaf/xleaf/dataplane"
)

// The hops part: each remote VTEP's underlay next hops, resolved from the
// kernel's routes, neighbours and links, kept in the data path so that its
// packets need no FIB lookup in the kernel (bpf/fib.h). The kernel stays the
// authority: a VTEP is resolved again on every change of a route, a link or
// a neighbour it could depend on (netlink events), when the VTEPs routes
// name change, and every hopsInterval in case an event was lost. A VTEP that
// cannot be resolved (no route, a next hop without a valid neighbour, every
// path's link down) has no entry, so its packets ask the kernel, which
// answers as it would for any packet (and reports an unresolved neighbour
// to the hosts part, which probes it).
//
// Between a change in the kernel and the next resolution (a millisecond or
// two, TestHopsFollowTheKernel measures it) packets still take the old
// paths, as a hardware router's do until its FIB is reprogrammed.

// hopsInterval is how often every VTEP is resolved again without an event,
// and its entry renewed; hopsSettle how long a burst of events is let
// settle before resolving.
var (
	hopsInterval = time.Second
	hopsSettle   = time.Millisecond
)

// hopsValid is how long the entries are used without being renewed: a
// few passes, so that an agent that stops (killed, hung, restarting)
// leaves its packets to the kernel's lookup within a few seconds.
func hopsValid() time.Duration { return max(5*time.Second, 3*hopsInterval) }

// hops owns the data path's underlay next hops.
type hops struct {
	log *slog.Logger
	dp  HopTable

	mu       sync.Mutex
	have     map[netip.Addr]dataplane.UnderlayHop // what the data path holds
	failing  map[netip.Addr]string                // why a VTEP is not resolved, logged once
	watching map[netip.Addr]bool                  // next hops (and VTEPs) whose neighbours matter
	probed   map[neighKey]time.Time               // unresolved next hops probed, and when

	cancel context.CancelFunc // set by run: ends it
	done   chan struct{}      // closed when run's goroutine has ended
}

func newHops(log *slog.Logger, dp HopTable) *hops {
	return &hops{log: log, dp: dp, have: map[netip.Addr]dataplane.UnderlayHop{}, failing: map[netip.Addr]string{},
		watching: map[netip.Addr]bool{}, probed: map[neighKey]time.Time{}}
}

// run resolves until ctx ends. The first subscriptions are made before it
// returns, so no change after it is missed.
func (h *hops) run(ctx context.Context) error {
	sub, err := subscribe()
	if err != nil {
		return err
	}
	h.sync(true)
	ctx, h.cancel = context.WithCancel(ctx)
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		for {
			h.follow(ctx, sub)
			close(sub.done)
			if ctx.Err() != nil {
				return
			}
			// A subscription ended (the socket overran, most likely):
			// without events the entries could go stale, so they go,
			// and packets ask the kernel until a new subscription is
			// in place and has resolved everything again.
			h.log.Warn("underlay next hops: netlink events lost; asking the kernel until resubscribed")
			h.flush()
			for sub = nil; sub == nil; {
				select {
				case <-ctx.Done():
					return
				case <-time.After(hopsInterval):
				}
				if sub, err = subscribe(); err != nil {
					h.log.Warn("underlay next hops: resubscribing", "err", err)
				}
			}
			h.sync(true)
		}
	}()
	return nil
}

// stop ends run and waits for it: nothing touches the data path after
// it returns (so the data path can be closed).
func (h *hops) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
}

// subscription is the netlink events resolving follows.
type subscription struct {
	done   chan struct{}
	routes chan netlink.RouteUpdate
	neighs chan netlink.NeighUpdate
	links  chan netlink.LinkUpdate
}

func subscribe() (*subscription, error) {
	s := &subscription{done: make(chan struct{}), routes: make(chan netlink.RouteUpdate, 256),
		neighs: make(chan netlink.NeighUpdate, 1024), links: make(chan netlink.LinkUpdate, 256)}
	if err := netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("watch routes: %w", err)
	}
	if err := netlink.NeighSubscribeWithOptions(s.neighs, s.done, netlink.NeighSubscribeOptions{}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("watch neighbours: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("watch links: %w", err)
	}
	return s, nil
}

// follow resolves on sub's events, on a change of the VTEPs routes name,
// and every hopsInterval, until ctx ends or a subscription does.
func (h *hops) follow(ctx context.Context, sub *subscription) {
	tick := time.NewTicker(hopsInterval)
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	pending := false
	kick := func() {
		if !pending {
			pending = true
			settle.Reset(hopsSettle)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-sub.routes:
			if !ok {
				return
			}
			if u.Family == unix.AF_INET {
				kick()
			}
		case u, ok := <-sub.neighs:
			if !ok {
				return
			}
			if h.matters(u.Neigh) {
				kick()
			}
		case _, ok := <-sub.links:
			if !ok {
				return
			}
			kick()
		case <-h.dp.RemoteVTEPsChanged():
			kick()
		case <-settle.C:
			pending = false
			h.sync(false)
		case <-tick.C:
			h.sync(true)
		}
	}
}

// flush takes every entry out of the data path.
func (h *hops) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for vtep := range h.have {
		h.drop(vtep)
	}
}

// matters says whether a neighbour's change can change a VTEP's paths: it
// is a next hop (or a directly connected VTEP) some resolution looked for.
func (h *hops) matters(n netlink.Neigh) bool {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.watching[a.Unmap()]
}

// sync resolves every VTEP routes name and brings the data path in line;
// with renew, it renews the data path's watchdog: the entries stay in use
// for hopsValid.
func (h *hops) sync(renew bool) {
	vteps := h.dp.RemoteVTEPs()
	k, err := readKernel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		// Keep what the data path has, unrenewed: the next pass tries
		// again, and if none succeeds they expire.
		h.log.Warn("underlay next hops: reading the kernel's tables", "err", err)
		return
	}
	// The kernel's lookup from the packets' outer source, as the program's
	// own (bpf_fib_lookup from the VRF's VTEP), so that a policy rule on
	// the source is followed; with several local VTEPs, from none.
	var src netip.Addr
	if local, err := h.dp.LocalVTEPs(); err == nil && len(local) == 1 {
		src = local[0]
	}
	want := map[netip.Addr]bool{}
	h.watching = map[netip.Addr]bool{}
	for _, vtep := range vteps {
		want[vtep] = true
		hop, err := k.resolve(vtep, src, h.watching)
		if err != nil {
			if why := err.Error(); h.failing[vtep] != why {
				h.log.Info("underlay next hop not resolved; its packets ask the kernel", "vtep", vtep, "why", why)
				h.failing[vtep] = why
			}
			h.drop(vtep)
			continue
		}
		if _, was := h.failing[vtep]; was {
			h.log.Info("underlay next hop resolved", "vtep", vtep, "paths", len(hop.Members))
			delete(h.failing, vtep)
		}
		if old, ok := h.have[vtep]; ok && old.Equal(hop) {
			continue
		}
		if err := h.dp.SetUnderlayHop(vtep, hop); err != nil {
			if why := err.Error(); h.failing[vtep] != why { // once, not every pass (a full map)
				h.log.Warn("underlay next hop not written; its packets ask the kernel", "vtep", vtep, "err", err)
				h.failing[vtep] = why
			}
			h.drop(vtep)
			continue
		}
		h.have[vtep] = hop
	}
	for vtep := range h.have {
		if !want[vtep] {
			h.drop(vtep)
		}
	}
	for vtep := range h.failing {
		if !want[vtep] {
			delete(h.failing, vtep)
		}
	}
	h.probe(k.unresolved)
	for n := range k.keep {
		if err := keepNeighbor(n.ifindex, n.addr); err != nil {
			h.log.Warn("keep underlay next hop's neighbour entry", "next hop", n.addr, "err", err)
		}
	}
	if renew {
		if err := h.dp.RenewUnderlayHops(hopsValid()); err != nil {
			h.log.Warn("underlay next hops: renewing; packets ask the kernel", "err", err)
		}
	}
}

// probe makes the kernel resolve the next hops of unresolved paths, each
// at most once per hopsInterval (a probe's own neighbour events bring the
// next pass at once). A VTEP none of whose paths resolve asks the kernel
// per packet, which resolves its next hop as for any packet; one with some
// paths resolved sends the kernel nothing, so without this a path whose
// neighbour had expired would stay out of use for good. Called with h.mu
// held.
func (h *hops) probe(unresolved map[neighKey]string) {
	now := time.Now()
	for k, port := range unresolved {
		if now.Sub(h.probed[k]) < hopsInterval {
			continue
		}
		h.probed[k] = now
		go probe(port, k.addr)
	}
	for k := range h.probed {
		if _, ok := unresolved[k]; !ok {
			delete(h.probed, k)
		}
	}
}

// drop takes vtep's paths out of the data path. Called with h.mu held.
func (h *hops) drop(vtep netip.Addr) {
	if _, ok := h.have[vtep]; !ok {
		return
	}
	if err := h.dp.DeleteUnderlayHop(vtep); err != nil {
		h.log.Warn("underlay next hop", "vtep", vtep, "err", err)
		return
	}
	delete(h.have, vtep)
}

// view is show underlay: the VTEPs routes name, resolved or why not.
func (h *hops) view() (show.Underlay, error) {
	var u show.Underlay
	var err error
	if u.Live, err = h.dp.UnderlayHopsLive(); err != nil {
		return u, err
	}
	if u.FallbackPackets, err = h.dp.UnderlayFallbacks(); err != nil {
		return u, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, vtep := range h.dp.RemoteVTEPs() {
		v := show.UnderlayVTEP{VTEP: vtep.String()}
		if hop, ok := h.have[vtep]; ok {
			v.Resolved = true
			for _, m := range hop.Members {
				name := fmt.Sprint(m.Ifindex)
				if ifc, err := net.InterfaceByIndex(m.Ifindex); err == nil {
					name = ifc.Name
				}
				v.Paths = append(v.Paths, show.UnderlayPath{Interface: name, NextHopMAC: m.DstMAC.String(), MTU: m.MTU})
			}
		} else if why, ok := h.failing[vtep]; ok {
			v.Reason = why
		} else {
			v.Reason = "not resolved yet"
		}
		u.VTEPs = append(u.VTEPs, v)
	}
	return u, nil
}

// resolved is how many VTEPs have paths in the data path.
func (h *hops) resolved() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.have)
}

// kernelState is one reading of what resolving needs besides the routes:
// the valid neighbours and the links.
type kernelState struct {
	neighs map[neighKey]kernelNeighbour
	links  map[int]netlink.Link
	// unresolved are the next hops of paths resolve found without a valid
	// neighbour, with their port's name.
	unresolved map[neighKey]string
	// keep are the STALE next hops of the paths resolve found: the
	// kernel forgets them unless used (keep.go).
	keep map[neighKey]bool
}

// readKernel takes the reading: a neighbour dump and a link dump per pass,
// whatever the number of VTEPs.
func readKernel() (*kernelState, error) {
	neighs, err := kernelNeighbours()
	if err != nil {
		return nil, err
	}
	k := &kernelState{neighs: neighs, links: map[int]netlink.Link{}, unresolved: map[neighKey]string{}, keep: map[neighKey]bool{}}
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range ls {
		k.links[l.Attrs().Index] = l
	}
	return k, nil
}

// rtnhFlagsDown are a multipath member's flags that take it out of use.
const rtnhFlagsDown = unix.RTNH_F_DEAD | unix.RTNH_F_LINKDOWN

// ResolveUnderlay is vtep's underlay paths as the kernel has them now: what
// the agent puts in the data path.
func ResolveUnderlay(vtep netip.Addr) (dataplane.UnderlayHop, error) {
	k, err := readKernel()
	if err != nil {
		return dataplane.UnderlayHop{}, err
	}
	return k.resolve(vtep, netip.Addr{}, map[netip.Addr]bool{})
}

// resolve finds vtep's paths with the kernel's own route lookup (policy
// rules and tables are the kernel's business): the route it matches
// ('ip route get fibmatch') gives every path of a multipath route and the
// route's MTU; a route whose paths are not spelled out in it (a next-hop
// object) gives the path the kernel's lookup takes. Every next hop it
// looked for goes in watch.
func (k *kernelState) resolve(vtep, src netip.Addr, watch map[netip.Addr]bool) (dataplane.UnderlayHop, error) {
	var hop dataplane.UnderlayHop
	opts := netlink.RouteGetOptions{FIBMatch: true}
	if src.IsValid() {
		opts.SrcAddr = src.AsSlice()
	}
	got, err := netlink.RouteGetWithOptions(vtep.AsSlice(), &opts)
	if err != nil || len(got) == 0 {
		return hop, fmt.Errorf("no route: %v", err)
	}
	r := got[0]
	if r.Type != unix.RTN_UNICAST {
		return hop, fmt.Errorf("route %v of type %d", r.Dst, r.Type)
	}
	// What the program cannot do as the kernel would stays the kernel's:
	// an encapsulating route (the lookup refuses it per packet too),
	// unequal multipath weights (the program splits evenly), more paths
	// than an entry holds.
	if r.Encap != nil {
		return hop, fmt.Errorf("route %v encapsulates (%v)", r.Dst, r.Encap)
	}
	if len(r.MultiPath) > dataplane.MaxUnderlayECMP {
		return hop, fmt.Errorf("route %v has %d paths, more than %d", r.Dst, len(r.MultiPath), dataplane.MaxUnderlayECMP)
	}
	var paths []path
	for _, nh := range r.MultiPath {
		if nh.Encap != nil {
			return hop, fmt.Errorf("route %v: a path encapsulates (%v)", r.Dst, nh.Encap)
		}
		if nh.Hops != r.MultiPath[0].Hops {
			return hop, fmt.Errorf("route %v: paths of unequal weights", r.Dst)
		}
		if nh.Flags&rtnhFlagsDown == 0 {
			paths = append(paths, path{ifindex: nh.LinkIndex, via: nextHop(nh.Gw, nh.Via, vtep)})
		}
	}
	if len(r.MultiPath) == 0 && r.LinkIndex > 0 {
		paths = []path{{ifindex: r.LinkIndex, via: nextHop(r.Gw, r.Via, vtep)}}
	}
	if len(r.MultiPath) == 0 && r.LinkIndex == 0 {
		opts.FIBMatch = false
		taken, err := netlink.RouteGetWithOptions(vtep.AsSlice(), &opts)
		if err != nil || len(taken) == 0 {
			return hop, fmt.Errorf("no route: %v", err)
		}
		paths = []path{{ifindex: taken[0].LinkIndex, via: nextHop(taken[0].Gw, taken[0].Via, vtep)}}
	}
	var why []string
	for _, p := range paths {
		watch[p.via] = true
		// The kernel's lookup holds a route's MTU only when it is locked
		// (ip_mtu_from_fib_result; ip_forward_use_pmtu off), else the
		// device's.
		routeMTU := 0
		if r.MTULock {
			routeMTU = r.MTU
		}
		m, err := k.member(p, routeMTU)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if len(hop.Members) < dataplane.MaxUnderlayECMP {
			hop.Members = append(hop.Members, m)
		}
	}
	if len(hop.Members) == 0 {
		if len(why) == 0 {
			return hop, fmt.Errorf("route %v has no usable path", r.Dst)
		}
		return hop, errors.New(strings.Join(why, "; "))
	}
	// One order for the same paths, whatever order the kernel lists them
	// in: a flow keeps its path across resolutions.
	slices.SortFunc(hop.Members, func(a, b dataplane.UnderlayMember) int {
		if a.Ifindex != b.Ifindex {
			return a.Ifindex - b.Ifindex
		}
		return slices.Compare(a.DstMAC, b.DstMAC)
	})
	return hop, nil
}

// path is one way towards a VTEP: out of ifindex, to the neighbour via.
type path struct {
	ifindex int
	via     netip.Addr
}

// nextHop is the neighbour a path leads to: its gateway (IPv4, or IPv6
// link-local for an RFC 5549 route), or the VTEP itself when connected.
func nextHop(gw net.IP, via netlink.Destination, vtep netip.Addr) netip.Addr {
	if a, ok := netip.AddrFromSlice(gw); ok && !a.IsUnspecified() {
		return a.Unmap()
	}
	if v, ok := via.(*netlink.Via); ok {
		if a, ok := netip.AddrFromSlice(v.Addr); ok {
			return a.Unmap()
		}
	}
	return vtep
}

// member is one path as the data path takes it; an error if its link is
// down or its next hop has no valid neighbour entry.
func (k *kernelState) member(p path, routeMTU int) (dataplane.UnderlayMember, error) {
	var m dataplane.UnderlayMember
	l, ok := k.links[p.ifindex]
	if !ok {
		return m, fmt.Errorf("no link %d", p.ifindex)
	}
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 || (a.OperState != netlink.OperUp && a.OperState != netlink.OperUnknown) {
		return m, fmt.Errorf("%s is down", a.Name)
	}
	if len(a.HardwareAddr) != 6 {
		return m, fmt.Errorf("%s has no Ethernet address", a.Name)
	}
	nk := neighKey{p.ifindex, p.via}
	n, ok := k.neighs[nk]
	if !ok {
		k.unresolved[nk] = a.Name
		return m, fmt.Errorf("next hop %v on %s not resolved", p.via, a.Name)
	}
	if n.stale {
		k.keep[nk] = true
	}
	mtu := a.MTU
	if routeMTU > 0 && routeMTU < mtu {
		mtu = routeMTU
	}
	return dataplane.UnderlayMember{Ifindex: p.ifindex, SrcMAC: a.HardwareAddr, DstMAC: n.mac, MTU: mtu}, nil
}

// FollowUnderlay keeps dp's underlay next hops in step with the kernel of
// the calling goroutine's network namespace until ctx ends or stop is
// called, as xleafd's hops part does: for tests and tools that run a data
// path without the agent. Its first resolution is done when it returns;
// stop waits until it no longer touches dp.
func FollowUnderlay(ctx context.Context, log *slog.Logger, dp HopTable) (stop func(), err error) {
	h := newHops(log, dp)
	if err := h.run(ctx); err != nil {
		return nil, err
	}
	return h.stop, nil
}
