package dataplane_test

import (
	"bytes"
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// The underlay next hops the agent resolves (dataplane/underlay.go): with
// them the program asks the kernel nothing; without them it asks, counted.

// spineHop and dciHop are what the kernel has towards leaf01/02 and
// borderleaf04 in the fixture.
func spineHop(l *fixture.Leaf) dataplane.UnderlayMember {
	return dataplane.UnderlayMember{Ifindex: l.Swp1.Index, SrcMAC: l.Swp1.HardwareAddr, DstMAC: fixture.SpineMAC, MTU: fixture.UnderlayMTU}
}

func dciHop(l *fixture.Leaf) dataplane.UnderlayMember {
	return dataplane.UnderlayMember{Ifindex: l.Swp3.Index, SrcMAC: l.Swp3.HardwareAddr, DstMAC: fixture.DCIMAC, MTU: fixture.UnderlayMTU}
}

// live keeps the hops a test sets in use for the test.
func live(t *testing.T, l *fixture.Leaf) {
	t.Helper()
	if err := l.DP.RenewUnderlayHops(time.Hour); err != nil {
		t.Fatal(err)
	}
}

func fallbacks(t *testing.T, l *fixture.Leaf) uint64 {
	t.Helper()
	n, err := l.DP.UnderlayFallbacks()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUnderlayHopsMatchKernel: a next hop resolved as the kernel has it
// sends every frame out byte for byte as bpf_fib_lookup's answer does, on
// every encapsulating path, and only a VTEP without one is asked of the
// kernel.
func TestUnderlayHopsMatchKernel(t *testing.T) {
	l := fixture.New(t)
	frames := map[string]struct {
		ingress int
		frame   []byte
	}{}
	for sport := uint16(1); sport <= 32; sport++ {
		f := fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), SrcPort: sport, DstPort: 80, TTL: 64, DF: true, Payload: []byte("x")}
		frames["access-encap "+f.Dst.String()+string(rune(sport))] = struct {
			ingress int
			frame   []byte
		}{l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f)}
		dci := fixture.Flow{Src: a("192.168.20.110"), Dst: a("192.168.2.10"), SrcPort: sport, DstPort: 53, TTL: 64, Payload: []byte("y")}
		frames["dci-leak "+string(rune(sport))] = struct {
			ingress int
			frame   []byte
		}{l.Swp3.Index, fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, dci))}
		toSite2 := fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.20.77"), SrcPort: sport, DstPort: 80, TTL: 64}
		frames["to-site2 "+string(rune(sport))] = struct {
			ingress int
			frame   []byte
		}{l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, toSite2)}
	}
	run := func() map[string][]byte {
		out := map[string][]byte{}
		for name, f := range frames {
			action, o := fixture.Run(t, l.DP.Program(), f.ingress, f.frame)
			if action != dataplane.XDPRedirect && action != dataplane.XDPTx {
				t.Fatalf("%s: action %d", name, action)
			}
			out[name] = o
		}
		return out
	}

	before := fallbacks(t, l)
	kernel := run()
	if n := fallbacks(t, l) - before; n != uint64(len(frames)) {
		t.Errorf("no next hops resolved: %d fallbacks for %d frames", n, len(frames))
	}
	for vtep, m := range map[netip.Addr]dataplane.UnderlayMember{fixture.Leaf01: spineHop(l), fixture.Leaf02: spineHop(l), fixture.Border04: dciHop(l)} {
		if err := l.DP.SetUnderlayHop(vtep, dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{m}}); err != nil {
			t.Fatal(err)
		}
	}
	live(t, l)
	before = fallbacks(t, l)
	cached := run()
	if n := fallbacks(t, l) - before; n != 0 {
		t.Errorf("every next hop resolved: %d fallbacks, want 0", n)
	}
	if diff := cmp.Diff(kernel, cached); diff != "" {
		t.Errorf("frames with resolved next hops differ from the kernel's (-kernel +resolved):\n%s", diff)
	}

	// Taken out again: back to the kernel.
	if err := l.DP.DeleteUnderlayHop(fixture.Border04); err != nil {
		t.Fatal(err)
	}
	if err := l.DP.DeleteUnderlayHop(fixture.Border04); err != nil {
		t.Errorf("deleting an absent hop: %v", err)
	}
	before = fallbacks(t, l)
	if diff := cmp.Diff(kernel, run()); diff != "" {
		t.Errorf("frames after a delete (-kernel +got):\n%s", diff)
	}
	if n := fallbacks(t, l) - before; n != 32 {
		t.Errorf("borderleaf04's hop deleted: %d fallbacks, want its 32 frames", n)
	}
}

