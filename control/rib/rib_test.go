package rib

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/xleaf/xleaf/dataplane"
)

// fakeDP records the data path's tables; a unit test of the RIB side only
// (the real data path is proven in dataplane/ and test/).
type fakeDP struct {
	tables  map[dataplane.VRFID]map[netip.Prefix]dataplane.Route
	calls   int
	sets    map[netip.Prefix]int
	deletes map[netip.Prefix]int
}

func newFakeDP() *fakeDP {
	return &fakeDP{tables: map[dataplane.VRFID]map[netip.Prefix]dataplane.Route{}, sets: map[netip.Prefix]int{}, deletes: map[netip.Prefix]int{}}
}

func (f *fakeDP) SetRoute(vrf dataplane.VRFID, r dataplane.Route) error {
	f.calls++
	f.sets[r.Prefix]++
	if f.tables[vrf] == nil {
		f.tables[vrf] = map[netip.Prefix]dataplane.Route{}
	}
	f.tables[vrf][r.Prefix] = r
	return nil
}

func (f *fakeDP) DeleteRoute(vrf dataplane.VRFID, p netip.Prefix) error {
	f.calls++
	f.deletes[p]++
	delete(f.tables[vrf], p)
	return nil
}

var (
	pfx    = netip.MustParsePrefix
	addr   = netip.MustParseAddr
	rmac1  = net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x01}
	rmac2  = net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x02}
	rmac9  = net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x09}
	rmacBL = net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x06}
	cmpDP  = []cmp.Option{cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmpopts.EquateEmpty()}
)

// borderleaf01's VRFs, as the guide configures them.
func guideVRFs() []VRF {
	imports := []RT{{ASN: 65210, Value: 5001}, {ASN: 65210, Value: 5002}, {Any: true, Value: 4001}, {Any: true, Value: 4002}}
	return []VRF{
		{Name: "RED", ID: 1, VNI: 4001, ASN: 65110, Imports: imports,
			Aggregates: []netip.Prefix{pfx("192.168.2.0/24"), pfx("192.168.20.0/24")}},
		{Name: "GREEN", ID: 2, VNI: 4002, ASN: 65110, Imports: imports,
			Aggregates: []netip.Prefix{pfx("192.168.1.0/24"), pfx("192.168.10.0/24")}},
		{Name: "BLUE", ID: 3, VNI: 4003, ASN: 65110}, // auto: ANY:4003
	}
}

// t5 is a Type-5 route from a site-1 leaf (via the spine) or from
// borderleaf04 (over the DCI).
func t5(peer, prefix, vtep string, vni uint32, rmac net.HardwareAddr, rt RT, asPath ...uint32) *Path {
	return &Path{Prefix: pfx(prefix), Attrs: &Attrs{Peer: peer, RD: vtep + ":" + itoa(vni), VTEP: addr(vtep), VNI: vni,
		RouterMAC: rmac, RTs: []RT{rt}, ASPath: asPath}}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func remote(vtep string, vni uint32, rmac net.HardwareAddr) dataplane.Remote {
	return dataplane.Remote{VTEP: addr(vtep), VNI: vni, RouterMAC: rmac}
}

// guideRIB is borderleaf01's RIB holding the guide's routes, and the
// data path it programs.
func guideRIB() (*fakeDP, *RIB) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	for _, p := range guidePaths() {
		r.Update(p)
	}
	return dp, r
}

