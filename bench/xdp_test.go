package bench_test

// What the numbers mean.
//
// Every packet is one BPF_PROG_TEST_RUN of the xleaf program on one frame of
// a pool, as if it arrived on a real interface of borderleaf01 (the fixture's
// veths). The kernel times the run itself, around the program only; that is
// ns/pkt: the sum of those times over the packets sent. The syscall, copying
// the frame in and converting the context are not in it; one clock read and
// the bottom-half disable/enable around the run are (BenchmarkHarness shows
// how much that is). Mpps is 1000/ns/pkt: one core, program time only.
// wall-ns/pkt is the wall clock per packet, syscall included. ns/op is per
// sweep over the whole pool.
//
// Not measured: the redirect itself. Outside live-frame mode, XDP_REDIRECT is
// only the verdict (bpf_redirect records the target); no devmap flush, no
// veth transmit. bpf_fib_lookup and bpf_check_mtu are real helper calls and
// are measured.
//
// Why each packet is its own syscall (Repeat 1) instead of repeating a frame
// to amortize the syscall: the kernel runs repetitions on the same buffer
// without restoring it. A forwarded frame has been rewritten (decapsulated,
// encapsulated, MACs replaced, TTL decremented), so the second repetition sees
// a frame addressed to another MAC and measures XDP_PASS. Since the kernel's
// timer excludes the syscall, Repeat 1 costs wall time, not accuracy.
//
// Why a pool: one frame would look up one destination, whose trie nodes stay
// in cache. Each pool holds poolSize frames to random addresses inside
// installed prefixes of the right kind (remote prefixes for the encap paths,
// local subnets whose hosts all have neighbour entries for the local ones),
// with random ports, run in turn. Every frame of a pool is checked before
// timing (verdict and output headers), and every timed run's verdict again:
// a benchmark of drops would be a lie.
//
// The tables: N routes spread evenly over 16 VRFs (the fixture's RED, GREEN
// and BLUE plus 4..16), random /24../32 prefixes in 10.128.0.0/9,
// 172.16.0.0/12 and 100.64.0.0/10, all remote over a few shared nexthop
// groups per VRF. The paths look up RED, which holds N/16 of them plus the
// fixture's routes and 2*localNets local /24s interleaved in the same space.
// A leaf has few local subnets, so the local paths' lookups all end in those
// 64 /24s and their trie walk stays in cache; the remote paths' destinations
// spread over all of RED's prefixes and show what a cold walk costs.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

const (
	poolSize   = 4096
	numVRFs    = 16
	localNets  = 32 // /24s of RED hosts, and of GREEN hosts leaked into RED: 254 neighbours each
	payloadLen = 22 // makes a 64-byte tenant frame
	seed       = 0x7a1eaf
)

var sizes = []struct {
	name   string
	routes int
}{{"1k", 1_000}, {"100k", 100_000}, {"1M", 1_000_000}}

type path int

const (
	decapLocal  path = iota // VXLAN 4001 on swp3 -> RED host on swp10
	dciLeak                 // VXLAN 4001 on swp3 -> RED route labelled 4002 -> leaf01/02 out swp1
	accessEncap             // RED host on swp10 -> remote prefix out swp1 or swp3
	accessLeak              // RED host on swp10 -> GREEN host on swp20
)

var paths = []path{decapLocal, dciLeak, accessEncap, accessLeak}

func (p path) String() string {
	return [...]string{"decap-local", "dci-leak", "access-encap", "access-leak"}[p]
}

// BenchmarkXDP is every path over every table size.
func BenchmarkXDP(b *testing.B) {
	for _, size := range sizes {
		b.Run("routes="+size.name, func(b *testing.B) {
			bed := newBed(b, size.routes)
			for _, p := range paths {
				pl := bed.pool(b, p, poolSize)
				b.Run("path="+p.String(), func(b *testing.B) { measure(b, bed.l.DP.Program().FD(), pl, 1) })
			}
		})
	}
}

