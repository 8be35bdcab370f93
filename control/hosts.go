package control

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/dataplane"
)

// The hosts part: the tenant hosts on access ports, from the kernel's
// neighbour table (ARP and ND) into the data path, the RIB (/32 and /128
// routes other VRFs leak) and BGP (Type-2 MAC/IP routes); and the data path's misses, answered by
// making the kernel resolve them.

// hostSpeaker is what the hosts part needs of BGP.
type hostSpeaker interface {
	AdvertiseHost(context.Context, bgp.Host) error
	WithdrawHost(context.Context, bgp.Host) error
}

// hostRoutes is what it needs of the RIB.
type hostRoutes interface {
	SetHost(vrf string, addr netip.Addr, present bool)
}

// hostKey names a host: its address within a VRF.
type hostKey struct {
	vrf  dataplane.VRFID
	addr netip.Addr
}

// host is a host the data path holds.
type host struct {
	vrf        string
	port       string
	ifindex    int
	mac        net.HardwareAddr
	advertised *bgp.Host // its Type-2 route, if the VRF has EVPN
}

// hosts keeps the data path's hosts in step with the kernel.
type hosts struct {
	log     *slog.Logger
	dp      HostTable
	rib     hostRoutes
	speaker hostSpeaker
	ports   *ports
	leaf    leaf
	vrfs    atomic.Pointer[vrfSet]

	mu    sync.Mutex // guards known; held over the data path and BGP calls for one host
	known map[hostKey]*host

	wg sync.WaitGroup // the watchers watch and resolveMisses start
}

func newHosts(log *slog.Logger, dp HostTable, rib hostRoutes, speaker hostSpeaker, ports *ports, leaf leaf) *hosts {
	return &hosts{log: log, dp: dp, rib: rib, speaker: speaker, ports: ports, leaf: leaf, known: map[hostKey]*host{}}
}