// TestUnderlayHopECMP: a VTEP with two underlay paths spreads flows over
// both, independently of the overlay's choice of VTEP, keeps each flow on
// its path, and agrees with the reference model frame by frame.
func TestUnderlayHopECMP(t *testing.T) {
	l := fixture.New(t)
	two := dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{spineHop(l), dciHop(l)}}
	for _, vtep := range []netip.Addr{fixture.Leaf01, fixture.Leaf02} {
		if err := l.DP.SetUnderlayHop(vtep, two); err != nil {
			t.Fatal(err)
		}
	}
	live(t, l)
	type choice struct {
		vtep   netip.Addr
		egress int
	}
	const flows = 2000
	share := map[choice]int{}
	first := map[uint16]choice{}
	m := l.Model()
	for round := range 2 {
		for sport := uint16(1); sport <= flows; sport++ {
			f := fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), SrcPort: sport, DstPort: 443, TTL: 64}
			frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f)
			action, out := fixture.Run(t, l.DP.Program(), l.Swp10.Index, frame)
			if action != dataplane.XDPRedirect {
				t.Fatalf("flow %d: action %d", sport, action)
			}
			var c choice
			c.vtep = netip.AddrFrom4([4]byte(out[30:34]))
			switch {
			case bytes.Equal(out[0:6], fixture.SpineMAC) && bytes.Equal(out[6:12], l.Swp1.HardwareAddr):
				c.egress = l.Swp1.Index
			case bytes.Equal(out[0:6], fixture.DCIMAC) && bytes.Equal(out[6:12], l.Swp3.HardwareAddr):
				c.egress = l.Swp3.Index
			default:
				t.Fatalf("flow %d: MACs %v > %v are neither path's", sport, net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]))
			}
			if round == 0 {
				first[sport] = c
				share[c]++
				if sport <= 200 {
					if got := m.Forward(l.Swp10.Index, frame); got.Ifindex != c.egress || !bytes.Equal(got.Out, out) {
						t.Fatalf("flow %d: model sends it out %d, program out %d:\n%s", sport, got.Ifindex, c.egress, cmp.Diff(got.Out, out))
					}
				}
			} else if first[sport] != c {
				t.Fatalf("flow %d moved from %v to %v with nothing changed", sport, first[sport], c)
			}
		}
	}
	// Four combinations, each a quarter if the choices do not correlate.
	for _, vtep := range []netip.Addr{fixture.Leaf01, fixture.Leaf02} {
		for _, egress := range []int{l.Swp1.Index, l.Swp3.Index} {
			if n := share[choice{vtep, egress}]; n < flows/4*7/10 {
				t.Errorf("%v out of %d: %d of %d flows, want at least 70%% of a quarter (%v)", vtep, egress, n, flows, share)
			}
		}
	}
}

