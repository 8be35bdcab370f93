package control

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/dataplane"
)

// The parts' own tests: each part against the in-memory data path
// (dataplane.Fake) and a recording BGP speaker, without root and in
// parallel. The agent tests on the real program and real GoBGP sessions
// (agent_test.go, fabric_test.go) remain the proof that the parts work
// together.

// equateNet compares netip values by ==, as cmp cannot see their unexported fields.
var equateNet = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

// speakerLog records what a part asked of BGP.
type speakerLog struct {
	mu        sync.Mutex
	type5     map[string]bgp.Type5 // advertised, by prefix
	hosts     map[netip.Addr]bgp.Host
	withdrawn []string
	peers     map[netip.Addr]bgp.Peer
	type5Only []netip.Addr
	retried   []netip.Addr
	watcher   func(bgp.Event) // what Watch was given
}

func newSpeakerLog() *speakerLog {
	return &speakerLog{type5: map[string]bgp.Type5{}, hosts: map[netip.Addr]bgp.Host{}, peers: map[netip.Addr]bgp.Peer{}}
}

func (s *speakerLog) Watch(_ context.Context, fn func(bgp.Event), _ func(error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watcher = fn
	return nil
}

func (s *speakerLog) Advertise(_ context.Context, t bgp.Type5) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.type5[t.Prefix.String()] = t
	return nil
}

func (s *speakerLog) Withdraw(_ context.Context, t bgp.Type5) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.type5, t.Prefix.String())
	s.withdrawn = append(s.withdrawn, t.Prefix.String())
	return nil
}

func (s *speakerLog) AdvertiseHost(_ context.Context, h bgp.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts[h.IP] = h
	return nil
}

func (s *speakerLog) WithdrawHost(_ context.Context, h bgp.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.hosts[h.IP]; ok && cur.MAC.String() == h.MAC.String() {
		delete(s.hosts, h.IP)
	}
	s.withdrawn = append(s.withdrawn, h.IP.String()+" "+h.MAC.String())
	return nil
}

func (s *speakerLog) AddPeer(_ context.Context, p bgp.Peer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers[p.Address] = p
	return nil
}

func (s *speakerLog) DeletePeer(_ context.Context, p bgp.Peer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.peers, p.Address)
	return nil
}

func (s *speakerLog) SetType5Only(_ context.Context, peers []netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.type5Only = slices.Clone(peers)
	slices.SortFunc(s.type5Only, netip.Addr.Compare)
	return nil
}

func (s *speakerLog) Retry(_ context.Context, a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retried = append(s.retried, a)
}