// guidePaths are the routes borderleaf01 receives in the guide.
func guidePaths() []*Path {
	red1, green1 := RT{ASN: 65101, Value: 4001}, RT{ASN: 65101, Value: 4002}
	red2, green2 := RT{ASN: 65102, Value: 4001}, RT{ASN: 65102, Value: 4002}
	return []*Path{
		t5("spine", "192.168.1.0/24", "10.10.10.1", 4001, rmac1, red1, 65199, 65101),
		t5("spine", "192.168.1.0/24", "10.10.10.2", 4001, rmac2, red2, 65199, 65102),
		t5("spine", "192.168.1.10/32", "10.10.10.1", 4001, rmac1, red1, 65199, 65101),
		t5("spine", "192.168.1.10/32", "10.10.10.2", 4001, rmac2, red2, 65199, 65102),
		t5("spine", "192.168.2.0/24", "10.10.10.1", 4002, rmac1, green1, 65199, 65101),
		t5("spine", "192.168.2.0/24", "10.10.10.2", 4002, rmac2, green2, 65199, 65102),
		t5("spine", "192.168.2.10/32", "10.10.10.1", 4002, rmac1, green1, 65199, 65101),
		t5("spine", "192.168.2.10/32", "10.10.10.2", 4002, rmac2, green2, 65199, 65102),
		t5("dci", "192.168.10.0/24", "10.10.20.11", 5002, rmac9, RT{ASN: 65210, Value: 5002}, 65210),
		t5("dci", "192.168.20.0/24", "10.10.20.11", 5001, rmac9, RT{ASN: 65210, Value: 5001}, 65210),
	}
}

// TestGuideTables: fed the guide's routes, RED and GREEN on borderleaf01
// hold the guide's tables: ECMP pairs, leaked routes with their own labels,
// blackhole aggregates; BLUE imports nothing.
func TestGuideTables(t *testing.T) {
	dp, r := guideRIB()
	leafs := func(vni uint32) []dataplane.Remote {
		return []dataplane.Remote{remote("10.10.10.1", vni, rmac1), remote("10.10.10.2", vni, rmac2)}
	}
	rt := func(p string, rs ...dataplane.Remote) dataplane.Route {
		return dataplane.Route{Prefix: pfx(p), Kind: dataplane.RouteRemote, Remotes: rs}
	}
	bh := func(p string) dataplane.Route { return dataplane.Route{Prefix: pfx(p), Kind: dataplane.RouteBlackhole} }
	// The guide's "show route vrf RED" on borderleaf01, as data.
	wantRED := map[netip.Prefix]dataplane.Route{
		pfx("192.168.1.0/24"):  rt("192.168.1.0/24", leafs(4001)...),
		pfx("192.168.1.10/32"): rt("192.168.1.10/32", leafs(4001)...),
		pfx("192.168.2.0/24"):  bh("192.168.2.0/24"),
		pfx("192.168.2.10/32"): rt("192.168.2.10/32", leafs(4002)...), // label 4002
		pfx("192.168.10.0/24"): rt("192.168.10.0/24", remote("10.10.20.11", 5002, rmac9)),
		// RED's aggregate 192.168.20.0/24 has no more-specific here: the
		// guide shows site 2's own /24 instead, label 5001.
		pfx("192.168.20.0/24"): rt("192.168.20.0/24", remote("10.10.20.11", 5001, rmac9)),
	}
	if diff := cmp.Diff(wantRED, dp.tables[1], cmpDP...); diff != "" {
		t.Errorf("RED (-want +got):\n%s", diff)
	}
	wantGREEN := map[netip.Prefix]dataplane.Route{
		pfx("192.168.1.0/24"):  bh("192.168.1.0/24"),
		pfx("192.168.1.10/32"): rt("192.168.1.10/32", leafs(4001)...), // leaked from RED: label 4001
		pfx("192.168.2.0/24"):  rt("192.168.2.0/24", leafs(4002)...),
		pfx("192.168.2.10/32"): rt("192.168.2.10/32", leafs(4002)...),
		pfx("192.168.10.0/24"): rt("192.168.10.0/24", remote("10.10.20.11", 5002, rmac9)),
		pfx("192.168.20.0/24"): rt("192.168.20.0/24", remote("10.10.20.11", 5001, rmac9)),
	}
	if diff := cmp.Diff(wantGREEN, dp.tables[2], cmpDP...); diff != "" {
		t.Errorf("GREEN (-want +got):\n%s", diff)
	}
	if len(dp.tables[3]) != 0 {
		t.Errorf("BLUE imported %v", dp.tables[3])
	}
	// What borderleaf04 shows from 10.10.10.10 in the guide.
	wantExports := []Export{{VRF: "GREEN", Prefix: pfx("192.168.1.0/24"), Aggregate: true}, {VRF: "RED", Prefix: pfx("192.168.2.0/24"), Aggregate: true}}
	if diff := cmp.Diff(wantExports, r.Exports(), cmpDP...); diff != "" {
		t.Errorf("exports (-want +got):\n%s", diff)
	}
}