// TestUnderlayHopMTU: the path's MTU holds for the encapsulated size, as
// the kernel's would: too big with DF set is answered with the inner
// packet's limit, without DF dropped.
func TestUnderlayHopMTU(t *testing.T) {
	l := fixture.New(t)
	small := spineHop(l)
	small.MTU = 1400
	for _, vtep := range []netip.Addr{fixture.Leaf01, fixture.Leaf02} {
		if err := l.DP.SetUnderlayHop(vtep, dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{small}}); err != nil {
			t.Fatal(err)
		}
	}
	live(t, l)
	// 1350 bytes of inner IPv4 fit 1400 with VXLAN's 50; one more does not.
	fits := fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), SrcPort: 1, DstPort: 2, TTL: 64, DF: true, Payload: make([]byte, 1350-28)}
	big := fits
	big.Payload = make([]byte, 1351-28)
	frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fits)
	expect(t, l, l.Swp10.Index, frame, want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote})
	frame = fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, big)
	expect(t, l, l.Swp10.Index, frame, want{action: dataplane.XDPTx, vrf: fixture.RED, reason: dataplane.ReasonMTU,
		out: answerHost(t, l, fixture.RedGateway, fixture.ICMP{Type: 3, Code: 4, MTU: 1350}, frame)})
	big.DF = false
	frame = fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, big)
	expect(t, l, l.Swp10.Index, frame, want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonMTU})
}

// TestUnderlayHopBadInput: what the program cannot use is refused, and
// refusing it keeps what was there.
func TestUnderlayHopBadInput(t *testing.T) {
	l := fixture.New(t)
	good := spineHop(l)
	if err := l.DP.SetUnderlayHop(fixture.Leaf01, dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{good}}); err != nil {
		t.Fatal(err)
	}
	with := func(f func(*dataplane.UnderlayMember)) dataplane.UnderlayHop {
		m := good
		f(&m)
		return dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{m}}
	}
	for name, tc := range map[string]struct {
		vtep netip.Addr
		hop  dataplane.UnderlayHop
	}{
		"no members":   {fixture.Leaf01, dataplane.UnderlayHop{}},
		"nine members": {fixture.Leaf01, dataplane.UnderlayHop{Members: slices.Repeat([]dataplane.UnderlayMember{good}, 9)}},
		"ifindex 0":    {fixture.Leaf01, with(func(m *dataplane.UnderlayMember) { m.Ifindex = 0 })},
		"mtu 0":        {fixture.Leaf01, with(func(m *dataplane.UnderlayMember) { m.MTU = 0 })},
		"mtu 65536":    {fixture.Leaf01, with(func(m *dataplane.UnderlayMember) { m.MTU = 65536 })},
		"short mac":    {fixture.Leaf01, with(func(m *dataplane.UnderlayMember) { m.DstMAC = m.DstMAC[:5] })},
		"no src mac":   {fixture.Leaf01, with(func(m *dataplane.UnderlayMember) { m.SrcMAC = nil })},
		"ipv6 vtep":    {a("2001:db8::1"), dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{good}}},
		"no vtep":      {netip.Addr{}, dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{good}}},
	} {
		if err := l.DP.SetUnderlayHop(tc.vtep, tc.hop); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	hops, err := l.DP.UnderlayHops()
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]dataplane.UnderlayHop{fixture.Leaf01: {Members: []dataplane.UnderlayMember{good}}}
	if len(hops) != 1 || !hops[fixture.Leaf01].Equal(want[fixture.Leaf01]) {
		t.Errorf("hops after refused updates = %v, want %v", hops, want)
	}
}