// watch follows the kernel's neighbour table until ctx ends.
func (h *hosts) watch(ctx context.Context) error {
	subscribe := func() (chan netlink.NeighUpdate, error) {
		ch := make(chan netlink.NeighUpdate, 4096)
		done := make(chan struct{})
		go func() { <-ctx.Done(); close(done) }()
		return ch, netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{ListExisting: true,
			ErrorCallback: func(err error) {
				if ctx.Err() == nil {
					h.log.Warn("neighbour updates", "err", err)
				}
			}})
	}
	ch, err := subscribe()
	if err != nil {
		return err
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			for u := range ch {
				port, err := net.InterfaceByIndex(u.LinkIndex)
				if err != nil {
					continue
				}
				ip, _ := netip.AddrFromSlice(u.IP)
				present := u.Type == unix.RTM_NEWNEIGH && u.State&nudValid != 0 && len(u.HardwareAddr) == 6
				if h.neighbor(ctx, port, ip.Unmap(), u.HardwareAddr, present) && u.State == netlink.NUD_STALE {
					// The data path's packets never pass the kernel,
					// which would collect the entry (keep.go).
					if err := keepNeighbor(port.Index, ip.Unmap()); err != nil {
						h.log.Warn("keep host's neighbour entry", "port", port.Name, "host", ip, "err", err)
					}
				}
			}
			// The subscription ends on a receive error (ENOBUFS under
			// churn): subscribe again, listing what exists, and forget
			// the hosts the kernel no longer has, so nothing is missed
			// for good.
			if ctx.Err() != nil {
				return
			}
			for {
				if ch, err = subscribe(); err == nil {
					h.forgetAbsent()
					break
				}
				h.log.Warn("resubscribe to neighbour updates", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return nil
}

// neighbor takes one neighbour entry of the kernel's: a host at ip with
// mac on port, present or gone. It says whether the data path holds the
// host now.
func (h *hosts) neighbor(ctx context.Context, port *net.Interface, ip netip.Addr, mac net.HardwareAddr, present bool) bool {
	if !ip.Is4() && !ip.IsGlobalUnicast() {
		return false // a link-local neighbour (every IPv6 host has one): the link's, not routed
	}
	role, attached := h.ports.role(port.Name)
	if !attached || role.kind != roleAccess {
		return false // not a tenant port
	}
	if !h.ports.onSubnet(port.Name, ip) {
		// A tenant can make the kernel learn any sender address (ARP);
		// only hosts on the port's own subnets become routes.
		return false
	}
	v := h.vrfs.Load().get(role.vrf)
	if v == nil || v.ID != role.id {
		return false // its VRF is being replaced
	}
	k := hostKey{v.ID, ip}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !present {
		if _, ok := h.known[k]; ok {
			h.log.Debug("neighbour gone", "vrf", v.Name, "host", ip)
		}
		h.forget(k)
		return false
	}
	err := h.dp.SetNeighbor(v.ID, ip, dataplane.Neighbor{Ifindex: port.Index, MAC: mac, SrcMAC: port.HardwareAddr})
	if err != nil {
		h.log.Error("install neighbour", "vrf", v.Name, "host", ip, "err", err)
		return false
	}
	h.rib.SetHost(v.Name, ip, true)
	cur := h.known[k]
	if cur == nil {
		cur = &host{vrf: v.Name}
		h.known[k] = cur
	}
	cur.port, cur.ifindex, cur.mac = port.Name, port.Index, mac
	h.advertise(ctx, v, k, cur)
	return true
}

// forgetAbsent forgets the hosts whose neighbour entry the kernel no
// longer has: after lost events, a deletion may have gone unheard.
func (h *hosts) forgetAbsent() {
	have, err := kernelNeighbours()
	if err != nil {
		h.log.Warn("forget hosts gone while events were lost", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, cur := range h.known {
		if _, ok := have[neighKey{cur.ifindex, k.addr}]; !ok {
			h.log.Debug("neighbour gone while events were lost", "vrf", cur.vrf, "host", k.addr)
			h.forget(k)
		}
	}
}

// advertise sends a host as a Type-2 route with the VRF's L3VNI, replacing
// one with another MAC. Called with h.mu held.
func (h *hosts) advertise(ctx context.Context, v *tenantVRF, k hostKey, cur *host) {
	if !v.EVPN {
		return
	}
	if old := cur.advertised; old != nil {
		if old.MAC.String() == cur.mac.String() {
			return
		}
		// The MAC is part of the route: the old one must go.
		if err := h.speaker.WithdrawHost(ctx, *old); err != nil {
			h.log.Warn("withdraw host", "vrf", v.Name, "host", k.addr, "err", err)
		}
		cur.advertised = nil
	}
	r := bgp.Host{RD: v.RD, MAC: cur.mac, IP: k.addr, VTEP: h.leaf.vtep, VNI: v.VNI, RouterMAC: h.leaf.rmac,
		RTs: v.exportRTs()}
	if err := h.speaker.AdvertiseHost(ctx, r); err != nil {
		h.log.Warn("advertise host", "vrf", v.Name, "host", k.addr, "err", err)
		return
	}
	cur.advertised = &r
}

// forget removes a host from the data path, the RIB and BGP. Called with
// h.mu held.
func (h *hosts) forget(k hostKey) {
	cur := h.known[k]
	h.dp.DeleteNeighbor(k.vrf, k.addr)
	if cur == nil {
		return
	}
	delete(h.known, k)
	h.rib.SetHost(cur.vrf, k.addr, false)
	if cur.advertised != nil {
		if err := h.speaker.WithdrawHost(context.Background(), *cur.advertised); err != nil {
			h.log.Warn("withdraw host", "vrf", cur.vrf, "host", k.addr, "err", err)
		}
	}
}

// forgetPorts removes every host learned on ports (detached, or moved to
// another VRF).
func (h *hosts) forgetPorts(ports []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, cur := range h.known {
		for _, port := range ports {
			if cur.port == port {
				h.forget(k)
			}
		}
	}
}

// resolveMisses answers the data path's misses: it makes the kernel
// resolve the neighbour (at most once a second per address), and the
// neighbour watch then installs it.
func (h *hosts) resolveMisses(ctx context.Context) error {
	ev, err := h.dp.Events()
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ev.Close() }()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		limit := newProbeLimiter(time.Second, maxProbesPerSecond)
		for {
			e, err := ev.Read()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				h.log.Warn("data path events", "err", err)
				continue
			}
			if !limit.allow(e.Addr, time.Now()) {
				continue
			}
			port := h.portFor(e)
			if port == "" {
				h.log.Debug("miss for an address on no port", "addr", e.Addr, "vrf", e.VRF)
				continue
			}
			probe(port, e.Addr)
		}
	}()
	return nil
}

// portFor is the port to resolve a miss on.
func (h *hosts) portFor(e dataplane.Event) string {
	if e.Kind == dataplane.UnderlayMiss {
		if ifc, err := net.InterfaceByIndex(e.Ifindex); err == nil {
			return ifc.Name
		}
		return ""
	}
	if vs := h.vrfs.Load(); vs != nil && vs.byID[e.VRF] != nil {
		return h.ports.hostPort(vs.byID[e.VRF].Name, e.Addr)
	}
	return ""
}

// maxProbesPerSecond bounds the neighbour probes of all misses together:
// a tenant sweeping its subnet must not turn into an ARP storm or an
// ever-growing table here.
const maxProbesPerSecond = 1000

// probeLimiter lets an address be probed once per interval, and at most
// max addresses per interval in all; it remembers only the current
// interval's addresses.
type probeLimiter struct {
	interval time.Duration
	max      int
	start    time.Time // of the current interval
	seen     map[netip.Addr]bool
}

func newProbeLimiter(interval time.Duration, max int) *probeLimiter {
	return &probeLimiter{interval: interval, max: max, seen: map[netip.Addr]bool{}}
}

func (l *probeLimiter) allow(addr netip.Addr, now time.Time) bool {
	if now.Sub(l.start) >= l.interval {
		l.start, l.seen = now, map[netip.Addr]bool{}
	}
	if l.seen[addr] || len(l.seen) >= l.max {
		return false
	}
	l.seen[addr] = true
	return true
}

// probe makes the kernel resolve addr on port: a datagram to the discard
// port, sent out of that port, waits for ARP or ND like any other.
func probe(port string, addr netip.Addr) {
	network := "udp4"
	if addr.Is6() {
		network = "udp6"
		addr = addr.WithZone(port)
	}
	d := net.Dialer{Timeout: time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), port) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial(network, netip.AddrPortFrom(addr, 9).String())
	if err != nil {
		return
	}
	c.Write([]byte{0})
	c.Close()
}

