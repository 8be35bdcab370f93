package dataplane_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// FuzzXDPMatchesModel holds the XDP program to the reference model on
// random frames and random route tables, and checks VRF isolation on every
// frame the program forwards.
//
// The inputs are a table seed and a packet description. Table seed 0 is
// the fixture's own tables (the guide's borderleaf01); any other seed draws
// small random tables for RED, GREEN and BLUE from a PCG. The packet
// description (see fuzzPacket) picks an ingress port, builds a frame that
// is mostly well-formed for that port (VXLAN to our VTEP with a VRF's VNI on
// uplinks, a host's frame to the port on access ports) aimed mostly at the
// table's prefixes, then applies byte mutations and truncation; or it is
// raw bytes.
//
// For every frame: the action, the frame that leaves (or the unmodified
// frame when nothing leaves), and the counters (exactly one {VRF, reason}
// moved by one packet of len(frame) bytes) must match the model; and a
// forwarded frame must leave in a VRF (or remote VNI) that a route of the
// ingress VRF's table leads to (see isolation), which the tables' leak
// graph decides, not the model.
func FuzzXDPMatchesModel(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.table, s.bytes())
	}

	l := fixture.New(f)
	stats := newFuzzStats(f, l)
	h := &fuzzHarness{l: l, m: l.Model(), stats: stats}
	h.env = newFuzzEnv(l)
	// The fast counter reader must agree with the dataplane's own view.
	h.checkStatsReader(f)
	f.Cleanup(func() { stats.checkNoOtherVRF(f) })

	f.Fuzz(func(t *testing.T, tableSeed uint64, data []byte) {
		h.install(t, tableSeed)
		in := h.env.decodePacket(t, h.tables, data)
		h.check(t, tableSeed, in)
	})
}

// fuzzHarness is the per-process state of the fuzz target: one leaf, its
// model and the tables currently installed in both.
type fuzzHarness struct {
	l         *fixture.Leaf
	m         *dataplane.Model
	env       *fuzzEnv
	stats     *fuzzStats
	tables    map[dataplane.VRFID][]dataplane.Route
	reach     map[dataplane.VRFID]map[uint32]bool // VRF -> VNIs (domains) its routes lead to
	installed uint64                              // table seed installed, valid if tables != nil
}

var fuzzVRFs = []dataplane.VRFID{fixture.RED, fixture.GREEN, fixture.BLUE}

// fuzzVRFVNI and fuzzVNIVRF map this leaf's VRFs to their L3VNIs; the isolation
// check names the VRF a frame leaves in by VNI, so that site 2's labels
// (5001, 5002) are domains of their own.
var (
	fuzzVRFVNI = map[dataplane.VRFID]uint32{fixture.RED: fixture.RedVNI, fixture.GREEN: fixture.GreenVNI, fixture.BLUE: fixture.BlueVNI}
	fuzzVNIVRF = map[uint32]dataplane.VRFID{fixture.RedVNI: fixture.RED, fixture.GreenVNI: fixture.GREEN, fixture.BlueVNI: fixture.BLUE}
)

// install puts the tables of seed into the dataplane and the model, unless
// they are there already. What is installed depends only on the seed: the
// whole table is swapped with ReplaceTable for the first seed and for one
// in 32 (seed%32 == 1: a table swap waits for an RCU grace period, ~15ms),
// and otherwise edited into place with DeleteRoute and SetRoute.
// Routes are set in table order, so a new prefix is often set under a
// shorter route that covers it (which once freed that route's group).
func (h *fuzzHarness) install(t *testing.T, seed uint64) {
	if h.tables != nil && h.installed == seed {
		return
	}
	old := h.tables
	h.tables = nil // until the new tables are all in
	tables := fuzzTables(seed)
	// IPv6 lookups: in the hash for most seeds, in the tries for one in
	// four (a VRF with more than 8 prefix lengths is in its trie anyway).
	min6 := uint32(1)
	if seed>>2&3 == 3 {
		min6 = 1 << 31
	}
	if err := h.l.DP.SetFIB6MinRoutes(min6); err != nil {
		t.Fatal(err)
	}
	for _, vrf := range fuzzVRFs {
		if old == nil || seed%32 == 1 {
			if err := h.l.DP.ReplaceTable(vrf, tables[vrf]); err != nil {
				t.Fatalf("table seed %d: ReplaceTable(%d): %v\nroutes: %s", seed, vrf, err, fuzzFmtRoutes(tables[vrf]))
			}
			continue
		}
		keep := map[netip.Prefix]bool{}
		for _, r := range tables[vrf] {
			keep[r.Prefix] = true
		}
		for _, r := range old[vrf] {
			if !keep[r.Prefix] {
				if err := h.l.DP.DeleteRoute(vrf, r.Prefix); err != nil {
					t.Fatalf("table seed %d: DeleteRoute(%d, %v): %v", seed, vrf, r.Prefix, err)
				}
			}
		}
		for _, r := range tables[vrf] {
			if err := h.l.DP.SetRoute(vrf, r); err != nil {
				t.Fatalf("table seed %d: SetRoute(%d): %v\nroute: %s", seed, vrf, err, fuzzFmtRoutes([]dataplane.Route{r}))
			}
		}
	}
	h.installHops(t, seed)
	h.m.Routes = tables
	h.tables, h.installed = tables, seed
	h.reach = fuzzReachability(tables)
}

// fuzzHopsMask: a table seed's bits that pick the tables; the top two pick
// the underlay next hops (installHops), so 0, 1<<62, 2<<62 and 3<<62 are
// the fixture's tables under each.
const fuzzHopsMask = 1<<62 - 1

// installHops gives some VTEPs resolved underlay next hops, by the seed:
// none (all asked of the kernel), the kernel's own, two paths for leaf01
// and leaf02, or one for the VTEP whose next hop the kernel has not
// resolved, with a smaller MTU. The model holds the same.
func (h *fuzzHarness) installHops(t *testing.T, seed uint64) {
	l := h.l
	spine := dataplane.UnderlayMember{Ifindex: l.Swp1.Index, SrcMAC: l.Swp1.HardwareAddr, DstMAC: fixture.SpineMAC, MTU: fixture.UnderlayMTU}
	dci := dataplane.UnderlayMember{Ifindex: l.Swp3.Index, SrcMAC: l.Swp3.HardwareAddr, DstMAC: fixture.DCIMAC, MTU: fixture.UnderlayMTU}
	small := dci
	small.MTU = 1400
	one := func(m dataplane.UnderlayMember) dataplane.UnderlayHop {
		return dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{m}}
	}
	var hops map[netip.Addr]dataplane.UnderlayHop
	switch seed >> 62 {
	case 0:
	case 1:
		hops = map[netip.Addr]dataplane.UnderlayHop{fixture.Leaf01: one(spine), fixture.Leaf02: one(spine), fixture.Border04: one(dci)}
	case 2:
		two := dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{spine, small}}
		hops = map[netip.Addr]dataplane.UnderlayHop{fixture.Leaf01: two, fixture.Leaf02: two}
	case 3:
		hops = map[netip.Addr]dataplane.UnderlayHop{fixture.Unresolved: one(small), fixture.Border04: one(small)}
	}
	for _, vtep := range []netip.Addr{fixture.Leaf01, fixture.Leaf02, fixture.Border04, fixture.Unresolved} {
		var err error
		if hop, ok := hops[vtep]; ok {
			err = l.DP.SetUnderlayHop(vtep, hop)
		} else {
			err = l.DP.DeleteUnderlayHop(vtep)
		}
		if err != nil {
			t.Fatalf("table seed %d: underlay hop %v: %v", seed, vtep, err)
		}
	}
	if err := l.DP.RenewUnderlayHops(time.Hour); err != nil {
		t.Fatal(err)
	}
	h.m.Hops = hops
}

