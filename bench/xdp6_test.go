package bench_test

// BenchmarkXDP6 is BenchmarkXDP's IPv6 twin: the same four paths, timed the
// same way (one BPF_PROG_TEST_RUN per frame of a pool of random
// destinations), for a dual-stack tenant's IPv6 packets over the same
// underlay, VNIs and nexthop groups.
//
// The table: RED's IPv6 table holds N generated routes, all remote over
// RED's groups (as BenchmarkXDP's: own VNI, leaked, site 2, all three), in
// tenant6, the way one tenant's allocation fills up: 60% /64
// subnets, 25% /128 host routes, 15% /48../56 aggregates of sites; and
// 2*localNets local /64s of RED and GREEN hosts (254 neighbours each)
// among them: four prefix lengths (128, 64, 56, 48), as a tenant's
// table has, so the lookup probes fib6 at most four times. Routes of other
// VRFs add entries to the same hash but no probes, so N is per VRF (the
// size designed for: 100k).

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

var sizes6 = []struct {
	name   string
	routes int
}{{"1k", 1_000}, {"10k", 10_000}, {"100k", 100_000}}

// BenchmarkXDP6 times each path on each table twice, the VRF looked up in
// its trie and in the hash (Options.FIB6MinRoutes), interleaved: the
// ratio between them is what sets the default.
func BenchmarkXDP6(b *testing.B) {
	for _, size := range sizes6 {
		b.Run("routes="+size.name, func(b *testing.B) {
			bed := newBed6(b, size.routes)
			for _, p := range paths {
				pl := bed.pool(b, p, poolSize)
				for _, lookup := range []struct {
					name string
					min  uint32
				}{{"trie", 1 << 31}, {"hash", 1}} {
					must(b, bed.l.DP.SetFIB6MinRoutes(lookup.min))
					b.Run("path="+p.String()+"/lookup="+lookup.name, func(b *testing.B) { measure(b, bed.l.DP.Program().FD(), pl, 1) })
				}
			}
			must(b, bed.l.DP.SetFIB6MinRoutes(0))
		})
	}
}

// TestPools6 builds a small IPv6 bed and each path's pool, which checks
// that every frame forwards where it must.
func TestPools6(t *testing.T) {
	bed := newBed6(t, 1000)
	for _, p := range paths {
		t.Run(p.String(), func(t *testing.T) { bed.pool(t, p, 256) })
	}
}

type bed6 struct {
	l          *fixture.Leaf
	rng        *rand.Rand
	red        map[netip.Prefix]target
	remote     []netip.Prefix
	byGroup    [numGroups][]netip.Prefix
	redHosts   []netip.Prefix
	greenHosts []netip.Prefix
}

// tenant6 is where the generated routes live: clear of the fixture's own
// IPv6 routes (2001:db8:0::/36).
var tenant6 = netip.MustParsePrefix("2001:db8:8000::/33")