// TestRemoteVTEPs: the VTEPs worth resolving are the ones routes name, and
// a change of that set is signalled.
func TestRemoteVTEPs(t *testing.T) {
	l := fixture.New(t)
	want := []netip.Addr{fixture.Leaf01, fixture.Leaf02, fixture.Border04, fixture.Unresolved, fixture.Unrouted}
	slices.SortFunc(want, netip.Addr.Compare)
	if got := l.DP.RemoteVTEPs(); !slices.Equal(got, want) {
		t.Fatalf("RemoteVTEPs = %v, want %v", got, want)
	}
	drain := func() {
		select {
		case <-l.DP.RemoteVTEPsChanged():
		default:
		}
	}
	drain()
	// Another route over the same VTEPs changes nothing.
	if err := l.DP.SetRoute(fixture.GREEN, dataplane.Route{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Kind: dataplane.RouteRemote, Remotes: leafs(fixture.GreenVNI)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.DP.RemoteVTEPsChanged():
		t.Errorf("signalled with the same VTEPs")
	default:
	}
	// The only route to Unrouted goes: so does the VTEP.
	if err := l.DP.DeleteRoute(fixture.RED, netip.MustParsePrefix("192.168.98.0/24")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.DP.RemoteVTEPsChanged():
	default:
		t.Errorf("not signalled when a VTEP went")
	}
	want = slices.DeleteFunc(want, func(a netip.Addr) bool { return a == fixture.Unrouted })
	if got := l.DP.RemoteVTEPs(); !slices.Equal(got, want) {
		t.Errorf("RemoteVTEPs = %v, want %v", got, want)
	}
}

// TestUnderlayHopsGoStale: next hops not renewed in time are not used
// (whoever kept them in step with the kernel is gone): packets ask the
// kernel again. Renewing for 0 stops their use at once.
func TestUnderlayHopsGoStale(t *testing.T) {
	l := fixture.New(t)
	// Paths the kernel does not have: where a frame goes shows whether
	// they were used.
	other := dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{dciHop(l)}}
	for _, vtep := range []netip.Addr{fixture.Leaf01, fixture.Leaf02} {
		if err := l.DP.SetUnderlayHop(vtep, other); err != nil {
			t.Fatal(err)
		}
	}
	frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC,
		fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.1.10"), SrcPort: 7, DstPort: 80, TTL: 64})
	sentTo := func() net.HardwareAddr {
		_, out := fixture.Run(t, l.DP.Program(), l.Swp10.Index, frame)
		return out[0:6]
	}
	isLive := func() bool {
		ok, err := l.DP.UnderlayHopsLive()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if got := sentTo(); !bytes.Equal(got, fixture.SpineMAC) || isLive() {
		t.Fatalf("never renewed: sent to %v (live %v), want the kernel's next hop", got, isLive())
	}

	const valid = 300 * time.Millisecond
	renewed := time.Now()
	if err := l.DP.RenewUnderlayHops(valid); err != nil {
		t.Fatal(err)
	}
	got := sentTo()
	if time.Since(renewed) > valid/2 {
		t.Skip("the machine is too slow to check them while they are live")
	}
	if !bytes.Equal(got, fixture.DCIMAC) || !isLive() {
		t.Fatalf("renewed: sent to %v (live %v), want the resolved next hop %v", got, isLive(), fixture.DCIMAC)
	}
	time.Sleep(time.Until(renewed.Add(valid + 100*time.Millisecond)))
	before := fallbacks(t, l)
	if got := sentTo(); !bytes.Equal(got, fixture.SpineMAC) || isLive() {
		t.Errorf("expired: sent to %v (live %v), want the kernel's next hop %v", got, isLive(), fixture.SpineMAC)
	}
	if n := fallbacks(t, l) - before; n != 1 {
		t.Errorf("%d fallbacks, want 1", n)
	}

	live(t, l)
	if got := sentTo(); !bytes.Equal(got, fixture.DCIMAC) {
		t.Errorf("renewed again: sent to %v, want %v", got, fixture.DCIMAC)
	}
	if err := l.DP.RenewUnderlayHops(0); err != nil {
		t.Fatal(err)
	}
	if got := sentTo(); !bytes.Equal(got, fixture.SpineMAC) || isLive() {
		t.Errorf("renewed for 0: sent to %v (live %v), want the kernel's next hop", got, isLive())
	}
}

// TestUnderlayHopsSharingAPosition: two VTEPs whose positions in the index
// collide are both resolved without asking the kernel (the second from the
// hash), each to its own paths; when the first goes, the second moves into
// the position and is still resolved.
func TestUnderlayHopsSharingAPosition(t *testing.T) {
	l := fixture.New(t)
	first := fixture.Leaf01
	var second netip.Addr
	for i := 1; i < 1<<16 && !second.IsValid(); i++ {
		c := netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)})
		if dataplane.UnderlayPos(c) == dataplane.UnderlayPos(first) {
			second = c
		}
	}
	if !second.IsValid() {
		t.Fatal("no VTEP found at leaf01's position")
	}
	routes := map[netip.Addr]netip.Prefix{first: netip.MustParsePrefix("192.168.96.0/24"), second: netip.MustParsePrefix("192.168.97.0/24")}
	for vtep, p := range routes {
		if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote,
			Remotes: []dataplane.Remote{{VTEP: vtep, VNI: fixture.GreenVNI, RouterMAC: fixture.Leaf01MAC}}}); err != nil {
			t.Fatal(err)
		}
	}
	hops := map[netip.Addr]dataplane.UnderlayMember{first: spineHop(l), second: dciHop(l)}
	for _, vtep := range []netip.Addr{first, second} { // second finds the position taken
		if err := l.DP.SetUnderlayHop(vtep, dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{hops[vtep]}}); err != nil {
			t.Fatal(err)
		}
	}
	live(t, l)
	// sentTo is the next hop a frame to vtep's prefix leaves for.
	sentTo := func(vtep netip.Addr) net.HardwareAddr {
		t.Helper()
		f := fixture.Flow{Src: fixture.HostRed, Dst: routes[vtep].Addr().Next(), SrcPort: 7, DstPort: 80, TTL: 64}
		action, out := fixture.Run(t, l.DP.Program(), l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f))
		if action != dataplane.XDPRedirect {
			t.Fatalf("frame to %v: action %d", vtep, action)
		}
		return out[0:6]
	}
	before := fallbacks(t, l)
	for vtep, m := range hops {
		if got := sentTo(vtep); !bytes.Equal(got, m.DstMAC) {
			t.Errorf("%v: sent to %v, want its own next hop %v", vtep, got, m.DstMAC)
		}
	}
	if n := fallbacks(t, l) - before; n != 0 {
		t.Errorf("both resolved: %d fallbacks, want 0", n)
	}
	got, err := l.DP.UnderlayHops()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[second].Equal(dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{hops[second]}}) {
		t.Errorf("UnderlayHops = %v, want both", got)
	}

	if err := l.DP.DeleteUnderlayHop(first); err != nil {
		t.Fatal(err)
	}
	before = fallbacks(t, l)
	if got := sentTo(second); !bytes.Equal(got, hops[second].DstMAC) {
		t.Errorf("after the first went: sent to %v, want %v", got, hops[second].DstMAC)
	}
	if n := fallbacks(t, l) - before; n != 0 {
		t.Errorf("after the first went: %d fallbacks, want 0", n)
	}
	// The first comes back: the position is the second's now, the first is
	// found in the hash.
	if err := l.DP.SetUnderlayHop(first, dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{hops[first]}}); err != nil {
		t.Fatal(err)
	}
	for vtep, m := range hops {
		if got := sentTo(vtep); !bytes.Equal(got, m.DstMAC) {
			t.Errorf("first back: %v sent to %v, want %v", vtep, got, m.DstMAC)
		}
	}
	if n := fallbacks(t, l) - before; n != 0 {
		t.Errorf("first back: %d fallbacks, want 0", n)
	}
}