// fuzzReachability is the leak graph of tables: for each VRF, the domains
// (this leaf's VRFs by L3VNI, or a remote VNI) one of its routes delivers
// into.
func fuzzReachability(tables map[dataplane.VRFID][]dataplane.Route) map[dataplane.VRFID]map[uint32]bool {
	reach := map[dataplane.VRFID]map[uint32]bool{}
	for _, vrf := range fuzzVRFs {
		reach[vrf] = map[uint32]bool{}
		for _, r := range tables[vrf] {
			switch r.Kind {
			case dataplane.RouteLocal:
				reach[vrf][fuzzVRFVNI[r.HostVRF]] = true
			case dataplane.RouteRemote:
				for _, m := range r.Remotes {
					reach[vrf][m.VNI] = true
				}
			}
		}
	}
	return reach
}

// fuzzTables returns the tables of a seed: the fixture's for 0, small
// random ones otherwise.
func fuzzTables(seed uint64) map[dataplane.VRFID][]dataplane.Route {
	if seed&fuzzHopsMask == 0 {
		return fixture.Routes()
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// Half the time BLUE is kept isolated both ways, as in the fixture.
	isolateBlue := r.IntN(2) == 0
	tables := map[dataplane.VRFID][]dataplane.Route{}
	for _, vrf := range fuzzVRFs {
		seen := map[netip.Prefix]bool{}
		routes := []dataplane.Route{}
		for range r.IntN(9) {
			p := fuzzPrefix(r)
			if r.IntN(3) == 0 {
				p = fuzzPrefix6(r)
			}
			if seen[p] {
				continue // one route per prefix, as an LPM trie holds them
			}
			seen[p] = true
			routes = append(routes, fuzzRoute(r, p, vrf, isolateBlue))
		}
		tables[vrf] = routes
	}
	return tables
}

var (
	fuzzVTEPs = []netip.Addr{fixture.Leaf01, fixture.Leaf02, fixture.Border04, fixture.Unresolved, fixture.Unrouted}
	fuzzRMACs = []net.HardwareAddr{fixture.Leaf01MAC, fixture.Leaf02MAC, fixture.Border04MAC}
	fuzzHosts = []netip.Addr{fixture.HostRed, fixture.HostGreen, fixture.HostBlue}
	// and their IPv6 addresses, in the same order
	fuzzHosts6 = []netip.Addr{fixture.HostRed6, fixture.HostGreen6, fixture.HostBlue6}
	fuzzVNIs   = []uint32{fixture.RedVNI, fixture.GreenVNI, fixture.BlueVNI, fixture.Site2RedVNI, fixture.Site2GreenVNI}
)

func fuzzPrefix(r *rand.Rand) netip.Prefix {
	var addr netip.Addr
	switch r.IntN(6) {
	case 0, 1: // around the hosts that have neighbour entries
		addr = fuzzHosts[r.IntN(len(fuzzHosts))]
	case 2: // the guide's subnets
		subnets := []byte{1, 2, 10, 20, 30, 100, 200}
		addr = netip.AddrFrom4([4]byte{192, 168, subnets[r.IntN(len(subnets))], byte(r.IntN(256))})
	case 3:
		addr = netip.AddrFrom4([4]byte{192, 168, byte(r.IntN(256)), byte(r.IntN(256))})
	default:
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], r.Uint32())
		addr = netip.AddrFrom4(b)
	}
	bits := []int{0, 8, 16, 24, 24, 28, 32, 32, r.IntN(33)}[r.IntN(9)]
	return netip.PrefixFrom(addr, bits).Masked()
}

// fuzzPrefix6 is fuzzPrefix's IPv6 twin, around the fixture's /64s.
func fuzzPrefix6(r *rand.Rand) netip.Prefix {
	var b [16]byte
	switch r.IntN(6) {
	case 0, 1:
		b = fuzzHosts6[r.IntN(len(fuzzHosts6))].As16()
	case 2:
		subnets := []uint16{1, 2, 0x10, 0x20, 0x30, 0x100, 0x200}
		b = fuzzAddr6(uint32(subnets[r.IntN(len(subnets))])<<16 | uint32(r.IntN(1<<16))).As16()
	case 3:
		b = fuzzAddr6(r.Uint32()).As16()
	default:
		binary.BigEndian.PutUint64(b[:], r.Uint64())
		binary.BigEndian.PutUint64(b[8:], r.Uint64())
	}
	bits := []int{0, 32, 48, 56, 64, 64, 96, 127, 128, 128, r.IntN(129)}[r.IntN(11)]
	return netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
}

// fuzzAddr6 is the IPv6 address a packet description's 32 bits name:
// 2001:db8:<top 16>::<low 16>, the fixture's /64s (0x0100_0010 is RED's
// host 2001:db8:100::10); with top fe80 or ff0e, a link-local or
// multicast address.
func fuzzAddr6(v uint32) netip.Addr {
	var b [16]byte
	switch hi := uint16(v >> 16); hi {
	case 0xfe80, 0xff0e:
		binary.BigEndian.PutUint16(b[0:], hi)
	default:
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		binary.BigEndian.PutUint16(b[4:], hi)
	}
	binary.BigEndian.PutUint16(b[14:], uint16(v))
	return netip.AddrFrom16(b)
}

// fuzzInPrefix is an address of p whose host bits come from v.
func fuzzInPrefix(p netip.Prefix, v uint32) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bits := p.Bits() - 8*i // of this byte that are the prefix's
		if bits >= 8 {
			continue
		}
		keep := byte(0)
		if bits > 0 {
			keep = ^byte(0) << (8 - bits)
		}
		host := byte(v >> (8 * ((len(b) - 1 - i) % 4)))
		b[i] = b[i]&keep | host&^keep
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func fuzzRoute(r *rand.Rand, p netip.Prefix, vrf dataplane.VRFID, isolateBlue bool) dataplane.Route {
	hostVRFs, vnis := fuzzVRFs, fuzzVNIs
	if isolateBlue {
		if vrf == fixture.BLUE {
			hostVRFs, vnis = []dataplane.VRFID{fixture.BLUE}, []uint32{fixture.BlueVNI}
		} else {
			hostVRFs = []dataplane.VRFID{fixture.RED, fixture.GREEN}
			vnis = []uint32{fixture.RedVNI, fixture.GreenVNI, fixture.Site2RedVNI, fixture.Site2GreenVNI}
		}
	}
	switch k := r.IntN(10); {
	case k < 4:
		var rs []dataplane.Remote
		for range 1 + r.IntN(4) {
			rmac := net.HardwareAddr{0x02, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
			if i := r.IntN(len(fuzzRMACs) + 1); i < len(fuzzRMACs) {
				rmac = fuzzRMACs[i]
			}
			rs = append(rs, dataplane.Remote{VTEP: fuzzVTEPs[r.IntN(len(fuzzVTEPs))], VNI: vnis[r.IntN(len(vnis))], RouterMAC: rmac})
		}
		return dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: rs}
	case k < 7:
		return dataplane.Route{Prefix: p, Kind: dataplane.RouteLocal, HostVRF: hostVRFs[r.IntN(len(hostVRFs))]}
	case k < 9:
		return dataplane.Route{Prefix: p, Kind: dataplane.RouteBlackhole}
	default:
		return dataplane.Route{Prefix: p, Kind: dataplane.RouteReceive}
	}
}

func fuzzFmtRoutes(rs []dataplane.Route) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  %v %v", r.Prefix, r.Kind)
		switch r.Kind {
		case dataplane.RouteLocal:
			fmt.Fprintf(&b, " host-vrf %d", r.HostVRF)
		case dataplane.RouteRemote:
			for _, m := range r.Remotes {
				fmt.Fprintf(&b, " [%v vni %d rmac %v]", m.VTEP, m.VNI, m.RouterMAC)
			}
		}
	}
	return b.String()
}