// BenchmarkHarness is the floor under the numbers above: a frame the program
// gives to the kernel after its first checks (UDP to the DCI uplink's own
// address, not VXLAN). It leaves the frame alone, so it can also be repeated:
// the difference between Repeat 1 and 64 is what timing a single run adds.
func BenchmarkHarness(b *testing.B) {
	l := fixture.New(b)
	data := fixture.Frame(b, l.Swp3.HardwareAddr, fixture.DCIMAC, fixture.Flow{Src: fixture.DCIPeer,
		Dst: fixture.DCISelf.Addr(), SrcPort: 40000, DstPort: 4000, TTL: 64, Payload: make([]byte, payloadLen)})
	if action, _ := fixture.Run(b, l.DP.Program(), l.Swp3.Index, data); action != dataplane.XDPPass {
		b.Fatalf("baseline frame: action %d, want XDP_PASS", action)
	}
	f := newFrame(data, l.Swp3.Index)
	pl := &pool{action: dataplane.XDPPass}
	for range poolSize {
		pl.frames = append(pl.frames, f)
	}
	for _, repeat := range []uint32{1, 64} {
		b.Run(fmt.Sprintf("pass/repeat=%d", repeat), func(b *testing.B) { measure(b, l.DP.Program().FD(), pl, repeat) })
	}
}

// TestPools builds a small bed and each path's pool (the builder checks that
// every frame forwards, out of the right interface with the right headers),
// then runs the pools the way the benchmarks time them.
func TestPools(t *testing.T) {
	bed := newBed(t, 1000)
	fd := bed.l.DP.Program().FD()
	for _, p := range paths {
		t.Run(p.String(), func(t *testing.T) {
			pl := bed.pool(t, p, 256)
			var total uint64
			for i := range pl.frames {
				ret, dur, err := testRun(fd, &pl.frames[i], 1)
				if err != nil {
					t.Fatal(err)
				}
				if int(ret) != pl.action {
					t.Fatalf("frame %d: action %d, want %d", i, ret, pl.action)
				}
				total += uint64(dur)
			}
			if total == 0 {
				t.Error("the kernel reported no run time")
			}
		})
	}
}

// measure runs every frame of pl repeat times per syscall, per b.Loop
// iteration, and reports the kernel's time per packet.
func measure(b *testing.B, fd int, pl *pool, repeat uint32) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var kernel, pkts uint64
	for b.Loop() {
		kernel += sweep(b, fd, pl, repeat)
		pkts += uint64(len(pl.frames)) * uint64(repeat)
	}
	ns := float64(kernel) / float64(pkts)
	b.ReportMetric(ns, "ns/pkt")
	b.ReportMetric(1e3/ns, "Mpps")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pkts), "wall-ns/pkt")
}

// sweep runs every frame of pl repeat times per syscall, checking each
// verdict, and returns the kernel's time for all of them, in ns.
func sweep(b *testing.B, fd int, pl *pool, repeat uint32) uint64 {
	var ns uint64
	for i := range pl.frames {
		ret, dur, err := testRun(fd, &pl.frames[i], repeat)
		if err != nil {
			b.Fatal(err)
		}
		if int(ret) != pl.action {
			b.Fatalf("frame %d: action %d, want %d", i, ret, pl.action)
		}
		ns += uint64(dur) * uint64(repeat)
	}
	return ns
}

// progRunAttr is union bpf_attr as BPF_PROG_TEST_RUN reads it. cilium/ebpf's
// Program.Run does not return the kernel's duration, and Program.Benchmark
// takes no context (so no ingress interface): hence the raw syscall.
type progRunAttr struct {
	progFD, retval, dataSizeIn, dataSizeOut uint32
	dataIn, dataOut                         uint64
	repeat, duration                        uint32
	ctxSizeIn, ctxSizeOut                   uint32
	ctxIn, ctxOut                           uint64
	flags, cpu, batchSize                   uint32
	_                                       uint32
}

// testRun runs the program on f repeat times in one syscall. It returns the
// last run's verdict and the mean time of a run, in ns, as the kernel timed
// it. The frame is not copied back.
func testRun(fd int, f *frame, repeat uint32) (retval, ns uint32, err error) {
	attr := progRunAttr{
		progFD:     uint32(fd),
		dataSizeIn: uint32(len(f.data)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&f.data[0]))),
		repeat:     repeat,
		ctxSizeIn:  uint32(len(f.ctx)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&f.ctx[0]))),
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if errno == unix.EINTR {
			continue // a signal (Go's preemption) cut the run short; each call starts from a fresh copy
		}
		runtime.KeepAlive(f)
		if errno != 0 {
			return 0, 0, fmt.Errorf("BPF_PROG_TEST_RUN: %w", errno)
		}
		return attr.retval, attr.duration, nil
	}
}

// frame is one packet and its struct xdp_md, ready for testRun.
type frame struct {
	data []byte
	ctx  []byte
}

func newFrame(data []byte, ingress int) frame {
	// struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
	ctx := make([]byte, 24)
	binary.NativeEndian.PutUint32(ctx[4:], uint32(len(data)))
	binary.NativeEndian.PutUint32(ctx[12:], uint32(ingress))
	return frame{data: data, ctx: ctx}
}

