package control

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/dataplane"
)

// usableNeigh are the kernel neighbour states the data path may use.
const usableNeigh = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |
	netlink.NUD_PERMANENT | netlink.NUD_NOARP

// watchNeighbors keeps the data path's hosts in step with the kernel's
// neighbour table on access ports, and advertises them, until ctx ends.
func (a *Agent) watchNeighbors(ctx context.Context) error {
	subscribe := func() (chan netlink.NeighUpdate, error) {
		ch := make(chan netlink.NeighUpdate, 4096)
		done := make(chan struct{})
		go func() { <-ctx.Done(); close(done) }()
		return ch, netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{ListExisting: true,
			ErrorCallback: func(err error) {
				if ctx.Err() == nil {
					a.log.Warn("neighbour updates", "err", err)
				}
			}})
	}
	ch, err := subscribe()
	if err != nil {
		return err
	}
	go func() {
		for {
			for u := range ch {
				a.neighbor(ctx, u)
			}
			// The subscription ends on a receive error (ENOBUFS under
			// churn): subscribe again, listing what exists, so nothing
			// is missed for good.
			if ctx.Err() != nil {
				return
			}
			for {
				if ch, err = subscribe(); err == nil {
					break
				}
				a.log.Warn("resubscribe to neighbour updates", "err", err)
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

func (a *Agent) neighbor(ctx context.Context, u netlink.NeighUpdate) {
	ip, ok := netip.AddrFromSlice(u.IP)
	if !ok || !ip.Unmap().Is4() {
		return
	}
	ip = ip.Unmap()
	port, err := net.InterfaceByIndex(u.LinkIndex)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	vrf, attached := a.ports[port.Name]
	if !attached || vrf == "" {
		return // not a tenant port
	}
	if !a.onSubnet(port.Name, ip) {
		// A tenant can make the kernel learn any sender address (ARP);
		// only hosts on the port's own subnets become routes.
		return
	}
	id := a.ids[vrf]
	key := vrf + "/" + ip.String()
	if u.Type == unix.RTM_NEWNEIGH && u.State&usableNeigh != 0 && len(u.HardwareAddr) == 6 {
		err := a.dp.SetNeighbor(id, ip, dataplane.Neighbor{Ifindex: port.Index, MAC: u.HardwareAddr, SrcMAC: port.HardwareAddr})
		if err != nil {
			a.log.Error("install neighbour", "vrf", vrf, "host", ip, "err", err)
			return
		}
		a.rib.SetHost(vrf, ip, true)
		a.hostPorts[key] = port.Name
		a.advertiseHost(ctx, key, vrf, ip, u.HardwareAddr)
		return
	}
	delete(a.hostPorts, key)
	a.rib.SetHost(vrf, ip, false)
	if err := a.dp.DeleteNeighbor(id, ip); err == nil {
		a.log.Debug("neighbour gone", "vrf", vrf, "host", ip)
	}
	if h, ok := a.hosts[key]; ok {
		if err := a.bgp.WithdrawHost(ctx, h); err != nil {
			a.log.Warn("withdraw host", "host", key, "err", err)
		}
		delete(a.hosts, key)
	}
}

// forgetHosts removes every host learned on port (detached, or moved to
// another VRF): from the data path, the RIB and BGP. Called with a.mu held.
func (a *Agent) forgetHosts(port string) {
	for key, p := range a.hostPorts {
		if p != port {
			continue
		}
		vrf, addr, _ := strings.Cut(key, "/")
		ip := netip.MustParseAddr(addr)
		a.dp.DeleteNeighbor(a.ids[vrf], ip)
		a.rib.SetHost(vrf, ip, false)
		if h, ok := a.hosts[key]; ok {
			if err := a.bgp.WithdrawHost(context.Background(), h); err != nil {
				a.log.Warn("withdraw host", "host", key, "err", err)
			}
			delete(a.hosts, key)
		}
		delete(a.hostPorts, key)
	}
}

// onSubnet says whether ip is inside one of port's configured subnets.
// Called with a.mu held.
func (a *Agent) onSubnet(port string, ip netip.Addr) bool {
	if ifc := a.cfg.Interfaces[port]; ifc != nil {
		for _, p := range ifc.Addresses {
			if p.Masked().Contains(ip) && p.Addr() != ip {
				return true
			}
		}
	}
	return false
}

// advertiseHost sends a host as a Type-2 route with the VRF's L3VNI.
// Called with a.mu held.
func (a *Agent) advertiseHost(ctx context.Context, key, vrf string, ip netip.Addr, mac net.HardwareAddr) {
	v := a.cfg.VRFs[vrf]
	if v == nil || !v.EVPN {
		return
	}
	h := bgp.Host{RD: a.rd(vrf), MAC: mac, IP: ip, VTEP: a.vtep, VNI: v.VNI, RouterMAC: a.rmac,
		RTs: []rib.RT{{ASN: v.ASN, Value: v.VNI}}}
	if old, ok := a.hosts[key]; ok {
		if old.MAC.String() == mac.String() {
			return
		}
		// The MAC is part of the route: the old one must go.
		if err := a.bgp.WithdrawHost(ctx, old); err != nil {
			a.log.Warn("withdraw host", "host", key, "err", err)
		}
		delete(a.hosts, key)
	}
	if err := a.bgp.AdvertiseHost(ctx, h); err != nil {
		a.log.Warn("advertise host", "host", key, "err", err)
		return
	}
	a.hosts[key] = h
}

// resolveMisses answers the data path's misses: it makes the kernel
// resolve the neighbour (at most once a second per address), and the
// neighbour watch then installs it.
func (a *Agent) resolveMisses(ctx context.Context, dp interface {
	Events() (*dataplane.Events, error)
}) error {
	ev, err := dp.Events()
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ev.Close() }()
	go func() {
		limit := newProbeLimiter(time.Second, maxProbesPerSecond)
		for {
			e, err := ev.Read()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.Warn("data path events", "err", err)
				continue
			}
			if !limit.allow(e.Addr, time.Now()) {
				continue
			}
			port := a.portFor(e)
			if port == "" {
				a.log.Debug("miss for an address on no port", "addr", e.Addr, "vrf", e.VRF)
				continue
			}
			probe(port, e.Addr)
		}
	}()
	return nil
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

// portFor is the port to resolve a miss on.
func (a *Agent) portFor(e dataplane.Event) string {
	if e.Kind == dataplane.UnderlayMiss {
		if ifc, err := net.InterfaceByIndex(e.Ifindex); err == nil {
			return ifc.Name
		}
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, id := range a.ids {
		if id != e.VRF {
			continue
		}
		for port, ifc := range a.cfg.Interfaces {
			if ifc.VRF != name {
				continue
			}
			for _, p := range ifc.Addresses {
				if p.Masked().Contains(e.Addr) {
					return port
				}
			}
		}
	}
	return ""
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