// fuzzInput is one frame to run.
type fuzzInput struct {
	ingress int
	name    string // of the ingress port
	frame   []byte
}

// check runs in through the program and the model and compares them.
func (h *fuzzHarness) check(t *testing.T, seed uint64, in fuzzInput) {
	t.Helper()
	before, leaksBefore := h.stats.snapshot(t)
	// Explained first: it must move no counter (the live run's alone move).
	trace, err := h.l.DP.Explain(in.ingress, in.frame)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	action, out := fixture.Run(t, h.l.DP.Program(), in.ingress, in.frame)
	after, leaksAfter := h.stats.snapshot(t)
	moved := delta(before, after)
	leaked := delta(leaksBefore, leaksAfter)
	want := h.m.Forward(in.ingress, in.frame)
	t.Logf("table seed %d, %s, %d bytes: program action %d; model action %d, %v in vrf %d",
		seed, in.name, len(in.frame), action, want.Action, want.Reason, want.VRF)

	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if action != want.Action {
		bad("action = %d, model says %d", action, want.Action)
	}
	// Explain agrees with the live program byte for byte, and its last
	// step is the verdict counted.
	if trace.Action != action || !bytes.Equal(trace.Out, out) {
		bad("explain: action %d, frame %s; the live program: action %d", trace.Action, fuzzFirstDiff(out, trace.Out), action)
	}
	if n := len(trace.Steps); n == 0 || trace.Steps[n-1].Kind != dataplane.TraceVerdict ||
		dataplane.VRFID(trace.Steps[n-1].A) != want.VRF || dataplane.Reason(trace.Steps[n-1].B) != want.Reason {
		bad("explain's steps %v do not end in the verdict: vrf %d, %v", trace.Steps, want.VRF, want.Reason)
	}
	wantMoved := map[dataplane.CounterKey]dataplane.Counter{
		{VRF: want.VRF, Reason: want.Reason}: {Packets: 1, Bytes: uint64(len(in.frame))},
	}
	if !fuzzCountersEqual(moved, wantMoved) {
		bad("counters moved %v, model says %v", fuzzFmtCounters(moved), fuzzFmtCounters(wantMoved))
	}
	wantLeaked := map[fuzzLeakCell]dataplane.Counter{}
	if cell, ok := h.stats.cellOf(t, want); ok {
		wantLeaked[cell] = dataplane.Counter{Packets: 1, Bytes: uint64(len(in.frame))}
	}
	if !fuzzCountersEqual(leaked, wantLeaked) {
		bad("leak matrix cells moved %v, model says %+v (cell %v)", leaked, want.Leak, wantLeaked)
	}
	switch {
	case action == dataplane.XDPTx || action == dataplane.XDPRedirect:
		if want.Action == action && !bytes.Equal(out, want.Out) {
			bad("frame out differs from the model's: %s", fuzzFirstDiff(want.Out, out))
		}
		if msg := h.isolation(in, action, out); msg != "" {
			bad("isolation: %s", msg)
		}
	case action == dataplane.XDPPass:
		// A dropped frame is freed; one rewritten into an ICMP error that
		// could not be forwarded may keep the rewrite.
		if !bytes.Equal(out, in.frame) {
			bad("passed to the kernel but modified: %s", fuzzFirstDiff(in.frame, out))
		}
	}
	if len(problems) > 0 {
		t.Errorf("table seed %d, ingress %s (ifindex %d), frame of %d bytes:\n%s\n"+
			"model: action %d, %v in vrf %d\nprogram: action %d\n%s\nframe in:\n%s\nframe out (program):\n%s\nframe out (model):\n%s",
			seed, in.name, in.ingress, len(in.frame), strings.Join(problems, "\n"),
			want.Action, want.Reason, want.VRF, action, h.fmtTables(),
			fuzzHex(in.frame), fuzzHex(out), fuzzHex(want.Out))
	}
}

func (h *fuzzHarness) fmtTables() string {
	var b strings.Builder
	for _, vrf := range fuzzVRFs {
		fmt.Fprintf(&b, "vrf %d:%s\n", vrf, fuzzFmtRoutes(h.tables[vrf]))
	}
	return b.String()
}

// isolation says what is wrong (or "") with where a forwarded frame
// leaves, judged from the frames alone: the ingress VRF from the port or
// the incoming VNI; the egress port from the frame's source MAC (ours on
// that port), and the VRF it leaves in from the port (local delivery) or
// the outgoing VNI (encapsulation). That VRF (or remote VNI) must be one a
// route of the ingress VRF's table leads to: no packet leaves in a VRF that
// has no route leaking it there.
func (h *fuzzHarness) isolation(in fuzzInput, action int, out []byte) string {
	e := h.env
	from, ok := e.portVRF[in.ingress]
	if slices.ContainsFunc(e.uplinks, func(i *net.Interface) bool { return i.Index == in.ingress }) {
		if len(in.frame) < 50 {
			return "forwarded a frame too short for VXLAN from an uplink"
		}
		vni := binary.BigEndian.Uint32(in.frame[46:]) >> 8
		if from, ok = fuzzVNIVRF[vni]; !ok {
			return fmt.Sprintf("forwarded a frame of VNI %d, which is no VRF's", vni)
		}
	} else if !ok {
		return "forwarded a frame from a port without the program"
	}
	if len(out) < 14 {
		return fmt.Sprintf("forwarded a %d byte frame", len(out))
	}
	var egress *net.Interface
	for _, i := range append(slices.Clone(e.uplinks), e.access...) {
		if bytes.Equal(i.HardwareAddr, out[6:12]) {
			egress = i
		}
	}
	if egress == nil {
		return fmt.Sprintf("left with source MAC %v, none of ours", net.HardwareAddr(out[6:12]))
	}
	var domain uint32
	switch vrf, access := e.portVRF[egress.Index]; {
	case access:
		domain = fuzzVRFVNI[vrf]
	case len(out) < 50 || binary.BigEndian.Uint16(out[12:]) != 0x0800 || out[23] != 17 || binary.BigEndian.Uint16(out[36:]) != 4789:
		return "left through an uplink but is not VXLAN"
	default:
		domain = binary.BigEndian.Uint32(out[46:]) >> 8
	}
	if (action == dataplane.XDPTx) != (egress.Index == in.ingress) {
		return fmt.Sprintf("action %d, but it leaves through %s, having come in through %s", action, egress.Name, in.name)
	}
	if !h.reach[from][domain] {
		return fmt.Sprintf("came in in vrf %d and left in VNI %d, but vrf %d has no route there (it reaches %v)",
			from, domain, from, slices.Sorted(maps.Keys(h.reach[from])))
	}
	return ""
}