// TestRouteTargetMatching: ASN:N and A.B.C.D:N match exactly, ANY:N any
// administrator, and no explicit list means ANY:own VNI.
func TestRouteTargetMatching(t *testing.T) {
	for _, tc := range []struct {
		imp, route RT
		want       bool
	}{
		{RT{ASN: 65210, Value: 5001}, RT{ASN: 65210, Value: 5001}, true},
		{RT{ASN: 65210, Value: 5001}, RT{ASN: 65211, Value: 5001}, false},
		{RT{ASN: 65210, Value: 5001}, RT{ASN: 65210, Value: 5002}, false},
		{RT{Any: true, Value: 4001}, RT{ASN: 65101, Value: 4001}, true},
		{RT{Any: true, Value: 4001}, RT{ASN: 4200000000, Value: 4001}, true},
		{RT{Any: true, Value: 4001}, RT{ASN: 65101, Value: 4002}, false},
		// The IPv4-address form: FRR matches it against wildcards too.
		{RT{Any: true, Value: 4001}, RT{Addr: addr("10.10.10.5"), Value: 4001}, true},
		{RT{Addr: addr("10.10.10.5"), Value: 4001}, RT{Addr: addr("10.10.10.5"), Value: 4001}, true},
		{RT{Addr: addr("10.10.10.5"), Value: 4001}, RT{Addr: addr("10.10.10.6"), Value: 4001}, false},
		{RT{ASN: 0, Value: 4001}, RT{Addr: addr("10.10.10.5"), Value: 4001}, false},
	} {
		if got := tc.imp.Matches(tc.route); got != tc.want {
			t.Errorf("%v imports %v: %v, want %v", tc.imp, tc.route, got, tc.want)
		}
	}
	auto := VRF{VNI: 4003}
	if diff := cmp.Diff([]RT{{Any: true, Value: 4003}}, auto.ImportRTs(), cmpDP...); diff != "" {
		t.Errorf("auto import (-want +got):\n%s", diff)
	}
}

// TestAggregateFollowsContributors: an aggregate exists while at least one
// more-specific route does, from any source, and goes with the last one.
func TestAggregateFollowsContributors(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	agg := pfx("192.168.2.0/24")
	a := t5("spine", "192.168.2.10/32", "10.10.10.1", 4002, rmac1, RT{ASN: 65101, Value: 4002}, 65199, 65101)
	b := t5("spine", "192.168.2.20/32", "10.10.10.2", 4002, rmac2, RT{ASN: 65102, Value: 4002}, 65199, 65102)
	has := func() bool { _, ok := dp.tables[1][agg]; return ok }
	if has() {
		t.Fatal("aggregate without contributors")
	}
	r.Update(a)
	r.Update(b)
	if !has() || dp.tables[1][agg].Kind != dataplane.RouteBlackhole {
		t.Fatalf("aggregate missing or not a blackhole: %v", dp.tables[1][agg])
	}
	r.Withdraw(a.Key())
	if !has() {
		t.Fatal("aggregate gone while a contributor remains")
	}
	r.Withdraw(b.Key())
	if has() {
		t.Fatal("aggregate stays without contributors")
	}
	// A connected subnet contributes too.
	r.SetConnected("RED", []netip.Prefix{pfx("192.168.2.129/25")})
	if !has() {
		t.Fatal("a connected more-specific does not bring the aggregate")
	}
}