type pool struct {
	frames []frame
	action int // every frame's verdict
}

// Nexthop groups of a VRF's remote routes, by share: its own VNI on the leaf
// pair, a leaked route (the next VRF's VNI as label; RED's is GREEN's 4002),
// site 2's border leaf over the DCI, and all three.
const (
	gOwn = iota
	gLeaked
	gBorder
	gThree
	numGroups
)

func pickGroup(rng *rand.Rand) int {
	switch n := rng.IntN(10); {
	case n < 4:
		return gOwn
	case n < 6:
		return gLeaked
	case n < 8:
		return gBorder
	}
	return gThree
}

func vni(v dataplane.VRFID) uint32 {
	switch v {
	case fixture.RED:
		return fixture.RedVNI
	case fixture.GREEN:
		return fixture.GreenVNI
	case fixture.BLUE:
		return fixture.BlueVNI
	}
	return 4100 + uint32(v)
}

func remoteGroups(v dataplane.VRFID) [numGroups][]dataplane.Remote {
	leafs := func(vni uint32) []dataplane.Remote {
		return []dataplane.Remote{
			{VTEP: fixture.Leaf01, VNI: vni, RouterMAC: fixture.Leaf01MAC},
			{VTEP: fixture.Leaf02, VNI: vni, RouterMAC: fixture.Leaf02MAC},
		}
	}
	// site 2's L3VNIs are 5000 + VRF: RED's is fixture.Site2RedVNI
	border := []dataplane.Remote{{VTEP: fixture.Border04, VNI: 5000 + uint32(v), RouterMAC: fixture.Border04MAC}}
	return [numGroups][]dataplane.Remote{
		gOwn:    leafs(vni(v)),
		gLeaked: leafs(vni(v%numVRFs + 1)),
		gBorder: border,
		gThree:  append(leafs(vni(v)), border...),
	}
}

// target is what RED's longest match for an address says.
type target struct {
	hostVRF dataplane.VRFID // local route: the hosts' VRF; 0 for remote
	group   int             // remote route: index into bed.groups
}

// bed is the fixture's leaf with 16 VRFs of generated routes and thousands
// of local hosts, and what the pool builder needs to know about RED.
type bed struct {
	l      *fixture.Leaf
	rng    *rand.Rand
	groups [numGroups][]dataplane.Remote // RED's

	red        map[netip.Prefix]target // RED's generated and local routes
	redRemote  []netip.Prefix
	byGroup    [numGroups][]netip.Prefix
	redHosts   []netip.Prefix // local /24s: RED hosts on swp10
	greenHosts []netip.Prefix // local /24s: GREEN hosts on swp20, leaked into RED
}