func fuzzCountersEqual[K comparable](a, b map[K]dataplane.Counter) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func fuzzFmtCounters(m map[dataplane.CounterKey]dataplane.Counter) string {
	var parts []string
	for k, c := range m {
		parts = append(parts, fmt.Sprintf("{vrf %d %v: %d pkts %d bytes}", k.VRF, k.Reason, c.Packets, c.Bytes))
	}
	slices.Sort(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

func fuzzFirstDiff(want, got []byte) string {
	n := min(len(want), len(got))
	for i := range n {
		if want[i] != got[i] {
			return fmt.Sprintf("first difference at byte %d: want %#02x, got %#02x (lengths %d, %d)", i, want[i], got[i], len(want), len(got))
		}
	}
	return fmt.Sprintf("lengths differ: want %d, got %d", len(want), len(got))
}

func fuzzHex(b []byte) string {
	const limit = 160
	s := fmt.Sprintf("%x", b[:min(len(b), limit)])
	if len(b) > limit {
		s += fmt.Sprintf("... (%d bytes)", len(b))
	}
	return s
}

// fuzzEnv is what the packet builder needs to know about the leaf.
type fuzzEnv struct {
	uplinks []*net.Interface // swp1, swp3
	peers   []net.HardwareAddr
	access  []*net.Interface // swp10, swp20, swp30
	hosts   []net.HardwareAddr
	host10  *net.Interface // a port without the program
	portVRF map[int]dataplane.VRFID
}

func newFuzzEnv(l *fixture.Leaf) *fuzzEnv {
	return &fuzzEnv{
		uplinks: []*net.Interface{l.Swp1, l.Swp3},
		peers:   []net.HardwareAddr{fixture.SpineMAC, fixture.DCIMAC},
		access:  []*net.Interface{l.Swp10, l.Swp20, l.Swp30},
		hosts:   []net.HardwareAddr{fixture.HostRedMAC, fixture.HostGreenMAC, fixture.HostBlueMAC},
		host10:  l.Host10,
		portVRF: map[int]dataplane.VRFID{l.Swp10.Index: fixture.RED, l.Swp20.Index: fixture.GREEN, l.Swp30.Index: fixture.BLUE},
	}
}

// fuzzPacket is the decoded packet description. Its encoding is a fixed
// header of fuzzHeaderLen bytes, the mutations (3 bytes each), the
// truncation length (2 bytes, if any) and the payload bytes; decoding
// reads zeros past the end, so every byte string is a packet. Anomalies
// need a second bit to be set, so that random bytes still make mostly
// well-formed frames that get past the parsers.
type fuzzPacket struct {
	ingress byte   // %16: 0-14 %5 swp1, swp3, swp10, swp20, swp30; 15 host10 (no program)
	flags   byte   // mode and anomalies: the fuzzMode and fuzzFlag constants
	vni     byte   // low nibble: 0-11 4001/4002/4003 (%3), 12 5001, 13 5002, 14 9999, 15 2^24-1; fuzzVNIRouterMAC
	dst     byte   // %8: 0-3 in a route of the lookup VRF (of the packet's family), 4-6 a fixture host, 7 addr; fuzzDstOuterFrag
	route   byte   // which route, for dst 0-3
	addr    uint32 // host bits for dst 0-3; the address for dst 7 (IPv6: fuzzAddr6); IPv6's flow label
	proto   byte   // %6: UDP, TCP, ICMP, SCTP, GRE (IPv6: a fragment header), the byte itself
	ttl     byte   // 0 is sent as 1
	tos     byte
	sport   uint16 // also the source address and DF: see decodePacket
	dport   uint16
	size    uint16 // payload: top two bits 0/1: size&63; 2: 1400+size&255; 3: (size&0x3fff)%2800
	ipopt   byte   // the fuzzIP constants
	nmut    byte   // the fuzzMut constants; encode sets them from muts and truncate
	muts    []fuzzMutation
	trunc   uint16 // the frame is cut to trunc%(len+1) bytes
	payload []byte
}

type fuzzMutation struct {
	off uint16 // %len(frame)
	val byte
}

const (
	fuzzModeMask   = 0x07 // flags: 0-4 structured IPv4, 5 structured IPv6
	fuzzModeIPv6   = 5
	fuzzModeRaw    = 6 // the input's bytes after flags are the frame
	fuzzModeRawEth = 7 // the same behind an Ethernet header to the port's MAC

	fuzzFlagAnomalies = 0x08 // flags: enables the four below and fuzzDstOuterFrag
	fuzzFlagOuterMAC  = 0x10 // outer (uplink) or only (access) destination MAC is not ours
	fuzzFlagOuterIP   = 0x20 // outer destination address is not our VTEP
	fuzzFlagInnerMAC  = 0x40 // inner destination MAC is not the router MAC
	fuzzFlagVXLAN     = 0x80 // a VXLAN flag besides I (route even) or the reserved byte (odd) set

	fuzzVNIRouterMAC = 0x80 // vni: an access frame goes to the router MAC, not the port's

	fuzzDstOuterFrag = 0x80 // dst: outer more-fragments (an anomaly)

	fuzzIPEnable   = 0xc0 // ipopt: both bits enable the three below
	fuzzIPOptWords = 0x0f // %11: option words in the inner IPv4 header
	fuzzIPMF       = 0x10 // inner more-fragments
	fuzzIPOffset   = 0x20 // inner fragment offset

	fuzzMutEnable   = 0x04 // nmut: nmut&3 mutations follow
	fuzzMutTruncate = 0xc0 // nmut: both bits: a truncation length follows

	fuzzHeaderLen = 20
	fuzzMaxFrame  = 3000
)

func (p fuzzPacket) encode() []byte {
	if len(p.muts) > 3 {
		panic("more than 3 mutations")
	}
	nmut := p.nmut &^ (fuzzMutEnable | 3 | fuzzMutTruncate)
	if len(p.muts) > 0 {
		nmut |= fuzzMutEnable | byte(len(p.muts))
	}
	if p.trunc != 0 {
		nmut |= fuzzMutTruncate
	}
	b := []byte{p.ingress, p.flags, p.vni, p.dst, p.route}
	b = binary.BigEndian.AppendUint32(b, p.addr)
	b = append(b, p.proto, p.ttl, p.tos)
	b = binary.BigEndian.AppendUint16(b, p.sport)
	b = binary.BigEndian.AppendUint16(b, p.dport)
	b = binary.BigEndian.AppendUint16(b, p.size)
	b = append(b, p.ipopt, nmut)
	if len(b) != fuzzHeaderLen {
		panic("packet header length")
	}
	for _, m := range p.muts {
		b = binary.BigEndian.AppendUint16(b, m.off)
		b = append(b, m.val)
	}
	if p.trunc != 0 {
		b = binary.BigEndian.AppendUint16(b, p.trunc)
	}
	return append(b, p.payload...)
}

// fuzzReader hands out bytes of the input, then zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) u8() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *fuzzReader) u16() uint16 { return uint16(r.u8())<<8 | uint16(r.u8()) }
func (r *fuzzReader) u32() uint32 { return uint32(r.u16())<<16 | uint32(r.u16()) }

// fuzzDecodeHeader decodes a packet description; truncate reports whether
// it asks for truncation (trunc may be 0). raw is the input after the
// ingress and flags bytes.
func fuzzDecodeHeader(data []byte) (p fuzzPacket, truncate bool, raw []byte) {
	r := &fuzzReader{data}
	p = fuzzPacket{ingress: r.u8(), flags: r.u8(), vni: r.u8(), dst: r.u8(), route: r.u8(), addr: r.u32(),
		proto: r.u8(), ttl: r.u8(), tos: r.u8(), sport: r.u16(), dport: r.u16(), size: r.u16(), ipopt: r.u8(), nmut: r.u8()}
	if p.nmut&fuzzMutEnable != 0 {
		for range p.nmut & 3 {
			p.muts = append(p.muts, fuzzMutation{off: r.u16(), val: r.u8()})
		}
	}
	if truncate = p.nmut&fuzzMutTruncate == fuzzMutTruncate; truncate {
		p.trunc = r.u16()
	}
	p.payload = r.b
	return p, truncate, data[min(len(data), 2):]
}

var fuzzOtherMAC = net.HardwareAddr{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}

func fuzzVNI(sel byte) uint32 {
	switch sel &= 0x0f; {
	case sel < 12:
		return []uint32{fixture.RedVNI, fixture.GreenVNI, fixture.BlueVNI}[sel%3]
	case sel == 12:
		return fixture.Site2RedVNI
	case sel == 13:
		return fixture.Site2GreenVNI
	case sel == 14:
		return 9999
	}
	return 1<<24 - 1
}

// decodePacket turns the fuzz bytes into a frame and its ingress port.
func (e *fuzzEnv) decodePacket(t *testing.T, tables map[dataplane.VRFID][]dataplane.Route, data []byte) fuzzInput {
	p, truncate, raw := fuzzDecodeHeader(data)
	var in fuzzInput
	var port *net.Interface
	uplink := false
	switch i := int(p.ingress % 16); {
	case i == 15:
		port = e.host10
	case i%5 < 2:
		port, uplink = e.uplinks[i%5], true
	default:
		port = e.access[i%5-2]
	}
	in.ingress, in.name = port.Index, port.Name

	switch p.flags & fuzzModeMask {
	case fuzzModeRaw:
		in.frame = fuzzPad(bytes.Clone(raw[:min(len(raw), fuzzMaxFrame)]))
		return in
	case fuzzModeRawEth:
		frame := append(append(append([]byte{}, port.HardwareAddr...), fuzzOtherMAC...), 0x08, 0x00)
		in.frame = append(frame, raw[:min(len(raw), fuzzMaxFrame-14)]...)
		return in
	}
	anomaly := func(flag byte) bool { return p.flags&fuzzFlagAnomalies != 0 && p.flags&flag != 0 }

	// The VRF the destination is looked up in: the port's, or the VNI's.
	vni := fuzzVNI(p.vni)
	lookup := fixture.RED
	if uplink {
		if v, ok := fuzzVNIVRF[vni]; ok {
			lookup = v
		}
	} else if v, ok := e.portVRF[port.Index]; ok {
		lookup = v
	}
	v6 := p.flags&fuzzModeMask == fuzzModeIPv6
	routes := slices.DeleteFunc(slices.Clone(tables[lookup]), func(r dataplane.Route) bool { return r.Prefix.Addr().Is6() != v6 })
	hosts, addr := fuzzHosts, fuzzAddr4
	if v6 {
		hosts, addr = fuzzHosts6, fuzzAddr6
	}
	var dst netip.Addr
	switch sel := p.dst % 8; {
	case sel < 4 && len(routes) > 0:
		dst = fuzzInPrefix(routes[int(p.route)%len(routes)].Prefix, p.addr)
	case sel >= 4 && sel < 7:
		dst = hosts[sel-4]
	default:
		dst = addr(p.addr)
	}

	// The source: where an ICMP error goes back to. sport's high byte
	// picks it (bits 0-1) and sets DF (bit 2).
	src := fuzzAddr4(0xc0a81400 | uint32(p.sport&0xff))
	if v6 {
		src = fuzzAddr6(0x00200000 | uint32(p.sport&0xff))
	}
	switch p.sport >> 8 & 3 {
	case 2:
		src = hosts[int(p.sport&0xff)%len(hosts)]
	case 3:
		src = fuzzAddr4(p.addr ^ uint32(p.sport&0xff)<<24) // 0/8, 127/8, groups, ...
		if v6 {                                            // link-local, unspecified, multicast, loopback, mapped
			odd := []string{"fe80::1", "::", "ff02::1", "::1", "::ffff:192.168.20.1"}
			src = netip.MustParseAddr(odd[int(p.sport&0xff)%len(odd)])
		}
	}
	flow := fixture.Flow{Src: src, Dst: dst, SrcPort: p.sport, DstPort: p.dport,
		TTL: p.ttl, TOS: p.tos, DF: p.sport&0x400 != 0}
	if v6 {
		flow.DF, flow.FlowLabel = false, p.addr&0xfffff
	}
	if flow.TTL == 0 {
		flow.TTL = 1 // Flow reads 0 as 64; 0 and 1 both expire
	}
	switch p.proto % 6 {
	case 0:
		flow.Proto = layers.IPProtocolUDP
	case 1:
		flow.Proto = layers.IPProtocolTCP
	case 2:
		flow.Proto = layers.IPProtocolICMPv4
		if v6 {
			flow.Proto = layers.IPProtocolICMPv6
		}
	case 3:
		flow.Proto = layers.IPProtocolSCTP
	case 4:
		flow.Proto = layers.IPProtocolGRE
		if v6 {
			flow.Proto = layers.IPProtocolIPv6Fragment
		}
	default:
		flow.Proto = layers.IPProtocol(p.proto)
		if flow.Proto == 0 {
			flow.Proto = 255 // Flow reads 0 as UDP
		}
	}
	var size int
	switch p.size >> 14 {
	case 0, 1:
		size = int(p.size & 63)
	case 2:
		size = 1400 + int(p.size&255)
	default:
		size = int(p.size&0x3fff) % 2800
	}
	flow.Payload = make([]byte, size)
	for i := range flow.Payload {
		if len(p.payload) > 0 {
			flow.Payload[i] = p.payload[i%len(p.payload)]
		} else {
			flow.Payload[i] = byte(i)
		}
	}

	var frame []byte
	if uplink {
		peer := e.peers[slices.Index(e.uplinks, port)]
		innerDst := fixture.RouterMAC
		if anomaly(fuzzFlagInnerMAC) {
			innerDst = fuzzOtherMAC
		}
		inner := fixture.Frame(t, innerDst, peer, flow)
		if !v6 {
			inner = fuzzIPOptions(inner, p.ipopt)
		}
		o := fixture.Outer{DstMAC: port.HardwareAddr, SrcMAC: peer, Src: fixture.Border04, Dst: fixture.VTEP,
			SrcPort: 49152 | p.sport, VNI: vni, TOS: p.tos}
		if anomaly(fuzzFlagOuterMAC) {
			o.DstMAC = fuzzOtherMAC
		}
		if anomaly(fuzzFlagOuterIP) {
			o.Dst = netip.MustParseAddr("10.10.10.99")
		}
		frame = fixture.VXLAN(t, o, inner)
		if anomaly(fuzzFlagVXLAN) {
			if p.route&1 == 0 {
				frame[42] |= 0x04 // a flag besides I
			} else {
				frame[49] = p.route // reserved byte
			}
		}
		if p.flags&fuzzFlagAnomalies != 0 && p.dst&fuzzDstOuterFrag != 0 {
			frame[20] |= 0x20 // MF
		}
	} else {
		dmac := port.HardwareAddr
		switch {
		case anomaly(fuzzFlagOuterMAC):
			dmac = fuzzOtherMAC
		case p.vni&fuzzVNIRouterMAC != 0:
			dmac = fixture.RouterMAC
		}
		smac := fuzzOtherMAC
		if i := slices.Index(e.access, port); i >= 0 {
			smac = e.hosts[i]
		}
		frame = fixture.Frame(t, dmac, smac, flow)
		if !v6 {
			frame = fuzzIPOptions(frame, p.ipopt)
		}
	}

	for _, m := range p.muts {
		frame[int(m.off)%len(frame)] = m.val
	}
	if truncate {
		frame = frame[:int(p.trunc)%(len(frame)+1)]
	}
	in.frame = fuzzPad(frame[:min(len(frame), fuzzMaxFrame)])
	return in
}

// fuzzIPOptions inserts option words into the IPv4 header of an Ethernet
// frame (NOPs, an end of list) and sets fragment bits, as ipopt says,
// fixing the header's length and checksum.
func fuzzIPOptions(frame []byte, ipopt byte) []byte {
	if ipopt&fuzzIPEnable != fuzzIPEnable {
		return frame
	}
	ip := frame[14:]
	if n := int(ipopt&fuzzIPOptWords) % 11; n > 0 {
		opts := bytes.Repeat([]byte{1}, 4*n)
		opts[len(opts)-1] = 0
		frame = slices.Insert(frame, 14+20, opts...)
		ip = frame[14:]
		ip[0] = 0x40 | byte(5+n)
		binary.BigEndian.PutUint16(ip[2:], binary.BigEndian.Uint16(ip[2:])+uint16(4*n))
	}
	if ipopt&fuzzIPMF != 0 {
		ip[6] |= 0x20
	}
	if ipopt&fuzzIPOffset != 0 {
		ip[7] |= 0x10
	}
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(ip[:4*(ip[0]&0x0f)]))
	return frame
}

// fuzzPad makes a frame BPF_PROG_TEST_RUN accepts: at least an Ethernet header.
func fuzzPad(frame []byte) []byte {
	for len(frame) < 14 {
		frame = append(frame, 0)
	}
	return frame
}

func fuzzAddr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// fuzzStats reads the program's counters of VRFs 0 to 3 (all a correct
// program can count under on this leaf), and their rows of the leak
// matrix, in two batches: Counters() walks every key of the per-CPU array,
// and even one batch over all of them takes milliseconds, too slow for two
// reads per fuzz input. checkStatsReader holds it to Counters(), and
// checkNoOtherVRF makes sure, at the end, that nothing was counted under
// any other VRF.
type fuzzStats struct {
	m, cols *ebpf.Map // stats, leak_vnis
	ncpu    int
	reasons uint32
	vals    []fuzzStatsValue
	batch   bool
	dp      *dataplane.Dataplane
	col     map[uint32]uint32 // VNI -> leak matrix column, as read from leak_vnis
}

type fuzzStatsValue struct{ Packets, Bytes uint64 }

// fuzzLeakCell is a leak matrix cell as the program keys it: an
// encapsulated packet's column is its VNI's, a delivered one's its host's
// VRF.
type fuzzLeakCell struct {
	from  dataplane.VRFID
	col   uint32
	local bool
}

// fuzzMaxVRF is the highest VRF id the leaf has.
const fuzzMaxVRF = fixture.BLUE

// The key ranges the fast reader reads: VRFs 0..fuzzMaxVRF's reasons, then
// their rows of the leak matrix (each LeakCols columns of two cells).
const (
	fuzzReasonKeys = uint32(fuzzMaxVRF+1) * dataplane.ReasonSlots
	fuzzLeakBase   = dataplane.MaxVRFs * dataplane.ReasonSlots
	fuzzLeakKeys   = uint32(fuzzMaxVRF+1) * dataplane.LeakCols * 2
)

func newFuzzStats(tb testing.TB, l *fixture.Leaf) *fuzzStats {
	s := &fuzzStats{dp: l.DP, reasons: dataplane.ReasonSlots, col: map[uint32]uint32{}}
	info, err := l.DP.Program().Info()
	if err != nil {
		tb.Fatalf("program info: %v", err)
	}
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			tb.Fatalf("map %d: %v", id, err)
		}
		mi, err := m.Info()
		if err == nil && mi.Name == "stats" && mi.Type == ebpf.PerCPUArray && s.m == nil {
			s.m = m
			tb.Cleanup(func() { m.Close() })
			continue
		}
		m.Close()
	}
	// leak_vnis is not the program's (Go alone reads it): by its pin.
	if s.cols, err = ebpf.LoadPinnedMap(l.PinPath+"/leak_vnis", nil); err != nil {
		tb.Fatalf("leak matrix columns: %v", err)
	}
	tb.Cleanup(func() { s.cols.Close() })
	if s.m == nil {
		tb.Log("stats map not found: reading counters with Counters()")
		return s
	}
	if s.ncpu, err = ebpf.PossibleCPU(); err != nil {
		tb.Fatal(err)
	}
	s.vals = make([]fuzzStatsValue, int(max(fuzzReasonKeys, fuzzLeakKeys))*s.ncpu)
	s.batch = true
	return s
}

