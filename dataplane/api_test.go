package dataplane_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

var cmpRoutes = []cmp.Option{
	cmp.Comparer(func(x, y netip.Addr) bool { return x == y }),
	cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }),
	cmpopts.SortSlices(func(x, y dataplane.Route) bool {
		return x.Prefix.Addr().Less(y.Prefix.Addr()) || x.Prefix.Addr() == y.Prefix.Addr() && x.Prefix.Bits() < y.Prefix.Bits()
	}),
	cmpopts.EquateEmpty(),
}

func routes(t *testing.T, dp *dataplane.Dataplane, vrf dataplane.VRFID) []dataplane.Route {
	t.Helper()
	rs, err := dp.Routes(vrf)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestRestartKeepsForwarding: a new Open on the same pin path finds the
// tables, groups and neighbours the last run left, and the interfaces keep
// forwarding with the new program.
func TestRestartKeepsForwarding(t *testing.T) {
	l := fixture.New(t)
	before := map[dataplane.VRFID][]dataplane.Route{}
	for vrf := range fixture.Routes() {
		before[vrf] = routes(t, l.DP, vrf)
	}
	if err := l.DP.Close(); err != nil {
		t.Fatal(err)
	}

	dp, err := dataplane.Open(dataplane.Options{PinPath: l.PinPath})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer dp.Close()
	l.DP = dp
	for vrf, want := range before {
		if diff := cmp.Diff(want, routes(t, dp, vrf), cmpRoutes...); diff != "" {
			t.Errorf("vrf %d after restart (-want +got):\n%s", vrf, diff)
		}
	}
	if err := dp.AttachUplink("swp3"); err != nil { // takes over the pinned link
		t.Fatal(err)
	}
	f := fixture.Flow{Src: a("192.168.20.110"), Dst: fixture.HostRed, TTL: 64}
	expect(t, l, l.Swp3.Index, fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, f)),
		want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
			out: fixture.Frame(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, ttl(f, 63))})

	// Groups adopted with their references: replacing a route still works
	// and the group it left is reused, not leaked.
	p := netip.MustParsePrefix("192.168.1.10/32")
	if err := dp.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: border04(fixture.RedVNI)}); err != nil {
		t.Fatal(err)
	}
	hostRed := fixture.Flow{Src: fixture.HostRed, Dst: p.Addr(), TTL: 64}
	expect(t, l, l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, hostRed),
		want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote, out: encapTo(t, l, hostRed, border04(fixture.RedVNI))})

	// The IPv6 tables and hosts too.
	f6 := fixture.Flow{Src: a("2001:db8:20::110"), Dst: fixture.HostRed6, TTL: 64}
	expect(t, l, l.Swp3.Index, fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, f6)),
		want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
			out: fixture.Frame(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, ttl(f6, 63))})
	p6 := netip.MustParsePrefix("2001:db8:1::10/128")
	if err := dp.SetRoute(fixture.RED, dataplane.Route{Prefix: p6, Kind: dataplane.RouteRemote, Remotes: border04(fixture.GreenVNI)}); err != nil {
		t.Fatal(err)
	}
	hostRed6 := fixture.Flow{Src: fixture.HostRed6, Dst: p6.Addr(), TTL: 64}
	expect(t, l, l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, hostRed6),
		want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote, out: encapTo(t, l, hostRed6, border04(fixture.GreenVNI))})
}