func (s *speakerLog) advertised() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p := range s.type5 {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.cfg", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var testLeaf = leaf{vtep: netip.MustParseAddr("10.10.10.10"), rmac: routerMAC}

// newTestPipeline is the pipeline on a fake data path with cfg's VRFs.
func newTestPipeline(t *testing.T, cfg *config.Config) (*pipeline, *dataplane.Fake, *speakerLog, *vrfSet) {
	t.Helper()
	dp, sp := dataplane.NewFake(), newSpeakerLog()
	ids := vrfIDs{}
	if err := ids.allocate(cfg); err != nil {
		t.Fatal(err)
	}
	vs := newVRFSet(cfg, ids)
	for _, name := range vs.names() {
		if err := dp.SetVRF(dataplane.VRF{ID: vs.byName[name].ID, VNI: vs.byName[name].VNI, RouterMAC: routerMAC, VTEP: testLeaf.vtep}); err != nil {
			t.Fatal(err)
		}
	}
	p := newPipeline(quiet, dp, sp, newMetrics(), testLeaf, func(bgp.Event) { t.Error("an EVPN route went to the underlay") })
	p.setVRFs(vs, connected(cfg))
	return p, dp, sp, vs
}

func fromLeaf01Route(prefix string, vni uint32) *bgp.Route {
	return &bgp.Route{Peer: "10.0.0.1", RD: "10.10.10.1:2", Prefix: pfx(prefix), VTEP: addr("10.10.10.1"), VNI: vni,
		RouterMAC: leaf01MAC, RTs: []bgp.RT{{ASN: 65101, Value: vni}}}
}

// TestPipelineLeaksAndAggregates: a Type-5 route from BGP lands in every
// VRF that imports its target, with its own VNI; the aggregate it falls
// under is advertised while it is there and withdrawn with it; the
// connected subnets are advertised from the start.
func TestPipelineLeaksAndAggregates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, dp, sp, vs := newTestPipeline(t, parse(t, leafConfig))
	red, green := vs.get("RED").ID, vs.get("GREEN").ID
	p.syncExports(ctx)
	if diff := cmp.Diff([]string{"192.168.100.0/24"}, sp.advertised()); diff != "" {
		t.Errorf("advertised at start (-want +got):\n%s", diff)
	}

	p.received(ctx, bgp.Event{Route: fromLeaf01Route("192.168.2.0/25", 4001)})
	want := dataplane.Route{Prefix: pfx("192.168.2.0/25"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: addr("10.10.10.1"), VNI: 4001, RouterMAC: leaf01MAC}}}
	for _, id := range []dataplane.VRFID{red, green} {
		got, ok := dp.Route(id, want.Prefix)
		if !ok {
			t.Fatalf("vrf %d lacks %v", id, want.Prefix)
		}
		if diff := cmp.Diff(want, got, equateNet); diff != "" {
			t.Errorf("vrf %d (-want +got):\n%s", id, diff)
		}
	}
	if diff := cmp.Diff([]string{"192.168.100.0/24", "192.168.2.0/24"}, sp.advertised()); diff != "" {
		t.Errorf("advertised with a contributor to RED's aggregate (-want +got):\n%s", diff)
	}
	if got := sp.type5["192.168.2.0/24"]; got.VNI != 4001 || got.RD != vs.get("RED").RD || got.VTEP != testLeaf.vtep {
		t.Errorf("the aggregate went out as %+v", got)
	}

	p.received(ctx, bgp.Event{Route: fromLeaf01Route("192.168.2.0/25", 4001), Withdraw: true})
	for _, id := range []dataplane.VRFID{red, green} {
		if _, ok := dp.Route(id, want.Prefix); ok {
			t.Errorf("vrf %d keeps a withdrawn route", id)
		}
	}
	if diff := cmp.Diff([]string{"192.168.100.0/24"}, sp.advertised()); diff != "" {
		t.Errorf("advertised after the withdrawal (-want +got):\n%s", diff)
	}
}

// TestPipelineFullTableKeepsTheRest: a VRF table that refuses a route
// (full) leaves every other route and VRF as it was.
func TestPipelineFullTableKeepsTheRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, dp, _, vs := newTestPipeline(t, parse(t, leafConfig))
	n := len(must(dp.Routes(vs.get("RED").ID)))
	dp.RouteLimit = n + 1
	p.received(ctx, bgp.Event{Route: fromLeaf01Route("10.1.0.0/16", 4001)})
	p.received(ctx, bgp.Event{Route: fromLeaf01Route("10.2.0.0/16", 4001)}) // no room in RED
	if _, ok := dp.Route(vs.get("RED").ID, pfx("10.1.0.0/16")); !ok {
		t.Error("RED lost the route that fitted")
	}
	if _, ok := dp.Route(vs.get("RED").ID, pfx("10.2.0.0/16")); ok {
		t.Error("a full table took one more route")
	}
	if _, ok := dp.Route(vs.get("RED").ID, pfx("192.168.100.0/24")); !ok {
		t.Error("RED lost its connected subnet")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// newTestHosts is the hosts part on a fake data path, with swp10 a tenant
// port of RED (192.168.100.1/24).
func newTestHosts(t *testing.T) (*hosts, *dataplane.Fake, *speakerLog, *pipeline, *vrfSet) {
	t.Helper()
	cfg := parse(t, leafConfig)
	p, dp, sp, vs := newTestPipeline(t, cfg)
	ps := newPorts(quiet, dp)
	ps.ifcs = cfg.Interfaces
	ps.set("swp10", &portRole{kind: roleAccess, vrf: "RED", id: vs.get("RED").ID})
	ps.set("swp1", &portRole{kind: roleUplink})
	h := newHosts(quiet, dp, p.rib, sp, ps, testLeaf)
	h.vrfs.Store(vs)
	return h, dp, sp, p, vs
}

var swp10 = &net.Interface{Index: 10, Name: "swp10", HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}}