// audit compares the data path's hosts with the hosts this part holds and
// with the kernel's usable neighbour entries: every host in the data path
// is one the agent holds, at the port and MAC the kernel has for it, and
// every host the agent holds is in the data path. In a report's terms:
// "missing", "extra" (not the agent's, or gone from the kernel) and
// "different" (another port or MAC than the kernel's).
func (h *hosts) audit() (diffs []rib.Difference, n int, err error) {
	inDP, err := h.dp.Neighbors()
	if err != nil {
		return nil, 0, err
	}
	kernel, err := kernelNeighbours()
	if err != nil {
		return nil, 0, err
	}
	vs := h.vrfs.Load()
	where := func(ifindex int, mac string) string {
		if ifc, err := net.InterfaceByIndex(ifindex); err == nil {
			return mac + " on " + ifc.Name
		}
		return fmt.Sprintf("%s on ifindex %d", mac, ifindex)
	}
	diff := func(k hostKey, kind, want, got string) {
		diffs = append(diffs, rib.Difference{VRF: vs.nameOf(k.vrf), Prefix: netip.PrefixFrom(k.addr, k.addr.BitLen()).String(),
			Kind: kind, Want: want, Got: got})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for dk, got := range inDP {
		k := hostKey{dk.VRF, dk.Addr}
		n, inKernel := kernel[neighKey{got.Ifindex, k.addr}]
		switch _, held := h.known[k]; {
		case !held:
			diff(k, "extra", "", "host "+where(got.Ifindex, got.MAC.String())+" (not the agent's)")
		case !inKernel:
			diff(k, "extra", "", "host "+where(got.Ifindex, got.MAC.String())+" (the kernel has no entry)")
		case n.mac.String() != got.MAC.String():
			diff(k, "different", "host "+where(got.Ifindex, n.mac.String()), "host "+where(got.Ifindex, got.MAC.String()))
		}
	}
	for k, cur := range h.known {
		if _, ok := inDP[dataplane.ModelNeighborKey{VRF: k.vrf, Addr: k.addr}]; !ok {
			diff(k, "missing", "host "+where(cur.ifindex, cur.mac.String()), "")
		}
	}
	return diffs, len(h.known), nil
}