// TestWithdrawAndPeerDown remove exactly what they should.
func TestWithdrawAndPeerDown(t *testing.T) {
	dp, r := guideRIB()
	ecmp := pfx("192.168.1.10/32")
	r.Withdraw(Key{RD: "10.10.10.2:" + itoa(4001), Prefix: ecmp})
	if got := dp.tables[1][ecmp].Remotes; len(got) != 1 || got[0].VTEP != addr("10.10.10.1") {
		t.Errorf("after withdrawing leaf02's path: %v, want leaf01 alone", got)
	}
	r.WithdrawPeer("dci")
	for _, p := range []string{"192.168.10.0/24", "192.168.20.0/24"} {
		if _, ok := dp.tables[1][pfx(p)]; ok && dp.tables[1][pfx(p)].Kind != dataplane.RouteBlackhole {
			t.Errorf("%s still routed after the DCI peer went down", p)
		}
	}
	if _, ok := dp.tables[1][pfx("192.168.1.0/24")]; !ok {
		t.Error("site-1 routes went with the DCI peer")
	}
	r.WithdrawPeer("spine")
	for vrf, tbl := range dp.tables {
		if len(tbl) != 0 {
			t.Errorf("vrf %d keeps %v with every peer down", vrf, tbl)
		}
	}
}

// TestIncremental: one route change costs one data path call.
func TestIncremental(t *testing.T) {
	dp, r := guideRIB()
	before := dp.calls
	r.Update(t5("spine", "192.168.1.77/32", "10.10.10.1", 4001, rmac1, RT{ASN: 65101, Value: 4001}, 65199, 65101))
	if n := dp.calls - before; n != 2 { // RED and GREEN both import RT 4001
		t.Errorf("one new route cost %d data path calls, want 2 (one per importing VRF)", n)
	}
	before = dp.calls
	r.Update(t5("spine", "192.168.1.77/32", "10.10.10.1", 4001, rmac1, RT{ASN: 65101, Value: 4001}, 65199, 65101))
	if n := dp.calls - before; n != 0 {
		t.Errorf("an unchanged re-advertisement cost %d calls, want 0", n)
	}
}

// TestBestPathAndMultipath: a shorter AS path wins alone; equal ones share.
func TestBestPathAndMultipath(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	rt := RT{ASN: 65101, Value: 4001}
	r.Update(t5("spine", "192.168.5.0/24", "10.10.10.1", 4001, rmac1, rt, 65199, 65101))
	r.Update(t5("spine", "192.168.5.0/24", "10.10.10.2", 4001, rmac2, rt, 65199, 65102))
	if n := len(dp.tables[1][pfx("192.168.5.0/24")].Remotes); n != 2 {
		t.Fatalf("%d members, want an ECMP pair", n)
	}
	r.Update(t5("dci", "192.168.5.0/24", "10.10.20.11", 4001, rmac9, rt, 65210))
	if diff := cmp.Diff([]dataplane.Remote{remote("10.10.20.11", 4001, rmac9)}, dp.tables[1][pfx("192.168.5.0/24")].Remotes, cmpDP...); diff != "" {
		t.Errorf("shorter AS path should win alone (-want +got):\n%s", diff)
	}
}

// TestLocalLeak: a VRF's connected subnet is delivered locally in every VRF
// that imports its route target, and nowhere else.
func TestLocalLeak(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	r.SetConnected("RED", []netip.Prefix{pfx("192.168.100.1/24")})
	want := dataplane.Route{Prefix: pfx("192.168.100.0/24"), Kind: dataplane.RouteLocal, HostVRF: 1}
	for _, vrf := range []dataplane.VRFID{1, 2} {
		if diff := cmp.Diff(want, dp.tables[vrf][want.Prefix], cmpDP...); diff != "" {
			t.Errorf("vrf %d (-want +got):\n%s", vrf, diff)
		}
	}
	if _, ok := dp.tables[3][want.Prefix]; ok {
		t.Error("BLUE got RED's subnet")
	}
	gw := dataplane.Route{Prefix: pfx("192.168.100.1/32"), Kind: dataplane.RouteReceive}
	if diff := cmp.Diff(gw, dp.tables[1][gw.Prefix], cmpDP...); diff != "" {
		t.Errorf("RED's own address (-want +got):\n%s", diff)
	}
	if _, ok := dp.tables[2][gw.Prefix]; ok {
		t.Error("GREEN treats RED's gateway address as its own")
	}
	r.SetConnected("RED", nil)
	for vrf, tbl := range dp.tables {
		if _, ok := tbl[want.Prefix]; ok {
			t.Errorf("vrf %d keeps a removed subnet", vrf)
		}
	}
}