// snapshot returns every non-zero counter of VRFs 0 to fuzzMaxVRF (a
// forwarded packet's under its reason, as Counters() adds them) and every
// non-zero cell of their rows of the leak matrix.
func (s *fuzzStats) snapshot(tb testing.TB) (map[dataplane.CounterKey]dataplane.Counter, map[fuzzLeakCell]dataplane.Counter) {
	if s.batch {
		out, leaks, err := s.read()
		if err == nil {
			return out, leaks
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTSUP) {
			tb.Fatalf("read counters: %v", err)
		}
		s.batch = false
	}
	all, err := s.dp.Counters()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[dataplane.CounterKey]dataplane.Counter{}
	for k, c := range all {
		if k.VRF <= fuzzMaxVRF {
			out[k] = c
		}
	}
	ls, err := s.dp.Leaks()
	if err != nil {
		tb.Fatal(err)
	}
	leaks := map[fuzzLeakCell]dataplane.Counter{}
	for l, c := range ls {
		if l.From > fuzzMaxVRF {
			continue
		}
		if l.Local {
			leaks[fuzzLeakCell{from: l.From, col: uint32(l.HostVRF), local: true}] = c
		} else {
			leaks[fuzzLeakCell{from: l.From, col: s.colOf(tb, l.VNI)}] = c
		}
	}
	return out, leaks
}