func newBed6(tb testing.TB, routes int) *bed6 {
	tb.Helper()
	l := fixture.New(tb)
	b := &bed6{l: l, rng: rand.New(rand.NewPCG(seed, uint64(routes))), red: map[netip.Prefix]target{}}
	local := map[netip.Prefix]bool{}
	for len(local) < 2*localNets {
		p := netip.PrefixFrom(b.randomAddr(), 64).Masked()
		if local[p] {
			continue
		}
		local[p] = true
		if len(b.redHosts) < localNets {
			b.redHosts = append(b.redHosts, p)
			b.red[p] = target{hostVRF: fixture.RED}
		} else {
			b.greenHosts = append(b.greenHosts, p)
			b.red[p] = target{hostVRF: fixture.GREEN}
		}
	}
	table := fixture.Routes()[fixture.RED]
	for p, t := range b.red {
		table = append(table, dataplane.Route{Prefix: p, Kind: dataplane.RouteLocal, HostVRF: t.hostVRF})
	}
	groups := remoteGroups(fixture.RED)
	for n := 0; n < routes; {
		var bits int
		switch k := b.rng.IntN(20); {
		case k < 12:
			bits = 64
		case k < 17:
			bits = 128
		default:
			bits = 48 + 8*b.rng.IntN(2)
		}
		p := netip.PrefixFrom(b.randomAddr(), bits).Masked()
		if _, taken := b.red[p]; taken || local[netip.PrefixFrom(p.Addr(), 64).Masked()] {
			continue
		}
		g := pickGroup(b.rng)
		b.red[p] = target{group: g}
		b.remote = append(b.remote, p)
		b.byGroup[g] = append(b.byGroup[g], p)
		table = append(table, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: groups[g]})
		n++
	}
	start := time.Now()
	must(tb, l.DP.ReplaceTable(fixture.RED, table))
	tables := time.Since(start)
	// GREEN delivers its hosts: RED's routes to them are leaks.
	green := fixture.Routes()[fixture.GREEN]
	for _, p := range b.greenHosts {
		green = append(green, dataplane.Route{Prefix: p, Kind: dataplane.RouteLocal, HostVRF: fixture.GREEN})
	}
	must(tb, l.DP.ReplaceTable(fixture.GREEN, green))
	for _, h := range []struct {
		vrf  dataplane.VRFID
		nets []netip.Prefix
		ifc  *net.Interface
	}{{fixture.RED, b.redHosts, l.Swp10}, {fixture.GREEN, b.greenHosts, l.Swp20}} {
		for _, p := range h.nets {
			for i := 1; i < 255; i++ {
				a := hostAddr6(p, i)
				must(tb, l.DP.SetNeighbor(h.vrf, a, dataplane.Neighbor{Ifindex: h.ifc.Index, MAC: hostMAC6(h.vrf, a), SrcMAC: h.ifc.HardwareAddr}))
			}
		}
	}
	resolveHops(tb, l.DP)
	tb.Logf("%d IPv6 routes in RED installed in %v", routes, tables.Round(time.Millisecond))
	return b
}

// randomAddr is uniform over tenant6.
func (b *bed6) randomAddr() netip.Addr {
	a := tenant6.Addr().As16()
	binary.BigEndian.PutUint32(a[4:], b.rng.Uint32()|0x80000000)
	binary.BigEndian.PutUint64(a[8:], b.rng.Uint64())
	return netip.AddrFrom16(a)
}

// randomIn is a random address of a random one of ps.
func (b *bed6) randomIn(ps []netip.Prefix) netip.Addr {
	p := ps[b.rng.IntN(len(ps))]
	a := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		if b.rng.IntN(2) == 1 {
			a[i/8] |= 0x80 >> (i % 8)
		}
	}
	return netip.AddrFrom16(a)
}

func (b *bed6) lookup(a netip.Addr) (target, bool) {
	for bits := 128; bits >= 0; bits-- {
		if t, ok := b.red[netip.PrefixFrom(a, bits).Masked()]; ok {
			return t, true
		}
	}
	return target{}, false
}

func hostAddr6(p netip.Prefix, i int) netip.Addr {
	a := p.Addr().As16()
	binary.BigEndian.PutUint16(a[14:], uint16(i))
	return netip.AddrFrom16(a)
}

func hostMAC6(vrf dataplane.VRFID, a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x02, byte(vrf), b[12], b[13], b[14], b[15]}
}