// TestHostsFollowTheKernel: a host the kernel resolves on a tenant port is
// installed in its VRF, becomes a /32 other VRFs leak, and is advertised
// as a Type-2 route; a new MAC replaces the route; a host that goes is
// removed from all three.
func TestHostsFollowTheKernel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, dp, sp, p, vs := newTestHosts(t)
	red := vs.get("RED")
	host := addr("192.168.100.10")
	mac1, mac2 := net.HardwareAddr{0x02, 1, 1, 1, 1, 1}, net.HardwareAddr{0x02, 2, 2, 2, 2, 2}

	h.neighbor(ctx, swp10, host, mac1, true)
	if got, ok := dp.Neighbor(red.ID, host); !ok || got.MAC.String() != mac1.String() || got.Ifindex != 10 {
		t.Errorf("data path host = %+v, %v", got, ok)
	}
	if r, ok := dp.Route(vs.get("GREEN").ID, pfx("192.168.100.10/32")); !ok || r.Kind != dataplane.RouteLocal || r.HostVRF != red.ID {
		t.Errorf("GREEN's leaked host route = %+v, %v", r, ok)
	}
	if got := sp.hosts[host]; got.VNI != 4001 || got.RD != red.RD || got.MAC.String() != mac1.String() {
		t.Errorf("Type-2 route = %+v", got)
	}

	h.neighbor(ctx, swp10, host, mac2, true)
	if got := sp.hosts[host]; got.MAC.String() != mac2.String() {
		t.Errorf("after a MAC change the Type-2 route has %v", got.MAC)
	}
	if !slices.Contains(sp.withdrawn, host.String()+" "+mac1.String()) {
		t.Error("the old MAC's route was not withdrawn")
	}

	h.neighbor(ctx, swp10, host, nil, false)
	if _, ok := dp.Neighbor(red.ID, host); ok {
		t.Error("a gone host stays in the data path")
	}
	if _, ok := sp.hosts[host]; ok {
		t.Error("a gone host stays advertised")
	}
	if _, ok := dp.Route(vs.get("GREEN").ID, pfx("192.168.100.10/32")); ok {
		t.Error("a gone host stays leaked into GREEN")
	}
	_ = p
}

// TestHostsOnlyFromTheirSubnet: what a tenant can make the kernel learn
// (any ARP sender) becomes a host only on its port's own subnet and on a
// tenant port; an uplink's neighbours are not hosts.
func TestHostsOnlyFromTheirSubnet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, dp, sp, _, vs := newTestHosts(t)
	mac := net.HardwareAddr{0x02, 1, 1, 1, 1, 1}
	h.neighbor(ctx, swp10, addr("10.99.0.1"), mac, true)     // not RED's subnet
	h.neighbor(ctx, swp10, addr("192.168.100.1"), mac, true) // the port's own address
	uplink := &net.Interface{Index: 1, Name: "swp1", HardwareAddr: mac}
	h.neighbor(ctx, uplink, addr("192.168.100.20"), mac, true) // on an uplink
	for _, a := range []string{"10.99.0.1", "192.168.100.1", "192.168.100.20"} {
		if _, ok := dp.Neighbor(vs.get("RED").ID, addr(a)); ok {
			t.Errorf("%s became a host", a)
		}
	}
	if len(sp.hosts) != 0 {
		t.Errorf("advertised %v", sp.hosts)
	}
}