// TestReconfigure: changing a VRF's imports re-imports with only the
// difference programmed; removing a VRF clears its table.
func TestReconfigure(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	vrfs := guideVRFs()
	r.SetVRFs(vrfs)
	for _, p := range guidePaths() {
		r.Update(p)
	}
	vrfs[2].Imports = []RT{{Any: true, Value: 4001}} // BLUE now leaks RED
	r.SetVRFs(vrfs)
	if _, ok := dp.tables[3][pfx("192.168.1.10/32")]; !ok {
		t.Error("BLUE did not import RED's routes after the change")
	}
	r.SetVRFs(vrfs[:2])
	if len(dp.tables[3]) != 0 {
		t.Errorf("removed VRF keeps %v", dp.tables[3])
	}

	// A path no VRF imports is kept: a VRF that starts importing it, or
	// comes back importing it, gets it; withdrawn meanwhile, it is gone.
	other := t5("dci", "192.168.77.0/24", "10.10.20.11", 7777, rmac9, RT{ASN: 65210, Value: 7777}, 65210)
	r.Update(other)
	vrfs[2].Imports = append(vrfs[2].Imports, RT{Any: true, Value: 7777})
	has := func() bool { _, ok := dp.tables[3][other.Prefix]; return ok }
	if r.SetVRFs(vrfs); !has() {
		t.Error("BLUE did not import the path no VRF imported before")
	}
	r.SetVRFs(vrfs[:2])
	if r.SetVRFs(vrfs); !has() {
		t.Error("BLUE, back, did not import the path only it imported")
	}
	r.SetVRFs(vrfs[:2])
	r.Withdraw(other.Key())
	if r.SetVRFs(vrfs); has() {
		t.Error("BLUE, back, imported a path withdrawn while no VRF imported it")
	}
	r.SetVRFs(vrfs[:2])
	r.Update(other)
	r.WithdrawPeer("dci")
	if r.SetVRFs(vrfs); has() {
		t.Error("BLUE, back, imported a path of a peer that went down while no VRF imported it")
	}
	if _, ok := dp.tables[3][pfx("192.168.1.10/32")]; !ok {
		t.Error("BLUE lost RED's routes")
	}
}