// TestUnderlayHopChurn: a VTEP's paths changed many more times than there
// are slots (each change takes a fresh slot; freed ones come back after a
// grace period): every frame leaves by the paths last set.
func TestUnderlayHopChurn(t *testing.T) {
	l := fixture.New(t)
	live(t, l)
	frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC,
		fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.2.10"), SrcPort: 7, DstPort: 80, TTL: 64})
	hops := []dataplane.UnderlayMember{spineHop(l), dciHop(l)}
	for i := range 2*dataplane.UnderlaySlots + 3 {
		m := hops[i%2]
		if err := l.DP.SetUnderlayHop(fixture.Leaf01, dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{m}}); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if i%997 != 0 && i < 2*dataplane.UnderlaySlots {
			continue
		}
		_, out := fixture.Run(t, l.DP.Program(), l.Swp10.Index, frame)
		if !bytes.Equal(out[0:6], m.DstMAC) {
			t.Fatalf("change %d: sent to %v, want %v", i, net.HardwareAddr(out[0:6]), m.DstMAC)
		}
	}
}

// TestUnderlayHopsFull: as many VTEPs as the data path holds are taken,
// one more is refused with an error, and the ones held stay.
func TestUnderlayHopsFull(t *testing.T) {
	l := fixture.New(t)
	h := dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{spineHop(l)}}
	vtep := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 98, byte(i >> 8), byte(i)}) }
	for i := range dataplane.MaxUnderlayHops {
		if err := l.DP.SetUnderlayHop(vtep(i), h); err != nil {
			t.Fatalf("VTEP %d of %d: %v", i+1, dataplane.MaxUnderlayHops, err)
		}
	}
	if err := l.DP.SetUnderlayHop(vtep(dataplane.MaxUnderlayHops), h); err == nil {
		t.Errorf("one VTEP more than %d accepted", dataplane.MaxUnderlayHops)
	}
	// A held one still changes.
	if err := l.DP.SetUnderlayHop(vtep(7), dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{dciHop(l)}}); err != nil {
		t.Errorf("changing a held VTEP when full: %v", err)
	}
	got, err := l.DP.UnderlayHops()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != dataplane.MaxUnderlayHops {
		t.Errorf("%d VTEPs held, want %d", len(got), dataplane.MaxUnderlayHops)
	}
}