var regions = []netip.Prefix{
	netip.MustParsePrefix("10.128.0.0/9"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("100.64.0.0/10"),
}

func newBed(tb testing.TB, routes int) *bed { tb.Helper(); return newBedIn(tb, routes, numVRFs) }

// newBedIn spreads the routes over the first vrfs VRFs (RED is the first).
func newBedIn(tb testing.TB, routes, vrfs int) *bed {
	tb.Helper()
	// The regions span 208 /16s per VRF: a 1 KiB chunk each, and one more
	// per /24 whose routes make more than 12 runs (crowded: they hold 6
	// routes or more); a range chunk per /24 holding longer routes.
	l := fixture.NewWithFIB(tb, uint32(numVRFs*256+routes/6+4096), uint32(routes+4096))
	b := &bed{l: l, rng: rand.New(rand.NewPCG(seed, uint64(routes))), groups: remoteGroups(fixture.RED),
		red: map[netip.Prefix]target{}}
	for v := dataplane.VRFID(4); v <= numVRFs; v++ {
		must(tb, l.DP.SetVRF(dataplane.VRF{ID: v, VNI: vni(v), RouterMAC: fixture.RouterMAC, VTEP: fixture.VTEP}))
	}

	// Local subnets first, in the same space as the remote prefixes, so
	// the lookups for local hosts walk a trie as deep as the others do.
	local := map[netip.Prefix]bool{}
	for len(local) < 2*localNets {
		p := netip.PrefixFrom(b.randomAddr(), 24).Masked()
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

	start := time.Now()
	base := fixture.Routes()
	for v := dataplane.VRFID(1); v <= numVRFs; v++ {
		n := 0
		if int(v) <= vrfs {
			n = routes / vrfs
			if int(v-1) < routes%vrfs {
				n++
			}
		}
		table := append([]dataplane.Route(nil), base[v]...)
		if v == fixture.RED || v == fixture.GREEN {
			for _, p := range b.redHosts {
				table = append(table, dataplane.Route{Prefix: p, Kind: dataplane.RouteLocal, HostVRF: fixture.RED})
			}
			for _, p := range b.greenHosts {
				table = append(table, dataplane.Route{Prefix: p, Kind: dataplane.RouteLocal, HostVRF: fixture.GREEN})
			}
		}
		groups := remoteGroups(v)
		seen := make(map[netip.Prefix]bool, n)
		for len(seen) < n {
			p := netip.PrefixFrom(b.randomAddr(), 24+b.rng.IntN(9)).Masked()
			if seen[p] || local[netip.PrefixFrom(p.Addr(), 24).Masked()] {
				continue
			}
			seen[p] = true
			g := pickGroup(b.rng)
			table = append(table, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: groups[g]})
			if v == fixture.RED {
				b.red[p] = target{group: g}
				b.redRemote = append(b.redRemote, p)
				b.byGroup[g] = append(b.byGroup[g], p)
			}
		}
		must(tb, l.DP.ReplaceTable(v, table))
	}
	tables := time.Since(start)

	start = time.Now()
	neighbours := 0
	for _, h := range []struct {
		vrf  dataplane.VRFID
		nets []netip.Prefix
		ifc  *net.Interface
	}{{fixture.RED, b.redHosts, l.Swp10}, {fixture.GREEN, b.greenHosts, l.Swp20}} {
		for _, p := range h.nets {
			for i := 1; i < 255; i++ {
				a := hostAddr(p, i)
				must(tb, l.DP.SetNeighbor(h.vrf, a, dataplane.Neighbor{Ifindex: h.ifc.Index, MAC: hostMAC(h.vrf, a), SrcMAC: h.ifc.HardwareAddr}))
				neighbours++
			}
		}
	}
	resolveHops(tb, l.DP) // as xleafd does: no per-packet underlay lookup in the kernel
	tb.Logf("%d routes over %d VRFs installed in %v (RED: %d generated), %d neighbours in %v",
		routes, vrfs, tables.Round(time.Millisecond), len(b.redRemote), neighbours, time.Since(start).Round(time.Millisecond))
	fibBytes := numVRFs * 1 << 16 * 4 // first levels
	for _, p := range l.DP.FIBPools() {
		fibBytes += p.Used * p.ChunkBytes
		tb.Logf("FIB: %d chunks of %d bytes", p.Used, p.ChunkBytes)
	}
	tb.Logf("FIB: %.1f MiB in all, %.0f bytes per route", float64(fibBytes)/(1<<20), float64(fibBytes)/float64(routes))
	return b
}

// randomAddr is uniform over regions.
func (b *bed) randomAddr() netip.Addr {
	var total uint64
	for _, r := range regions {
		total += 1 << (32 - r.Bits())
	}
	u := b.rng.Uint64N(total)
	for _, r := range regions {
		size := uint64(1) << (32 - r.Bits())
		if u < size {
			return addrFromUint(addrUint(r.Addr()) + uint32(u))
		}
		u -= size
	}
	panic("unreachable")
}

// randomIn is a random address in a random one of ps.
func (b *bed) randomIn(ps []netip.Prefix) netip.Addr {
	p := ps[b.rng.IntN(len(ps))]
	host := uint32(1)<<(32-p.Bits()) - 1
	return addrFromUint(addrUint(p.Addr()) | b.rng.Uint32()&host)
}

// lookup is RED's longest match over the generated and local routes.
func (b *bed) lookup(a netip.Addr) (target, bool) {
	for bits := 32; bits >= 0; bits-- {
		if t, ok := b.red[netip.PrefixFrom(a, bits).Masked()]; ok {
			return t, true
		}
	}
	return target{}, false
}

// pool builds n frames for path p and checks each one forwards as it
// should, failing tb otherwise.
func (b *bed) pool(tb testing.TB, p path, n int) *pool {
	tb.Helper()
	l := b.l
	pl := &pool{action: dataplane.XDPRedirect} // no path hairpins out of its ingress
	site2Red := netip.MustParsePrefix("192.168.20.0/24")
	for tries := 0; len(pl.frames) < n; tries++ {
		if tries > 100*n {
			tb.Fatalf("%v: only %d of %d frames after %d tries", p, len(pl.frames), n, tries)
		}
		var dst netip.Addr
		switch p {
		case decapLocal:
			dst = hostAddr(b.redHosts[b.rng.IntN(len(b.redHosts))], 1+b.rng.IntN(254))
		case accessLeak:
			dst = hostAddr(b.greenHosts[b.rng.IntN(len(b.greenHosts))], 1+b.rng.IntN(254))
		case dciLeak:
			dst = b.randomIn(b.byGroup[gLeaked])
		case accessEncap:
			dst = b.randomIn(b.redRemote)
		}
		t, ok := b.lookup(dst)
		if !ok || (p == dciLeak && (t.hostVRF != 0 || t.group != gLeaked)) || (p == accessEncap && t.hostVRF != 0) {
			continue // a more specific route of another kind covers it
		}
		flow := fixture.Flow{Dst: dst, SrcPort: uint16(1024 + b.rng.IntN(64000)), DstPort: 443, TTL: 64, Payload: make([]byte, payloadLen)}
		var data []byte
		var ingress int
		switch p {
		case decapLocal, dciLeak:
			flow.Src = hostAddr(site2Red, 1+b.rng.IntN(254))
			inner := fixture.Frame(tb, fixture.RouterMAC, fixture.Border04MAC, flow)
			data = fixture.VXLAN(tb, fixture.Outer{DstMAC: l.Swp3.HardwareAddr, SrcMAC: fixture.DCIMAC,
				Src: fixture.Border04, Dst: fixture.VTEP, SrcPort: uint16(49152 + b.rng.IntN(16384)), VNI: fixture.RedVNI}, inner)
			ingress = l.Swp3.Index
		case accessEncap, accessLeak:
			flow.Src = fixture.HostRed
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

// check holds the frame the program sent for in to what path p must do.
func (b *bed) check(p path, t target, dst netip.Addr, in, out []byte) error {
	l := b.l
	off := 0 // of the tenant frame in in
	if p == decapLocal || p == dciLeak {
		off = 50
	}
	tenant := in[off:]
	var want struct {
		len      int
		dmac     net.HardwareAddr
		smac     net.HardwareAddr
		vtep     netip.Addr
		vni      uint32
		rmac     net.HardwareAddr
		innerTTL int // offset of the tenant TTL in out
	}
	switch p {
	case decapLocal, accessLeak:
		ifc := l.Swp10
		if t.hostVRF == fixture.GREEN {
			ifc = l.Swp20
		}
		want.len, want.dmac, want.smac, want.innerTTL = len(tenant), hostMAC(t.hostVRF, dst), ifc.HardwareAddr, 14+8
	case dciLeak, accessEncap:
		nh := dataplane.PickRemote(b.groups[t.group], dataplane.FlowHash(tenant[14:]))
		want.dmac, want.smac = fixture.SpineMAC, l.Swp1.HardwareAddr
		if nh.VTEP == fixture.Border04 {
			want.dmac, want.smac = fixture.DCIMAC, l.Swp3.HardwareAddr
		}
		want.len, want.vtep, want.vni, want.rmac, want.innerTTL = len(tenant)+50, nh.VTEP, nh.VNI, nh.RouterMAC, 50+14+8
	}
	switch {
	case len(out) != want.len:
		return fmt.Errorf("%d bytes out, want %d", len(out), want.len)
	case !bytes.Equal(out[0:6], want.dmac) || !bytes.Equal(out[6:12], want.smac):
		return fmt.Errorf("out to %v from %v, want %v from %v", net.HardwareAddr(out[0:6]), net.HardwareAddr(out[6:12]), want.dmac, want.smac)
	case out[want.innerTTL] != 63:
		return fmt.Errorf("tenant TTL %d, want 63", out[want.innerTTL])
	}
	if want.vtep.IsValid() {
		vtep := netip.AddrFrom4([4]byte(out[30:34]))
		vni := binary.BigEndian.Uint32(out[46:50]) >> 8
		if vtep != want.vtep || vni != want.vni || !bytes.Equal(out[50:56], want.rmac) {
			return fmt.Errorf("encapsulated to %v vni %d rmac %v, want %v vni %d rmac %v",
				vtep, vni, net.HardwareAddr(out[50:56]), want.vtep, want.vni, want.rmac)
		}
	}
	return nil
}

func hostAddr(p netip.Prefix, i int) netip.Addr { return addrFromUint(addrUint(p.Addr()) + uint32(i)) }

// hostMAC is the MAC of the host at a in vrf.
func hostMAC(vrf dataplane.VRFID, a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, byte(vrf), b[0], b[1], b[2], b[3]}
}

func addrUint(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addrFromUint(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