// TestHostsForgottenWithTheirPort: a port that leaves its VRF takes its
// hosts with it, from the data path and from BGP.
func TestHostsForgottenWithTheirPort(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, dp, sp, _, vs := newTestHosts(t)
	h.neighbor(ctx, swp10, addr("192.168.100.10"), net.HardwareAddr{0x02, 1, 1, 1, 1, 1}, true)
	h.forgetPorts([]string{"swp10"})
	if _, ok := dp.Neighbor(vs.get("RED").ID, addr("192.168.100.10")); ok {
		t.Error("the host stays in the data path")
	}
	if len(sp.hosts) != 0 {
		t.Errorf("still advertised: %v", sp.hosts)
	}
}

// TestMissResolvedOnTheHostsPort: a miss for a local host names the
// tenant port whose subnet holds it.
func TestMissResolvedOnTheHostsPort(t *testing.T) {
	t.Parallel()
	h, _, _, _, vs := newTestHosts(t)
	for _, tc := range []struct {
		e    dataplane.Event
		want string
	}{
		{dataplane.Event{Kind: dataplane.NeighborMiss, VRF: vs.get("RED").ID, Addr: addr("192.168.100.77")}, "swp10"},
		{dataplane.Event{Kind: dataplane.NeighborMiss, VRF: vs.get("GREEN").ID, Addr: addr("192.168.100.77")}, ""},
		{dataplane.Event{Kind: dataplane.NeighborMiss, VRF: 999, Addr: addr("192.168.100.77")}, ""},
	} {
		if got := h.portFor(tc.e); got != tc.want {
			t.Errorf("portFor(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}

// TestVRFIDs: ids are stable across applies and restarts (taken back from
// the data path by VNI), never given to a new VRF while the old holder is
// being removed, and VRFs the configuration dropped are named for removal.
func TestVRFIDs(t *testing.T) {
	t.Parallel()
	cfg := parse(t, leafConfig)
	ids := vrfIDs{}
	stale := ids.adopt(cfg, []dataplane.VRF{{ID: 7, VNI: 4002}, {ID: 3, VNI: 9999}})
	if diff := cmp.Diff([]dataplane.VRF{{ID: 3, VNI: 9999}}, stale, equateNet); diff != "" {
		t.Errorf("stale (-want +got):\n%s", diff)
	}
	if err := ids.allocate(cfg); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(vrfIDs{"GREEN": 7, "RED": 1}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	// BLUE comes while RED is removed: it must not get RED's id.
	next := parse(t, `nv set router bgp autonomous-system 65110
nv set router bgp router-id 10.10.10.10
nv set vrf GREEN evpn vni 4002
nv set vrf BLUE evpn vni 4003
`)
	if err := ids.allocate(next); err != nil {
		t.Fatal(err)
	}
	if ids["BLUE"] == 1 || ids["BLUE"] == 7 || ids["GREEN"] != 7 {
		t.Errorf("ids after BLUE came: %v", ids)
	}
}

// TestApplyOnFakeDataPath: the whole agent applies a configuration and a
// reload to the in-memory data path: VRFs with their VNIs, a replaced VRF
// under a new id, tenant ports in their VRF, a removed VRF gone.
func TestApplyOnFakeDataPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const base = `nv set router bgp autonomous-system 65110
nv set router bgp router-id 10.10.10.10
nv set interface swp10 ip vrf RED
nv set vrf RED evpn vni 4001
`
	dp := dataplane.NewFake()
	a, err := NewAgent(parse(t, base+"nv set vrf GREEN evpn vni 4002\n"), dp, Options{RouterMAC: routerMAC, BGPPort: -1, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.speaker.Stop(false) })
	if err := a.speaker.Start(ctx, bgp.Global{ASN: 65110, RouterID: addr("10.10.10.10"), ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	a.applyMu.Lock()
	err = a.apply(ctx, a.cfg.Load())
	a.applyMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	vnis := func() map[uint32]dataplane.VRFID {
		out := map[uint32]dataplane.VRFID{}
		for _, v := range must(dp.VRFs()) {
			out[v.VNI] = v.ID
		}
		return out
	}
	before := vnis()
	if len(before) != 2 {
		t.Fatalf("VRFs in the data path: %v", before)
	}
	if diff := cmp.Diff(map[string]dataplane.FakePort{"swp10": {VRF: before[4001]}}, dp.Ports(), equateNet); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}

	// GREEN goes; RED is replaced by a VRF of another VNI under its name.
	next := strings.Replace(base, "vni 4001", "vni 4011", 1)
	if err := a.Apply(ctx, parse(t, next)); err != nil {
		t.Fatal(err)
	}
	after := vnis()
	if _, ok := after[4002]; ok || len(after) != 1 {
		t.Errorf("VRFs after the reload: %v", after)
	}
	if after[4011] != before[4001] {
		t.Logf("RED kept id %d with its new VNI", after[4011])
	}
	if diff := cmp.Diff(map[string]dataplane.FakePort{"swp10": {VRF: after[4011]}}, dp.Ports(), equateNet); diff != "" {
		t.Errorf("ports after the reload (-want +got):\n%s", diff)
	}
	if _, err := a.BGPInfo("GREEN"); err == nil {
		t.Error("show vrf GREEN after its removal: no error")
	}
	info, err := a.BGPInfo("RED")
	if err != nil || info.VNI != 4011 {
		t.Errorf("show vrf RED evpn bgp-info = %+v, %v", info, err)
	}
}

// TestPeersFollowTheConfiguration: sessions are added, kept, changed and
// removed as the configuration says; the Type-5-only filter names exactly
// the peers under such a route-map; a port that no longer has an
// unnumbered neighbour stops being followed (and announced).
func TestPeersFollowTheConfiguration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sp := newSpeakerLog()
	ps := newPeers(quiet, sp)
	ps.ctx = ctx
	const base = `nv set router bgp autonomous-system 65110
nv set router bgp router-id 10.10.10.10
nv set router policy route-map t5 rule 1 action permit
nv set router policy route-map t5 rule 1 match evpn-route-type ip-prefix
nv set vrf default router bgp peer-group fabric remote-as external
nv set vrf default router bgp peer-group dci remote-as external
nv set vrf default router bgp peer-group dci address-family l2vpn-evpn policy outbound route-map t5
nv set vrf default router bgp neighbor 10.0.0.1 peer-group fabric
nv set vrf default router bgp neighbor 10.0.0.2 peer-group dci
`
	if err := ps.apply(ctx, parse(t, base+"nv set vrf default router bgp neighbor swp-nonexistent peer-group fabric\n")); err != nil {
		t.Fatal(err)
	}
	if got := sortedAddrs(sp.peers); !slices.Equal(got, []netip.Addr{addr("10.0.0.1"), addr("10.0.0.2")}) {
		t.Errorf("peers = %v", got)
	}
	if diff := cmp.Diff([]netip.Addr{addr("10.0.0.2")}, sp.type5Only, equateNet); diff != "" {
		t.Errorf("type-5-only peers (-want +got):\n%s", diff)
	}
	ps.mu.Lock()
	followed := ps.announced["swp-nonexistent"] != nil
	ps.mu.Unlock()
	if !followed {
		t.Error("the unnumbered port without a neighbour yet is not followed")
	}

	// 10.0.0.1's hold time changes; 10.0.0.2 goes; the unnumbered one goes.
	if err := ps.apply(ctx, parse(t, strings.Replace(base, "neighbor 10.0.0.2 peer-group dci", "peer-group fabric timers hold 30", 1))); err != nil {
		t.Fatal(err)
	}
	if got := sortedAddrs(sp.peers); !slices.Equal(got, []netip.Addr{addr("10.0.0.1")}) {
		t.Errorf("peers after the reload = %v", got)
	}
	if got := sp.peers[addr("10.0.0.1")].HoldTime; got != 30 {
		t.Errorf("10.0.0.1's hold time = %d, want 30", got)
	}
	if len(sp.type5Only) != 0 {
		t.Errorf("type-5-only peers after the reload: %v", sp.type5Only)
	}
	ps.mu.Lock()
	_, followed = ps.announced["swp-nonexistent"]
	ps.mu.Unlock()
	if followed {
		t.Error("a port without its unnumbered neighbour is still followed and announced")
	}
	if ctx.Err() != nil {
		t.Error("the agent's context ended, not just the port's")
	}
}

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	var out []netip.Addr
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// detachLog is the fake data path, recording detaches.
type detachLog struct {
	*dataplane.Fake
	mu       sync.Mutex
	detached []string
}

func (d *detachLog) Detach(ifname string) error {
	d.mu.Lock()
	d.detached = append(d.detached, ifname)
	d.mu.Unlock()
	return d.Fake.Detach(ifname)
}

// TestRestartTakesPortsOverInPlace: ports an earlier run left attached and
// the configuration still wants are taken over without a moment detached
// (a detach drops every packet until the attach); those it no longer
// wants are detached.
func TestRestartTakesPortsOverInPlace(t *testing.T) {
	t.Parallel()
	dp := &detachLog{Fake: dataplane.NewFake()}
	if err := dp.SetVRF(dataplane.VRF{ID: 1, VNI: 4001, RouterMAC: leaf01MAC, VTEP: addr("10.10.10.10")}); err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"swp1", "swp10", "swp11"} {
		if err := dp.AttachUplink(port); err != nil { // the earlier run's
			t.Fatal(err)
		}
	}
	p := newPorts(quiet, dp)
	found, err := p.adopt()
	if err != nil || !found {
		t.Fatalf("adopt: found %v, %v; want the earlier run's ports", found, err)
	}
	want := map[string]portRole{"swp1": {kind: roleUplink}, "swp10": {kind: roleAccess, vrf: "RED", id: 1}}
	ended, err := p.apply(want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"swp11"}, dp.detached); diff != "" {
		t.Errorf("detached (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"swp11"}, ended); diff != "" {
		t.Errorf("ports ended (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]dataplane.FakePort{"swp1": {Uplink: true}, "swp10": {VRF: 1}}, dp.Ports()); diff != "" {
		t.Errorf("attached after the restart (-want +got):\n%s", diff)
	}
}

// TestStoppingKeepsTheUnderlay: GoBGP's StopBgp hands its watchers a
// withdrawal of every route received; once the agent is stopping they must
// not reach the kernel (a graceful restart's peers still send traffic that
// needs those routes), as they do while it runs.
func TestStoppingKeepsTheUnderlay(t *testing.T) {
	t.Parallel()
	sp := newSpeakerLog()
	var mu sync.Mutex
	var seen []netip.Prefix
	p := newPipeline(quiet, dataplane.NewFake(), sp, newMetrics(), testLeaf, func(e bgp.Event) {
		mu.Lock()
		seen = append(seen, e.Underlay.Prefix)
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.run(ctx); err != nil {
		t.Fatal(err)
	}
	withdraw := func(p string) bgp.Event {
		return bgp.Event{Underlay: &bgp.Underlay{Peer: "10.0.0.1", Prefix: pfx(p), NextHop: addr("10.0.0.1")}, Withdraw: true}
	}
	sp.watcher(withdraw("10.10.20.11/32"))
	cancel()
	sp.watcher(withdraw("10.10.20.1/32"))
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]netip.Prefix{pfx("10.10.20.11/32")}, seen, equateNet); diff != "" {
		t.Errorf("underlay events handled (-want +got):\n%s", diff)
	}
}

// TestRestartEnds: the restart ends at every configured neighbour's
// End-of-RIB for each of its families, or after grace; an agent that
// stopped meanwhile sweeps nothing (its RIB would delete routes from the
// pinned data path its successor uses).
func TestRestartEnds(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Default: config.Default{IPv4Unicast: true, L2VPNEVPN: true, Neighbors: map[string]*config.Neighbor{
		"swp1": {Name: "swp1", Type: config.Unnumbered}, "10.0.0.2": {Name: "10.0.0.2", Type: config.Numbered}}}}
	ended := make(chan string, 1)
	r := newRestart(quiet, true, func(why string) { ended <- why })
	r.expect(cfg)
	r.wait(context.Background(), time.Hour)
	for _, e := range []struct {
		neighbor string
		evpn     bool
	}{{"swp1", true}, {"swp1", false}, {"10.0.0.2", true}, {"nobody", false}} {
		if r.isOver() {
			t.Fatalf("over before %s's End-of-RIB (evpn %v)", e.neighbor, e.evpn)
		}
		r.eor(e.neighbor, e.evpn)
	}
	if r.isOver() {
		t.Fatal("over without 10.0.0.2's IPv4 End-of-RIB")
	}
	r.eor("10.0.0.2", false)
	if why := <-ended; !r.isOver() || why != "every neighbour's End-of-RIB" {
		t.Errorf("ended: %q, over %v", why, r.isOver())
	}

	r = newRestart(quiet, true, func(why string) { ended <- why })
	r.expect(cfg)
	r.wait(context.Background(), 10*time.Millisecond)
	if why := <-ended; !strings.Contains(why, "grace passed; no End-of-RIB from 10.0.0.2, swp1") {
		t.Errorf("after grace: %q", why)
	}

	r = newRestart(quiet, true, func(why string) { ended <- why })
	r.expect(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	r.wait(ctx, 10*time.Millisecond)
	cancel()
	select {
	case why := <-ended:
		t.Errorf("a stopped agent's restart ended: %q", why)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestICMPErrorSource: a VRF answers from its first port address (ports in
// name order), one without ports from the leaf's loopback; a negative rate
// turns the errors off.
func TestICMPErrorSource(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `nv set router bgp autonomous-system 65110
nv set router bgp router-id 10.10.10.10
nv set interface lo ip address 10.10.10.10/32
nv set interface lo ip address 2001:db8:ffff::10/128
nv set interface swp20 ip address 10.1.20.1/24
nv set interface swp20 ip vrf RED
nv set interface swp10 ip address 10.1.10.1/24
nv set interface swp10 ip vrf RED
nv set interface swp20 ip address 2001:db8:20::1/64
nv set interface swp10 ip address 2001:db8:10::1/64
nv set vrf RED evpn vni 4001
nv set vrf GREEN evpn vni 4002
`)
	a := &Agent{opts: Options{ICMPErrorsPerSecond: 1000}, leaf: leaf{vtep: addr("10.10.10.10")}}
	for vrf, want := range map[string]dataplane.ICMPErrors{
		"RED":   {Source: addr("10.1.10.1"), Source6: addr("2001:db8:10::1"), PerSecond: 1000, Burst: icmpBurst},
		"GREEN": {Source: addr("10.10.10.10"), Source6: addr("2001:db8:ffff::10"), PerSecond: 1000, Burst: icmpBurst},
	} {
		if got := a.icmpErrors(cfg, vrf); got != want {
			t.Errorf("%s: %+v, want %+v", vrf, got, want)
		}
	}
	a.opts.ICMPErrorsPerSecond = -1
	if got := a.icmpErrors(cfg, "RED"); got.On() {
		t.Errorf("rate -1: %+v, want none", got)
	}
}