// pool builds n frames for path p, each checked to forward out of the
// right port with the right MACs, hop limit and (encapsulated) VTEP, VNI
// and router MAC.
func (b *bed6) pool(tb testing.TB, p path, n int) *pool {
	tb.Helper()
	l := b.l
	pl := &pool{action: dataplane.XDPRedirect}
	for tries := 0; len(pl.frames) < n; tries++ {
		if tries > 100*n {
			tb.Fatalf("%v: only %d of %d frames after %d tries", p, len(pl.frames), n, tries)
		}
		var dst netip.Addr
		switch p {
		case decapLocal:
			dst = hostAddr6(b.redHosts[b.rng.IntN(len(b.redHosts))], 1+b.rng.IntN(254))
		case accessLeak:
			dst = hostAddr6(b.greenHosts[b.rng.IntN(len(b.greenHosts))], 1+b.rng.IntN(254))
		case dciLeak:
			dst = b.randomIn(b.byGroup[gLeaked])
		case accessEncap:
			dst = b.randomIn(b.remote)
		}
		t, ok := b.lookup(dst)
		if !ok || (p == dciLeak && (t.hostVRF != 0 || t.group != gLeaked)) || (p == accessEncap && t.hostVRF != 0) {
			continue
		}
		flow := fixture.Flow{Dst: dst, SrcPort: uint16(1024 + b.rng.IntN(64000)), DstPort: 443, TTL: 64, Payload: make([]byte, payloadLen-20)}
		var data []byte
		var ingress int
		switch p {
		case decapLocal, dciLeak:
			flow.Src = hostAddr6(netip.MustParsePrefix("2001:db8:20::/64"), 1+b.rng.IntN(254))
			inner := fixture.Frame(tb, fixture.RouterMAC, fixture.Border04MAC, flow)
			data = fixture.VXLAN(tb, fixture.Outer{DstMAC: l.Swp3.HardwareAddr, SrcMAC: fixture.DCIMAC,
				Src: fixture.Border04, Dst: fixture.VTEP, SrcPort: uint16(49152 + b.rng.IntN(16384)), VNI: fixture.RedVNI}, inner)
			ingress = l.Swp3.Index
		case accessEncap, accessLeak:
			flow.Src = fixture.HostRed6
			data = fixture.Frame(tb, l.Swp10.HardwareAddr, fixture.HostRedMAC, flow)
			ingress = l.Swp10.Index
		}
		action, out := fixture.Run(tb, l.DP.Program(), ingress, data)
		if action != pl.action {
			tb.Fatalf("%v: frame to %v (route %+v): action %d, want %d", p, dst, t, action, pl.action)
		}
		if err := b.check(p, t, dst, data, out); err != nil {
			tb.Fatalf("%v: frame to %v (route %+v): %v", p, dst, t, err)
		}
		pl.frames = append(pl.frames, newFrame(data, ingress))
	}
	return pl
}

func (b *bed6) check(p path, t target, dst netip.Addr, in, out []byte) error {
	l := b.l
	off := 0
	if p == decapLocal || p == dciLeak {
		off = 50
	}
	tenant := in[off:]
	wantLen, hop := len(tenant), 14+7
	var dmac, smac net.HardwareAddr
	var nh dataplane.Remote
	switch p {
	case decapLocal, accessLeak:
		ifc := l.Swp10
		if t.hostVRF == fixture.GREEN {
			ifc = l.Swp20
		}
		dmac, smac = hostMAC6(t.hostVRF, dst), ifc.HardwareAddr
	default:
		nh = dataplane.PickRemote(remoteGroups(fixture.RED)[t.group], dataplane.FlowHash6(tenant[14:]))
		dmac, smac = fixture.SpineMAC, l.Swp1.HardwareAddr
		if nh.VTEP == fixture.Border04 {
			dmac, smac = fixture.DCIMAC, l.Swp3.HardwareAddr
		}
		wantLen, hop = len(tenant)+50, 50+14+7
	}
	switch {
	case len(out) != wantLen:
		return fmt.Errorf("%d bytes out, want %d", len(out), wantLen)
	case string(out[0:6]) != string(dmac) || string(out[6:12]) != string(smac):
		return fmt.Errorf("out to %v from %v, want %v from %v", net.HardwareAddr(out[0:6]), net.HardwareAddr(out[6:12]), dmac, smac)
	case out[hop] != 63:
		return fmt.Errorf("tenant hop limit %d, want 63", out[hop])
	}
	if nh.VTEP.IsValid() {
		vtep, vni := netip.AddrFrom4([4]byte(out[30:34])), binary.BigEndian.Uint32(out[46:50])>>8
		if vtep != nh.VTEP || vni != nh.VNI || string(out[50:56]) != string(nh.RouterMAC) {
			return fmt.Errorf("encapsulated to %v vni %d, want %v vni %d", vtep, vni, nh.VTEP, nh.VNI)
		}
	}
	return nil
}