// TestGroupsSharedByFamilies: a nexthop group that IPv4 and IPv6 routes
// share stays while either uses it, whichever goes first, and a replaced
// or deleted table of one family leaves the other's routes whole.
func TestGroupsSharedByFamilies(t *testing.T) {
	l := fixture.New(t)
	members := []dataplane.Remote{{VTEP: fixture.Leaf01, VNI: 7777, RouterMAC: fixture.Leaf01MAC}}
	p4, p6 := netip.MustParsePrefix("192.168.77.0/24"), netip.MustParsePrefix("2001:db8:77::/64")
	for _, p := range []netip.Prefix{p4, p6} {
		if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: members}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(dst netip.Addr) {
		t.Helper()
		f := fixture.Flow{Src: fixture.HostRed, Dst: dst, TTL: 64}
		if dst.Is6() {
			f.Src = fixture.HostRed6
		}
		expect(t, l, l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f),
			want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote, out: encapTo(t, l, f, members)})
	}
	if err := l.DP.DeleteRoute(fixture.RED, p4); err != nil {
		t.Fatal(err)
	}
	send(p6.Addr().Next())
	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p4, Kind: dataplane.RouteRemote, Remotes: members}); err != nil {
		t.Fatal(err)
	}
	if err := l.DP.DeleteRoute(fixture.RED, p6); err != nil {
		t.Fatal(err)
	}
	send(p4.Addr().Next())

	// A whole table of IPv6 routes only: RED's IPv4 table is emptied, its
	// group references released, and the IPv6 route keeps the group.
	only6 := []dataplane.Route{{Prefix: p6, Kind: dataplane.RouteRemote, Remotes: members}}
	if err := l.DP.ReplaceTable(fixture.RED, only6); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(only6, routes(t, l.DP, fixture.RED), cmpRoutes...); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	send(p6.Addr().Next())
	expect(t, l, l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: p4.Addr().Next(), TTL: 64}),
		want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoRoute}) // and no route back to the host either
	// And an empty table removes the IPv6 one.
	if err := l.DP.ReplaceTable(fixture.RED, nil); err != nil {
		t.Fatal(err)
	}
	f := fixture.Flow{Src: fixture.HostRed6, Dst: p6.Addr().Next(), TTL: 64}
	expect(t, l, l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f),
		want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoRoute})
}

// TestReplaceTable swaps a VRF's whole table; routes of the old one are gone.
func TestReplaceTable(t *testing.T) {
	l := fixture.New(t)
	only := []dataplane.Route{{Prefix: netip.MustParsePrefix("192.168.1.0/24"), Kind: dataplane.RouteBlackhole}}
	if err := l.DP.ReplaceTable(fixture.RED, only); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(only, routes(t, l.DP, fixture.RED), cmpRoutes...); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	host := func(dst string) []byte {
		return fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a(dst), TTL: 64})
	}
	expect(t, l, l.Swp10.Index, host("192.168.1.10"), want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonBlackhole})
	expect(t, l, l.Swp10.Index, host("192.168.200.10"), want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoRoute})

	// The IPv6 table went with it.
	expect(t, l, l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed6, Dst: a("2001:db8:1::10"), TTL: 64}),
		want{action: dataplane.XDPDrop, vrf: fixture.RED, reason: dataplane.ReasonNoRoute})

	// An invalid route of either family rejects the whole table: the
	// running one stays.
	for _, p := range []string{"10.0.0.1/8", "2001:db8::1/64"} {
		bad := append(slices.Clone(only), dataplane.Route{Prefix: netip.MustParsePrefix("2001:db8:9::/64"), Kind: dataplane.RouteBlackhole},
			dataplane.Route{Prefix: netip.MustParsePrefix(p), Kind: dataplane.RouteBlackhole})
		if err := l.DP.ReplaceTable(fixture.RED, bad); err == nil {
			t.Fatalf("table with bad prefix %s accepted", p)
		}
	}
	if diff := cmp.Diff(only, routes(t, l.DP, fixture.RED), cmpRoutes...); diff != "" {
		t.Errorf("table after a rejected replace (-want +got):\n%s", diff)
	}
}

// TestReplaceTableLeavesRoom: a table bigger than RoutesPerVRF still takes
// routes after it (the trie was sized to the table exactly, and the next
// SetRoute failed with ENOSPC).
func TestReplaceTableLeavesRoom(t *testing.T) {
	netns.Root(t)
	d, err := dataplane.Open(dataplane.Options{PinPath: netns.PinPath(t), RoutesPerVRF: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	route := func(i int) dataplane.Route {
		return dataplane.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), 0}), 24), Kind: dataplane.RouteBlackhole}
	}
	var rs []dataplane.Route
	for i := range 100 {
		rs = append(rs, route(i))
	}
	if err := d.ReplaceTable(1, rs); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 110; i++ {
		if err := d.SetRoute(1, route(i)); err != nil {
			t.Fatalf("route %d after a table of 100: %v", i, err)
		}
	}
}