// TestUnderlayHopResilient: when one of a VTEP's three underlay paths goes,
// only the flows it carried move (the rest keep their path: no reordering
// for them), and its flows spread over the two left; when it comes back,
// every flow is where it was. The model agrees frame by frame.
func TestUnderlayHopResilient(t *testing.T) {
	l := fixture.New(t)
	paths := []dataplane.UnderlayMember{spineHop(l), dciHop(l), spineHop(l)}
	paths[2].DstMAC = mustMAC("02:00:00:00:01:09") // another spine behind swp1
	set := func(ms ...dataplane.UnderlayMember) {
		t.Helper()
		if err := l.DP.SetUnderlayHop(fixture.Leaf01, dataplane.UnderlayHop{Members: ms}); err != nil {
			t.Fatal(err)
		}
	}
	live(t, l)
	// Where each of 1500 flows to leaf01 alone leaves: its next hop's MAC.
	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("192.168.96.0/24"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: fixture.Leaf01, VNI: fixture.RedVNI, RouterMAC: fixture.Leaf01MAC}}}); err != nil {
		t.Fatal(err)
	}
	const flows = 1500
	where := func() map[uint16]string {
		t.Helper()
		m := l.Model()
		out := map[uint16]string{}
		for sport := uint16(1); sport <= flows; sport++ {
			frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC,
				fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.96.7"), SrcPort: sport, DstPort: 443, TTL: 64})
			_, o := fixture.Run(t, l.DP.Program(), l.Swp10.Index, frame)
			if sport <= 100 {
				if got := m.Forward(l.Swp10.Index, frame); !bytes.Equal(got.Out, o) {
					t.Fatalf("flow %d: the model disagrees:\n%s", sport, cmp.Diff(got.Out, o))
				}
			}
			out[sport] = net.HardwareAddr(o[0:6]).String()
		}
		return out
	}
	set(paths...)
	before := where()
	share := map[string]int{}
	for _, mac := range before {
		share[mac]++
	}
	for _, p := range paths {
		if n := share[p.DstMAC.String()]; n < flows/3*6/10 {
			t.Errorf("path to %v: %d of %d flows, want at least 60%% of a third (%v)", p.DstMAC, n, flows, share)
		}
	}
	gone := paths[1].DstMAC.String()
	set(paths[0], paths[2])
	after := where()
	moved := 0
	for sport, mac := range before {
		switch {
		case mac == gone && after[sport] == gone:
			t.Fatalf("flow %d still on the path that went", sport)
		case mac == gone:
			moved++
		case after[sport] != mac:
			t.Errorf("flow %d moved from %s to %s, though its path stayed", sport, mac, after[sport])
		}
	}
	if moved != share[gone] {
		t.Errorf("%d flows moved, want the %d of the path that went", moved, share[gone])
	}
	set(paths...)
	if back := where(); !maps.Equal(back, before) {
		t.Error("the path came back: flows are not where they were")
	}
}