func (s *fuzzStats) read() (map[dataplane.CounterKey]dataplane.Counter, map[fuzzLeakCell]dataplane.Counter, error) {
	out := map[dataplane.CounterKey]dataplane.Counter{}
	leaks := map[fuzzLeakCell]dataplane.Counter{}
	add := func(key dataplane.CounterKey, c dataplane.Counter) {
		o := out[key]
		out[key] = dataplane.Counter{Packets: o.Packets + c.Packets, Bytes: o.Bytes + c.Bytes}
	}
	if err := s.readRange(0, fuzzReasonKeys, func(k uint32, c dataplane.Counter) {
		add(dataplane.CounterKey{VRF: dataplane.VRFID(k / s.reasons), Reason: dataplane.Reason(k % s.reasons)}, c)
	}); err != nil {
		return nil, nil, err
	}
	if err := s.readRange(fuzzLeakBase, fuzzLeakKeys, func(k uint32, c dataplane.Counter) {
		cell := k - fuzzLeakBase
		l := fuzzLeakCell{from: dataplane.VRFID(cell / 2 / dataplane.LeakCols), col: cell / 2 % dataplane.LeakCols, local: cell%2 == 1}
		leaks[l] = c
		reason := dataplane.ReasonFwdRemote
		if l.local {
			reason = dataplane.ReasonFwdLocal
		}
		add(dataplane.CounterKey{VRF: l.from, Reason: reason}, c)
	}); err != nil {
		return nil, nil, err
	}
	return out, leaks, nil
}