// TestBadAPIInput: each bad call is refused with an error and changes
// nothing.
func TestBadAPIInput(t *testing.T) {
	l := fixture.New(t)
	mac := fixture.RouterMAC
	p := netip.MustParsePrefix("192.168.50.0/24")
	tooMany := make([]dataplane.Remote, dataplane.MaxECMP+1)
	for i := range tooMany {
		tooMany[i] = dataplane.Remote{VTEP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), VNI: 4001, RouterMAC: mac}
	}
	before := routes(t, l.DP, fixture.RED)
	for name, err := range map[string]error{
		"vrf 0":                  l.DP.SetVRF(dataplane.VRF{ID: 0, VNI: 7, RouterMAC: mac, VTEP: fixture.VTEP}),
		"vrf out of range":       l.DP.SetVRF(dataplane.VRF{ID: dataplane.MaxVRFs, VNI: 7, RouterMAC: mac, VTEP: fixture.VTEP}),
		"vni 0":                  l.DP.SetVRF(dataplane.VRF{ID: 9, VNI: 0, RouterMAC: mac, VTEP: fixture.VTEP}),
		"vni over 24 bits":       l.DP.SetVRF(dataplane.VRF{ID: 9, VNI: 1 << 24, RouterMAC: mac, VTEP: fixture.VTEP}),
		"vni of another vrf":     l.DP.SetVRF(dataplane.VRF{ID: 9, VNI: fixture.RedVNI, RouterMAC: mac, VTEP: fixture.VTEP}),
		"short router mac":       l.DP.SetVRF(dataplane.VRF{ID: 9, VNI: 7, RouterMAC: mac[:4], VTEP: fixture.VTEP}),
		"ipv6 vtep":              l.DP.SetVRF(dataplane.VRF{ID: 9, VNI: 7, RouterMAC: mac, VTEP: a("2001:db8::1")}),
		"ipv4-mapped prefix":     l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("::ffff:192.168.50.0/120"), Kind: dataplane.RouteBlackhole}),
		"ipv6 host bits":         l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("2001:db8:50::1/64"), Kind: dataplane.RouteBlackhole}),
		"ipv6 remote, no member": l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("2001:db8:50::/64"), Kind: dataplane.RouteRemote}),
		"delete missing ipv6":    l.DP.DeleteRoute(fixture.RED, netip.MustParsePrefix("2001:db8:50::/64")),
		"link-local neighbor":    l.DP.SetNeighbor(fixture.RED, a("fe80::20"), dataplane.Neighbor{Ifindex: l.Swp10.Index, MAC: mac, SrcMAC: mac}),
		"multicast neighbor":     l.DP.SetNeighbor(fixture.RED, a("ff02::1"), dataplane.Neighbor{Ifindex: l.Swp10.Index, MAC: mac, SrcMAC: mac}),
		"host bits":              l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("192.168.50.1/24"), Kind: dataplane.RouteBlackhole}),
		"unknown kind":           l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: 99}),
		"remote without member":  l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote}),
		"too many members":       l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: tooMany}),
		"member vni 0":           l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: []dataplane.Remote{{VTEP: fixture.Leaf01, RouterMAC: mac}}}),
		"member without mac":     l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteRemote, Remotes: []dataplane.Remote{{VTEP: fixture.Leaf01, VNI: 4001}}}),
		"local to vrf 0":         l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: p, Kind: dataplane.RouteLocal}),
		"route in vrf 0":         l.DP.SetRoute(0, dataplane.Route{Prefix: p, Kind: dataplane.RouteBlackhole}),
		"delete missing route":   l.DP.DeleteRoute(fixture.RED, p),
		"neighbor without mac":   l.DP.SetNeighbor(fixture.RED, a("192.168.100.20"), dataplane.Neighbor{Ifindex: l.Swp10.Index, SrcMAC: mac}),
		"neighbor bad ifindex":   l.DP.SetNeighbor(fixture.RED, a("192.168.100.20"), dataplane.Neighbor{MAC: mac, SrcMAC: mac}),
		"delete unknown vrf":     l.DP.DeleteVRF(9),
		"access in vrf 0":        l.DP.AttachAccess("swp10", 0),
		"attach missing iface":   l.DP.AttachUplink("nosuch0"),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if diff := cmp.Diff(before, routes(t, l.DP, fixture.RED), cmpRoutes...); diff != "" {
		t.Errorf("RED changed by refused calls (-want +got):\n%s", diff)
	}
}