// TestAdoptAndSweep: after a restart, routes still wanted are not
// rewritten, and only what nothing selects is removed, at the sweep.
func TestAdoptAndSweep(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	wanted := dataplane.Route{Prefix: pfx("192.168.1.10/32"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{remote("10.10.10.1", 4001, rmac1), remote("10.10.10.2", 4001, rmac2)}}
	stale := dataplane.Route{Prefix: pfx("192.168.77.0/24"), Kind: dataplane.RouteBlackhole}
	dp.SetRoute(1, wanted)
	dp.SetRoute(1, stale)
	r.Adopt("RED", []dataplane.Route{wanted, stale})
	for _, p := range guidePaths() {
		r.Update(p)
	}
	if _, ok := dp.tables[1][stale.Prefix]; !ok {
		t.Fatal("stale route removed before the sweep: traffic would stop while BGP converges")
	}
	r.SetVRFs(guideVRFs()) // a configuration apply while BGP converges
	if _, ok := dp.tables[1][stale.Prefix]; !ok {
		t.Fatal("a configuration apply removed a stale route before the sweep")
	}
	r.Update(guidePaths()[0]) // re-advertisements change nothing
	if n := r.Sweep(); n != 1 {
		t.Errorf("swept %d routes, want 1", n)
	}
	if _, ok := dp.tables[1][stale.Prefix]; ok {
		t.Error("stale route survived the sweep")
	}
	if _, ok := dp.tables[1][wanted.Prefix]; !ok {
		t.Error("a wanted route was swept")
	}
	if n := dp.deletes[wanted.Prefix]; n != 0 {
		t.Errorf("a wanted route was deleted %d times during convergence", n)
	}
}

// TestStaleRoutesAfterARestart: what the previous run left (adopted, stale)
// keeps forwarding and keeps an aggregate it falls under advertised until
// the sweep; a stale route BGP re-learns differently is replaced at once
// and survives the sweep; what nothing re-learned goes at the sweep, and
// the aggregate only it kept up goes with it.
func TestStaleRoutesAfterARestart(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	changes := dataplane.Route{Prefix: pfx("192.168.2.10/32"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{remote("10.10.10.9", 4002, rmac9)}} // was behind a leaf now gone
	orphan := dataplane.Route{Prefix: pfx("192.168.20.7/32"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{remote("10.10.20.11", 5001, rmac9)}}
	for _, rt := range []dataplane.Route{changes, orphan} {
		dp.SetRoute(1, rt)
	}
	r.Adopt("RED", []dataplane.Route{changes, orphan})

	exported := func(p string) bool {
		return slices.Contains(r.Exports(), Export{VRF: "RED", Prefix: pfx(p), Aggregate: true})
	}
	if !exported("192.168.2.0/24") || !exported("192.168.20.0/24") {
		t.Fatalf("aggregates over adopted routes not exported before BGP converged: %v", r.Exports())
	}
	if _, ok := dp.tables[1][pfx("192.168.20.0/24")]; !ok {
		t.Error("aggregate over an adopted route not in the data path")
	}

	// BGP re-learns 192.168.2.10/32 behind other VTEPs while it is stale.
	for _, p := range guidePaths()[6:8] {
		r.Update(p)
	}
	got := dp.tables[1][changes.Prefix]
	if len(got.Remotes) != 2 || got.Remotes[0].VTEP != addr("10.10.10.1") {
		t.Fatalf("a stale route re-learned differently was not replaced: %+v", got)
	}
	if n := r.Sweep(); n != 1 {
		t.Errorf("swept %d routes, want 1 (the orphan)", n)
	}
	if _, ok := dp.tables[1][orphan.Prefix]; ok {
		t.Error("the orphan survived the sweep")
	}
	if got := dp.tables[1][changes.Prefix]; len(got.Remotes) != 2 {
		t.Errorf("the re-learned route after the sweep: %+v", got)
	}
	if exported("192.168.20.0/24") {
		t.Error("an aggregate only the orphan kept up is still exported after the sweep")
	}
	if _, ok := dp.tables[1][pfx("192.168.20.0/24")]; ok {
		t.Error("an aggregate only the orphan kept up is still in the data path after the sweep")
	}
	if !exported("192.168.2.0/24") {
		t.Error("the aggregate over a re-learned route went at the sweep")
	}
}

// TestLocalHostBeatsRemoteType2: both leafs of a pair know a multihomed
// host and advertise it; each must deliver it locally, not send it to the
// other (which would loop).
func TestLocalHostBeatsRemoteType2(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	r.SetConnected("RED", []netip.Prefix{pfx("192.168.1.1/24")})
	host := pfx("192.168.1.10/32")
	other := &Path{Prefix: host, Attrs: &Attrs{Peer: "spine", RD: "10.10.10.2:1", VTEP: addr("10.10.10.2"), VNI: 4001, RouterMAC: rmac2,
		RTs: []RT{{ASN: 65102, Value: 4001}}, ASPath: []uint32{65199, 65102}, Type2: true}}
	r.Update(other)
	if got := dp.tables[1][host]; got.Kind != dataplane.RouteRemote {
		t.Fatalf("before the host is known here: %v, want the other leaf's route", got)
	}
	r.SetHost("RED", host.Addr(), true)
	want := dataplane.Route{Prefix: host, Kind: dataplane.RouteLocal, HostVRF: 1}
	for _, vrf := range []dataplane.VRFID{1, 2} { // GREEN imports RED's target: leaked locally too
		if diff := cmp.Diff(want, dp.tables[vrf][host], cmpDP...); diff != "" {
			t.Errorf("vrf %d (-want +got):\n%s", vrf, diff)
		}
	}
	r.SetHost("RED", host.Addr(), false)
	if got := dp.tables[1][host]; got.Kind != dataplane.RouteRemote {
		t.Errorf("after the host left: %v, want the other leaf's route again", got)
	}
}

// TestBestMovesBetweenSessions: the same route over two sessions (two
// links to one spine); the best moves from one to the other, then goes:
// nothing of it may stay.
func TestBestMovesBetweenSessions(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	p1 := t5("swp1", "192.168.1.10/32", "10.10.10.2", 4001, rmac2, RT{ASN: 65102, Value: 4001}, 65199, 65102)
	p2 := t5("swp2", "192.168.1.10/32", "10.10.10.2", 4001, rmac2, RT{ASN: 65102, Value: 4001}, 65199, 65102)
	r.Update(p1)
	r.Update(p2) // swp1's copy withdrawn: the best is now swp2's
	r.Withdraw(p2.Key())
	if got, ok := dp.tables[1][pfx("192.168.1.10/32")]; ok {
		t.Errorf("route stays after its last session withdrew it: %v", got)
	}
}

// TestType2MACMove: a remote host moves to a new MAC; the old route's
// withdrawal must not take the new one with it.
func TestType2MACMove(t *testing.T) {
	dp := newFakeDP()
	r := New(dp)
	r.SetVRFs(guideVRFs())
	old := t5("spine", "192.168.1.10/32", "10.10.10.1", 4001, rmac1, RT{ASN: 65101, Value: 4001}, 65199, 65101)
	old.Type2, old.HostMAC = true, net.HardwareAddr{2, 0, 0, 0, 0, 1}
	moved := *old
	moved.HostMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	r.Update(old)
	r.Update(&moved)
	r.Withdraw(old.Key())
	if _, ok := dp.tables[1][pfx("192.168.1.10/32")]; !ok {
		t.Error("the host's route went with its old MAC's withdrawal")
	}
}

// TestRemoteSets: installed routes with the same remotes share one
// interned set, and a set goes with the last route using it.
func TestRemoteSets(t *testing.T) {
	_, r := guideRIB()
	red := r.vrfs["RED"]
	a, _ := red.installedAt(pfx("192.168.1.0/24"))
	b, _ := red.installedAt(pfx("192.168.1.10/32"))
	if a.remotes == 0 || a.remotes != b.remotes {
		t.Errorf("two routes over the same ECMP pair: sets %d and %d, want one set", a.remotes, b.remotes)
	}
	if len(r.setIndex) == 0 {
		t.Fatal("no remote sets interned")
	}
	r.WithdrawPeer("spine")
	r.WithdrawPeer("dci")
	if len(r.setIndex) != 0 || len(r.freeSets) != len(r.sets)-1 {
		t.Errorf("no remote route left: %d sets interned, %d of %d free", len(r.setIndex), len(r.freeSets), len(r.sets)-1)
	}
	slots := len(r.sets)
	for _, p := range guidePaths() {
		r.Update(p)
	}
	if len(r.sets) != slots || len(r.freeSets) != slots-1-len(r.setIndex) {
		t.Errorf("reloaded: %d set slots (%d before), %d interned and %d free: free sets were not reused", len(r.sets), slots, len(r.setIndex), len(r.freeSets))
	}
	// The VRFs go: their routes' sets with them.
	r.SetVRFs(nil)
	if len(r.setIndex) != 0 {
		t.Errorf("no VRF left: %d sets still interned", len(r.setIndex))
	}
}

// TestAllPathsOnce: a path two VRFs import is listed once, so a
// reconfiguration does not give a VRF two copies of it (which a
// withdrawal would leave half in place).
func TestAllPathsOnce(t *testing.T) {
	dp, r := guideRIB()
	seen := map[Key]int{}
	for p := range r.allPaths() {
		seen[p.Key()]++
	}
	if len(seen) != len(guidePaths()) {
		t.Errorf("allPaths listed %d paths, want the %d received", len(seen), len(guidePaths()))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%v listed %d times", k, n)
		}
	}
	r.SetVRFs(guideVRFs())    // again, unchanged
	leaked := guidePaths()[2] // RED's 192.168.1.10/32, which GREEN leaks
	r.Withdraw(leaked.Key())
	r.Withdraw(guidePaths()[3].Key()) // and its ECMP twin
	for vrf, tbl := range dp.tables {
		if _, ok := tbl[leaked.Prefix]; ok {
			t.Errorf("vrf %d keeps %v after both its paths were withdrawn", vrf, leaked.Prefix)
		}
	}
}

// TestCandidates: a prefix's candidates, the first held in place and the
// rest beside, through adds and removals in every position; a copy of the
// state taken before a change keeps what it had (states are values).
func TestCandidates(t *testing.T) {
	ps := []*Path{
		t5("s1", "192.168.1.0/24", "10.10.10.1", 4001, rmac1, RT{ASN: 65101, Value: 4001}),
		t5("s2", "192.168.1.0/24", "10.10.10.2", 4001, rmac2, RT{ASN: 65102, Value: 4001}),
		t5("s3", "192.168.1.0/24", "10.10.10.3", 4001, rmac9, RT{ASN: 65103, Value: 4001}),
	}
	list := func(c candidates) []string {
		var out []string
		for p := range c.all() {
			out = append(out, p.Peer)
		}
		if len(out) != c.len() {
			t.Errorf("len %d, listed %v", c.len(), out)
		}
		return out
	}
	for _, order := range [][]int{{0, 1, 2}, {1, 0, 2}, {2, 1, 0}, {0, 2, 1}} {
		var c candidates
		for _, p := range ps {
			c.add(p)
		}
		want := []string{"s1", "s2", "s3"}
		for _, i := range order {
			before := c
			held := list(before)
			if !c.remove(ps[i].Key()) {
				t.Fatalf("order %v: %s not found", order, ps[i].Peer)
			}
			if c.remove(ps[i].Key()) {
				t.Errorf("order %v: %s removed twice", order, ps[i].Peer)
			}
			want = slices.DeleteFunc(want, func(s string) bool { return s == ps[i].Peer })
			if got := list(c); !slices.Equal(got, want) { // in the order added
				t.Errorf("order %v, %s removed: %v, want %v", order, ps[i].Peer, got, want)
			}
			if !slices.Equal(list(before), held) {
				t.Errorf("order %v: removing %s changed an earlier copy: %v, was %v", order, ps[i].Peer, list(before), held)
			}
		}
		if c != (candidates{}) {
			t.Errorf("order %v: all removed, left %+v", order, c)
		}
	}
	var c candidates
	c.add(ps[0])
	c.add(ps[1])
	before := c
	c.add(ps[2])
	if got := list(before); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("an add changed an earlier copy: %v", got)
	}
	// Two copies of a state after a removal, each adding its own path.
	var d candidates
	for _, p := range ps {
		d.add(p)
	}
	d.remove(ps[2].Key())
	x, y := d, d
	x.add(ps[2])
	y.add(t5("s4", "192.168.1.0/24", "10.10.10.4", 4001, rmac9, RT{ASN: 65104, Value: 4001}))
	if got, want := list(x), []string{"s1", "s2", "s3"}; !slices.Equal(got, want) {
		t.Errorf("one copy: %v, want %v", got, want)
	}
	if got, want := list(y), []string{"s1", "s2", "s4"}; !slices.Equal(got, want) {
		t.Errorf("the other copy: %v, want %v (the copies share their rest)", got, want)
	}
}