// readRange reads n counters from key first on with one
// BPF_MAP_LOOKUP_BATCH (cilium/ebpf's batches start at key 0) and calls
// fn with each non-zero one.
func (s *fuzzStats) readRange(first, n uint32, fn func(uint32, dataplane.Counter)) error {
	keys := make([]uint32, n)
	// The batch starts after in_batch: the key before the first.
	in, out := first-1, uint32(0)
	attr := struct {
		inBatch, outBatch, keys, values uint64
		count, mapFD                    uint32
		elemFlags, flags                uint64
	}{
		outBatch: uint64(uintptr(unsafe.Pointer(&out))),
		keys:     uint64(uintptr(unsafe.Pointer(&keys[0]))),
		values:   uint64(uintptr(unsafe.Pointer(&s.vals[0]))),
		count:    n,
		mapFD:    uint32(s.m.FD()),
	}
	if first > 0 {
		attr.inBatch = uint64(uintptr(unsafe.Pointer(&in)))
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_LOOKUP_BATCH, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(keys)
	runtime.KeepAlive(&in)
	runtime.KeepAlive(&out)
	if errno != 0 && errno != unix.ENOENT {
		return errno
	}
	if attr.count != n {
		return fmt.Errorf("batch read %d counters from %d, want %d", attr.count, first, n)
	}
	for i := range n {
		var c dataplane.Counter
		for _, v := range s.vals[int(i)*s.ncpu : int(i+1)*s.ncpu] {
			c.Packets += v.Packets
			c.Bytes += v.Bytes
		}
		if keys[i] != first+i {
			return fmt.Errorf("batch read key %d at %d, want %d", keys[i], i, first+i)
		}
		if c.Packets > 0 {
			fn(keys[i], c)
		}
	}
	return nil
}

// colOf is vni's column in the leak matrix (0: none), from leak_vnis.
func (s *fuzzStats) colOf(tb testing.TB, vni uint32) uint32 {
	if c, ok := s.col[vni]; ok {
		return c
	}
	for c := uint32(1); c < dataplane.LeakCols; c++ {
		var v uint32
		if err := s.cols.Lookup(c, &v); err != nil {
			tb.Fatalf("leak matrix column %d: %v", c, err)
		}
		if v != 0 {
			s.col[v] = c
		}
	}
	return s.col[vni]
}

// cellOf is the cell the model's verdict is counted in, if any.
func (s *fuzzStats) cellOf(tb testing.TB, v dataplane.Verdict) (fuzzLeakCell, bool) {
	if v.Reason != dataplane.ReasonFwdRemote && v.Reason != dataplane.ReasonFwdLocal {
		return fuzzLeakCell{}, false
	}
	if v.Leak.Local {
		return fuzzLeakCell{from: v.Leak.From, col: uint32(v.Leak.HostVRF), local: true}, true
	}
	return fuzzLeakCell{from: v.Leak.From, col: s.colOf(tb, v.Leak.VNI)}, true
}

// checkNoOtherVRF fails tb if anything was counted under a VRF the fast
// reader does not look at.
func (s *fuzzStats) checkNoOtherVRF(tb testing.TB) {
	all, err := s.dp.Counters()
	if err != nil {
		tb.Fatal(err)
	}
	for k, c := range all {
		if k.VRF > fuzzMaxVRF {
			tb.Errorf("counted under vrf %d, which this leaf does not have: %v %+v", k.VRF, k.Reason, c)
		}
	}
}

// checkStatsReader runs a frame and compares the fast reader with
// Counters().
func (h *fuzzHarness) checkStatsReader(tb testing.TB) {
	f := fixture.Flow{Src: fixture.HostRed, Dst: netip.MustParseAddr("192.168.1.10"), TTL: 64}
	fixture.Run(tb, h.l.DP.Program(), h.l.Swp10.Index, fixture.Frame(tb, h.l.Swp10.HardwareAddr, fixture.HostRedMAC, f))
	fast, _ := h.stats.snapshot(tb)
	slow, err := h.l.DP.Counters()
	if err != nil {
		tb.Fatal(err)
	}
	for k := range slow {
		if k.VRF > fuzzMaxVRF {
			delete(slow, k)
		}
	}
	if !fuzzCountersEqual(fast, slow) || len(slow) == 0 {
		tb.Fatalf("counters: batch read %v, Counters() %v", fuzzFmtCounters(fast), fuzzFmtCounters(slow))
	}
}

// fuzzSeed is one f.Add: a table seed and a packet.
type fuzzSeed struct {
	table uint64
	pkt   fuzzPacket
	raw   []byte // the packet's encoding, if set
}

func (s fuzzSeed) bytes() []byte {
	if s.raw != nil {
		return s.raw
	}
	return s.pkt.encode()
}

func fuzzSeeds() []fuzzSeed {
	const (
		swp1, swp3, swp10, swp20, swp30, host10 = 0, 1, 2, 3, 4, 15
		vni4001, vni4002, vni4003, vni9999      = 0, 1, 2, 14
		dstRoute, hostRed, hostGreen, hostBlue  = 0, 4, 5, 6
		dstAddr                                 = 7
		udp, tcp, icmp, sctp                    = 0, 1, 2, 3
	)
	ip := func(s string) uint32 {
		if s == "" {
			return 0
		}
		return binary.BigEndian.Uint32(netip.MustParseAddr(s).AsSlice())
	}
	to := func(ingress, vni byte, dst string) fuzzPacket {
		return fuzzPacket{ingress: ingress, vni: vni, dst: dstAddr, addr: ip(dst), proto: udp, ttl: 64, sport: 1234, dport: 5678,
			size: 16, payload: []byte("xleaf fuzz")}
	}
	with := func(p fuzzPacket, f func(*fuzzPacket)) fuzzPacket { f(&p); return p }
	// v6 makes p IPv6, to fuzzAddr6(addr).
	v6 := func(p fuzzPacket, addr uint32) fuzzPacket { p.flags, p.addr = fuzzModeIPv6, addr; return p }
	decapLocal := to(swp3, vni4001, "192.168.100.10")
	hostToRemote := with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.proto = tcp; p.sport, p.dport = 4000, 80 })

	s := []fuzzSeed{
		// The fixture's tables: every path of the guide.
		{table: 0, pkt: decapLocal},
		{table: 0, pkt: to(swp3, vni4001, "192.168.2.10")},                                                                     // DCI leak: RED in, re-encap with GREEN's VNI
		{table: 0, pkt: to(swp3, vni4001, "192.168.20.7")},                                                                     // hairpin re-encap (XDP_TX)
		{table: 0, pkt: to(swp1, vni4001, "192.168.1.10")},                                                                     // re-encap to the leafs (XDP_TX)
		{table: 0, pkt: hostToRemote},                                                                                          // access encap
		{table: 0, pkt: with(hostToRemote, func(p *fuzzPacket) { p.vni = fuzzVNIRouterMAC })},                                  // access to the router MAC
		{table: 0, pkt: to(swp10, 0, "192.168.10.5")},                                                                          // access to site 2's GREEN (5002)
		{table: 0, pkt: to(swp10, 0, "192.168.200.10")},                                                                        // local leak RED -> GREEN
		{table: 0, pkt: to(swp3, vni4001, "192.168.200.10")},                                                                   // decap into a leaked VRF
		{table: 0, pkt: to(swp20, 0, "192.168.100.10")},                                                                        // local leak GREEN -> RED
		{table: 0, pkt: to(swp10, 0, "192.168.2.77")},                                                                          // blackhole
		{table: 0, pkt: to(swp20, 0, "192.168.1.77")},                                                                          // GREEN's aggregate
		{table: 0, pkt: to(swp10, 0, "172.31.0.1")},                                                                            // no route
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.ttl = 1 })},                                 // TTL 1 from a host
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.ttl = 1 })},                                                   // TTL 1 in VXLAN
		{table: 0, pkt: with(to(swp10, 0, "192.168.100.1"), func(p *fuzzPacket) { p.ttl = 1 })},                                // TTL 1 to the gateway
		{table: 0, pkt: to(swp20, 0, "192.168.200.1")},                                                                         // gateway: receive
		{table: 0, pkt: to(swp10, 0, "192.168.100.77")},                                                                        // no neighbour
		{table: 0, pkt: to(swp10, 0, "192.168.99.5")},                                                                          // unresolved underlay
		{table: 0, pkt: to(swp10, 0, "192.168.98.5")},                                                                          // no underlay route
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.size = 0x8000 | 22 })},                      // encap exactly the MTU
		{table: 1 << 62, pkt: hostToRemote},                                                                                    // resolved next hops: access encap
		{table: 1 << 62, pkt: to(swp3, vni4001, "192.168.2.10")},                                                               // and the DCI leak
		{table: 2 << 62, pkt: hostToRemote},                                                                                    // two underlay paths per leaf
		{table: 2 << 62, pkt: with(hostToRemote, func(p *fuzzPacket) { p.sport = 4001 })},                                      // (another flow)
		{table: 2 << 62, pkt: to(swp1, vni4001, "192.168.1.10")},                                                               // re-encap to the leafs
		{table: 3 << 62, pkt: to(swp10, 0, "192.168.99.5")},                                                                    // resolved where the kernel is not
		{table: 3 << 62, pkt: with(to(swp3, vni4001, "192.168.20.7"), func(p *fuzzPacket) { p.size = 0x8000 | 22 })},           // re-encap over a smaller MTU
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.size = 0x8000 | 23 })},                      // encap one over
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.size = 0x8000 | 72 })},                                        // decap exactly the access MTU
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.size = 0x8000 | 73 })},                                        // decap one over
		{table: 0, pkt: with(to(swp3, vni4001, "192.168.20.7"), func(p *fuzzPacket) { p.size = 0x8000 | 22 })},                 // re-encap exactly the MTU
		{table: 0, pkt: with(to(swp3, vni4001, "192.168.20.7"), func(p *fuzzPacket) { p.size = 0x8000 | 23 })},                 // re-encap one over
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.ttl, p.sport = 1, 0x0200 })},                // TTL 1 from RED's host: time exceeded back to it
		{table: 0, pkt: with(to(swp10, 0, "172.31.0.1"), func(p *fuzzPacket) { p.sport = 0x0200 })},                            // no route: net unreachable back
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.size, p.sport = 0x8000|73, 0x00d2 })},                         // decap one over without DF: dropped
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.ttl, p.sport, p.proto = 1, 0x0200, icmp })}, // an ICMP packet expiring
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.ttl, p.sport = 1, 0x0300 })},                // from an address no error goes to
		{table: 0, pkt: to(swp3, vni9999, "192.168.100.10")},                                                                   // unknown VNI
		{table: 0, pkt: to(swp3, vni4003, "192.168.100.10")},                                                                   // BLUE's VNI to RED's host
		{table: 0, pkt: with(to(swp30, 0, "192.168.100.10"), func(p *fuzzPacket) { p.dst = hostRed })},                         // BLUE to RED
		{table: 0, pkt: to(swp30, 0, "192.168.30.10")},                                                                         // BLUE to itself: local, XDP_TX
		{table: 0, pkt: to(swp10, 0, "192.168.30.10")},                                                                         // RED to BLUE
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.flags = fuzzFlagAnomalies | fuzzFlagInnerMAC })},              // bad router MAC
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.flags = fuzzFlagAnomalies | fuzzFlagVXLAN })},                 // bad VXLAN flags
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.flags, p.route = fuzzFlagAnomalies|fuzzFlagVXLAN, 1 })},       // VXLAN reserved byte
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.flags = fuzzFlagAnomalies | fuzzFlagOuterMAC })},              // not our MAC
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.flags = fuzzFlagAnomalies | fuzzFlagOuterIP })},               // not our VTEP
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.flags, p.dst = fuzzFlagAnomalies, p.dst|fuzzDstOuterFrag })},  // outer fragment
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.trunc = 45 })},                                                // truncated VXLAN header
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.trunc = 60 })},                                                // truncated inner Ethernet
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.trunc = 80 })},                                                // truncated inner IPv4
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.trunc = 30 })},                              // truncated IPv4 on access
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.muts = []fuzzMutation{{64, 0xff}} })},                         // inner IPv4 version 15
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.muts = []fuzzMutation{{66, 0xff}} })},                         // inner total length too big
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.muts = []fuzzMutation{{16, 0xff}} })},       // access total length too big
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.muts = []fuzzMutation{{62, 0x08}, {63, 0x06}} })},             // inner ARP
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.ipopt = fuzzIPEnable | 2 })},                // IP options from a host: kernel
		{table: 0, pkt: with(decapLocal, func(p *fuzzPacket) { p.ipopt = fuzzIPEnable | 10 })},                                 // IP options in VXLAN: routed
		{table: 0, pkt: with(to(swp3, vni4001, "192.168.1.10"), func(p *fuzzPacket) { p.ipopt = fuzzIPEnable | 3 })},           // options, hashed past them
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.ipopt = fuzzIPEnable | fuzzIPMF })},         // fragment: 3-tuple hash
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.proto = sctp })},                            // SCTP ports
		{table: 0, pkt: with(to(swp10, 0, "192.168.1.10"), func(p *fuzzPacket) { p.proto = icmp })},                            // no ports
		{table: 0, pkt: with(to(host10, 0, "192.168.1.10"), func(p *fuzzPacket) {})},                                           // no program on the port
		{table: 0, raw: append([]byte{swp3, fuzzModeRaw}, "raw bytes, not even Ethernet addressed to us"...)},                  // raw
		{table: 0, raw: []byte{swp10, fuzzModeRawEth, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 192, 168, 1, 10}},  // raw IPv4
		// IPv6: every path again, and what only IPv6 has.
		{table: 0, pkt: v6(to(swp3, vni4001, ""), 0x0100_0010)},                                                                    // decap to RED's host
		{table: 0, pkt: v6(to(swp3, vni4001, ""), 0x0002_0010)},                                                                    // DCI leak
		{table: 0, pkt: v6(to(swp3, vni4001, ""), 0x0020_0007)},                                                                    // hairpin (XDP_TX)
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0001_0010), func(p *fuzzPacket) { p.proto = tcp; p.sport = 0x0200 })},          // access encap from RED's host
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0200_0010), func(p *fuzzPacket) { p.sport = 0x0200 })},                         // local leak RED -> GREEN
		{table: 0, pkt: with(v6(to(swp20, 0, ""), 0x0001_0077), func(p *fuzzPacket) { p.sport = 0x0201 })},                         // GREEN's aggregate
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0100_0001), func(p *fuzzPacket) { p.ttl, p.sport = 1, 0x0200 })},               // hop limit 1 to the gateway
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0001_0010), func(p *fuzzPacket) { p.ttl, p.sport = 1, 0x0200 })},               // hop limit 1
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0001_0010), func(p *fuzzPacket) { p.proto, p.sport = 4, 0x0200 })},             // fragment header: flow label hash
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0001_0010), func(p *fuzzPacket) { p.size, p.sport = 0x8000|2, 0x0200 })},       // encap exactly the MTU
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0001_0010), func(p *fuzzPacket) { p.size, p.sport = 0x8000|3, 0x0200 })},       // one over: dropped
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0xfe80_0001), func(p *fuzzPacket) { p.sport = 0x0200 })},                         // link-local: the kernel's
		{table: 0, pkt: with(v6(to(swp10, 0, ""), 0x0001_0010), func(p *fuzzPacket) { p.sport = 0x0300 })},                         // from fe80::1: dropped
		{table: 0, pkt: v6(to(swp3, vni4001, ""), 0xff0e_0001)},                                                                    // multicast in VXLAN
		{table: 0, pkt: with(v6(to(swp30, 0, ""), 0x0100_0010), func(p *fuzzPacket) { p.sport = 0x0202 })},                         // BLUE to RED
		{table: 0, pkt: with(v6(to(swp3, vni4001, ""), 0x0100_0010), func(p *fuzzPacket) { p.trunc = 90 })},                        // cut in the IPv6 header
		{table: 0, pkt: with(v6(to(swp3, vni4001, ""), 0x0100_0010), func(p *fuzzPacket) { p.muts = []fuzzMutation{{68, 0xff}} })}, // payload length past the frame
		{table: 7, pkt: with(v6(to(swp10, 0, ""), 0), func(p *fuzzPacket) { p.dst = dstRoute })},
		{table: 8, pkt: with(v6(to(swp3, vni4002, ""), 0), func(p *fuzzPacket) { p.dst, p.route = dstRoute, 1 })},
		// Random tables.
		{table: 1, pkt: fuzzPacket{ingress: swp10, dst: dstRoute, ttl: 64, size: 8}},
		{table: 2, pkt: fuzzPacket{ingress: swp3, dst: dstRoute, route: 1, ttl: 64, size: 8}},
		{table: 3, pkt: fuzzPacket{ingress: swp1, vni: vni4002, dst: dstRoute, route: 2, ttl: 64, size: 8}},
		{table: 4, pkt: fuzzPacket{ingress: swp30, dst: hostBlue, ttl: 64, size: 8}},
		{table: 5, pkt: fuzzPacket{ingress: swp20, dst: hostGreen, ttl: 64, size: 8}},
		{table: 6, pkt: fuzzPacket{ingress: swp3, vni: vni4003, dst: dstRoute, route: 3, ttl: 64, size: 8}},
	}
	return s
}