// TestFullTables: a full VRF table or an exhausted group space is an
// error for the route that did not fit, and frees up again.
func TestFullTables(t *testing.T) {
	netns.Root(t)
	dp, err := dataplane.Open(dataplane.Options{PinPath: netns.PinPath(t), RoutesPerVRF: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	for i := range 4 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
		if err := dp.SetRoute(1, dataplane.Route{Prefix: p, Kind: dataplane.RouteBlackhole}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dp.SetRoute(1, dataplane.Route{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Kind: dataplane.RouteBlackhole}); err == nil {
		t.Error("route beyond the table's capacity accepted")
	}
	if n := len(routes(t, dp, 1)); n != 4 {
		t.Errorf("%d routes after the overflow, want 4", n)
	}

	// Every route its own group, until the groups run out.
	big, err := dataplane.Open(dataplane.Options{PinPath: netns.PinPath(t), RoutesPerVRF: dataplane.MaxNHGs + 10})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	route := func(i int) dataplane.Route {
		vtep := netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		return dataplane.Route{Prefix: netip.PrefixFrom(vtep, 32), Kind: dataplane.RouteRemote,
			Remotes: []dataplane.Remote{{VTEP: vtep, VNI: 4001, RouterMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}}}
	}
	rs := make([]dataplane.Route, dataplane.MaxNHGs-1) // group id 0 is never used
	for i := range rs {
		rs[i] = route(i)
	}
	if err := big.ReplaceTable(1, rs); err != nil {
		t.Fatal(err)
	}
	if err := big.SetRoute(1, route(len(rs))); !errors.Is(err, dataplane.ErrNoGroupSpace) {
		t.Errorf("route past the last group: %v, want %v", err, dataplane.ErrNoGroupSpace)
	}
	if err := big.DeleteRoute(1, rs[0].Prefix); err != nil {
		t.Fatal(err)
	}
	if err := big.SetRoute(1, route(len(rs))); err != nil {
		t.Errorf("route after a group was freed: %v", err)
	}
}

// TestSetRouteUnderACoveringRoute: adding a prefix that a shorter route
// covers must not release the shorter route's group (found by the fuzzer:
// the group was freed, reused by GREEN, and RED's default route then
// encapsulated with GREEN's VNI).
func TestSetRouteUnderACoveringRoute(t *testing.T) {
	l := fixture.New(t)
	for _, vrf := range []dataplane.VRFID{fixture.RED, fixture.GREEN, fixture.BLUE} {
		if err := l.DP.ReplaceTable(vrf, nil); err != nil {
			t.Fatal(err)
		}
	}
	def := dataplane.Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: fixture.Leaf01, VNI: fixture.RedVNI, RouterMAC: fixture.Leaf01MAC}}}
	for _, r := range []dataplane.Route{
		def,
		{Prefix: netip.MustParsePrefix("192.168.38.0/24"), Kind: dataplane.RouteBlackhole},
	} {
		if err := l.DP.SetRoute(fixture.RED, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.DP.SetRoute(fixture.GREEN, dataplane.Route{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: fixture.Leaf02, VNI: fixture.GreenVNI, RouterMAC: fixture.Leaf02MAC}}}); err != nil {
		t.Fatal(err)
	}
	f := fixture.Flow{Src: fixture.HostRed, Dst: a("8.8.8.8"), SrcPort: 1, DstPort: 2, TTL: 64}
	expect(t, l, l.Swp10.Index, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f),
		want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdRemote, out: encapTo(t, l, f, def.Remotes)})

	// Deleting a prefix that is not there, under a covering route, is an
	// error and leaves the covering route alone.
	if err := l.DP.DeleteRoute(fixture.RED, netip.MustParsePrefix("192.168.39.0/24")); err == nil {
		t.Error("deleted a route that does not exist")
	}
	if rs := routes(t, l.DP, fixture.RED); len(rs) != 2 {
		t.Errorf("RED has %d routes, want 2", len(rs))
	}
}

// TestAttachFollowsARecreatedPort: a port deleted and created anew (as a
// link flap of some drivers, or an operator, does) has a new index. The
// same attach the agent makes for a port as it was finds that: the data
// path sees the new index as the uplink and forwards from it, and attaching
// again changes nothing.
func TestAttachFollowsARecreatedPort(t *testing.T) {
	l := fixture.New(t)
	old := l.Swp3.Index
	netns.IP(t, "link", "del", "swp3")
	netns.Veth(t, netns.Dev{Name: "swp3", MTU: fixture.UnderlayMTU}, netns.Dev{Name: "dci", MAC: fixture.DCIMAC, MTU: fixture.UnderlayMTU})
	netns.Sysctl(t, "net.ipv6.conf.dci.disable_ipv6", "1")
	for _, args := range [][]string{
		{"link", "set", "swp3", "up"},
		{"link", "set", "dci", "up"},
		{"addr", "add", fixture.DCISelf.String(), "dev", "swp3"},
		{"neigh", "replace", fixture.DCIPeer.String(), "lladdr", fixture.DCIMAC.String(), "dev", "swp3", "nud", "permanent"},
		{"route", "add", "10.10.20.0/24", "via", fixture.DCIPeer.String(), "dev", "swp3"},
	} {
		netns.IP(t, args...)
	}
	nif, err := net.InterfaceByName("swp3")
	if err != nil {
		t.Fatal(err)
	}
	if nif.Index == old {
		t.Fatalf("swp3 created anew kept index %d: the test shows nothing", old)
	}
	l.Swp3 = nif

	f := fixture.Flow{Src: a("192.168.20.110"), Dst: fixture.HostRed, TTL: 64}
	frame := fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, f))
	if action, _ := fixture.Run(t, l.DP.Program(), nif.Index, frame); action != dataplane.XDPPass {
		t.Fatalf("before the attach, the new swp3's frame got action %d, want pass: not a port of ours yet", action)
	}
	var progID uint32
	for i := range 2 {
		if err := l.DP.AttachUplink("swp3"); err != nil {
			t.Fatalf("attach %d: %v", i+1, err)
		}
		expect(t, l, nif.Index, frame, want{action: dataplane.XDPRedirect, vrf: fixture.RED, reason: dataplane.ReasonFwdLocal,
			out: fixture.Frame(t, fixture.HostRedMAC, l.Swp10.HardwareAddr, ttl(f, 63))})
		link, err := netlink.LinkByName("swp3")
		if err != nil {
			t.Fatal(err)
		}
		x := link.Attrs().Xdp
		if x == nil || !x.Attached {
			t.Fatalf("attach %d: no XDP program on the new swp3", i+1)
		}
		if i == 1 && x.ProgId != progID {
			t.Errorf("attaching again replaced the program (id %d, was %d)", x.ProgId, progID)
		}
		progID = x.ProgId
	}
}

// TestClosedDataplane: a change asked after Close is refused with
// ErrClosed (the mmapped maps are unmapped by then: writing them would
// crash the agent), and a second Close is harmless.
func TestClosedDataplane(t *testing.T) {
	netns.Root(t)
	d, err := dataplane.Open(dataplane.Options{PinPath: netns.PinPath(t), RoutesPerVRF: 64})
	if err != nil {
		t.Fatal(err)
	}
	vtep := netip.MustParseAddr("10.10.10.10")
	vrf := dataplane.VRF{ID: 1, VNI: 4001, RouterMAC: fixture.RouterMAC, VTEP: vtep}
	if err := d.SetVRF(vrf); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	hop := dataplane.UnderlayHop{Members: []dataplane.UnderlayMember{{Ifindex: 1, SrcMAC: otherMAC, DstMAC: otherMAC, MTU: 1500}}}
	route := dataplane.Route{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Kind: dataplane.RouteBlackhole}
	for name, err := range map[string]error{
		"SetVRF":            d.SetVRF(vrf),
		"DeleteVRF":         d.DeleteVRF(1),
		"AddVTEP":           d.AddVTEP(vtep),
		"DeleteVTEP":        d.DeleteVTEP(vtep),
		"SetRoute":          d.SetRoute(1, route),
		"DeleteRoute":       d.DeleteRoute(1, route.Prefix),
		"ReplaceTable":      d.ReplaceTable(1, []dataplane.Route{route}),
		"SetUnderlayHop":    d.SetUnderlayHop(vtep, hop),
		"DeleteUnderlayHop": d.DeleteUnderlayHop(vtep),
	} {
		if !errors.Is(err, dataplane.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, err := d.UnderlayHops(); !errors.Is(err, dataplane.ErrClosed) {
		t.Errorf("UnderlayHops after Close: %v, want ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
