package control

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/control/show"
	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

func TestMain(m *testing.M) { netns.Main(m) }

// The leaf under test: borderleaf01's VRFs from the guide, a tenant port,
// and one numbered session to a fabric peer (over loopback in this test).
const leafConfig = `
nv set interface lo ip address 10.10.10.10/32
nv set interface lo type loopback
nv set interface swp10 ip vrf RED
nv set interface swp10 ip address 192.168.100.1/24
nv set router bgp autonomous-system 65110
nv set router bgp router-id 10.10.10.10
nv set vrf GREEN evpn enable on
nv set vrf GREEN evpn vni 4002
nv set vrf GREEN router bgp address-family ipv4-unicast route-export to-evpn enable on
nv set vrf GREEN router bgp address-family ipv4-unicast redistribute connected enable on
nv set vrf GREEN router bgp route-import from-evpn route-target ANY:4001
nv set vrf GREEN router bgp route-import from-evpn route-target ANY:4002
nv set vrf RED evpn enable on
nv set vrf RED evpn vni 4001
nv set vrf RED router bgp address-family ipv4-unicast aggregate-route 192.168.2.0/24
nv set vrf RED router bgp address-family ipv4-unicast route-export to-evpn enable on
nv set vrf RED router bgp address-family ipv4-unicast redistribute connected enable on
nv set vrf RED router bgp route-import from-evpn route-target ANY:4001
nv set vrf RED router bgp route-import from-evpn route-target ANY:4002
nv set vrf default router bgp address-family l2vpn-evpn enable on
nv set vrf default router bgp enable on
nv set vrf default router bgp neighbor 127.0.0.2 peer-group underlay
nv set vrf default router bgp peer-group underlay remote-as external
nv set vrf default router bgp peer-group underlay address-family l2vpn-evpn enable on
`

var (
	addr      = netip.MustParseAddr
	pfx       = netip.MustParsePrefix
	leaf01MAC = net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x01}
	routerMAC = net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x06}
)

// testbedRoutes is the capacity of each VRF table in a testbed.
var testbedRoutes uint32 = 1024

type testbed struct {
	hostNS    string // the RED host behind swp10, 192.168.100.10
	cfg       *config.Config
	log       *slog.Logger
	stopAgent func()
	agent     *Agent
	dp        *dataplane.Dataplane
	fabric    *bgp.Speaker
	heard     chan bgp.Event // what the fabric hears from the leaf
	cancel    context.CancelFunc
}

// newTestbed starts the agent on a real data path, and a real GoBGP
// speaker as the fabric (AS 65199).
func newTestbed(t testing.TB, cfgText string) *testbed {
	netns.Root(t)
	netns.IP(t, "link", "set", "lo", "up")
	hostNS := netns.New(t, "h10")
	netns.Veth(t, netns.Dev{Name: "swp10"}, netns.Dev{NS: hostNS, Name: "eth0"})
	netns.IP(t, "-n", hostNS, "addr", "add", "192.168.100.10/24", "dev", "eth0")
	netns.IP(t, "-n", hostNS, "link", "set", "eth0", "up")
	netns.Sysctl(t, "net.ipv4.conf.all.forwarding", "1")

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	tb := &testbed{hostNS: hostNS, cancel: cancel, heard: make(chan bgp.Event, 64)}
	t.Cleanup(cancel)

	tb.fabric = bgp.New(log)
	t.Cleanup(func() { tb.fabric.Stop(false) })
	// The fabric listens on 127.0.0.2; the leaf's session comes from
	// 127.0.0.1. (Both speakers share this process and its namespace.)
	if err := tb.fabric.Start(ctx, bgp.Global{ASN: 65199, RouterID: addr("10.10.10.199"), ListenPort: 179, ListenAddr: []string{"127.0.0.2"}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.fabric.AddPeer(ctx, bgp.Peer{Address: addr("127.0.0.1"), ASN: 65110, Passive: true, EVPN: true}); err != nil {
		t.Fatal(err)
	}
	if err := tb.fabric.Watch(ctx, func(e bgp.Event) { tb.heard <- e }, nil); err != nil {
		t.Fatal(err)
	}

	cfg, err := config.Parse("leaf.cfg", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	tb.dp, err = dataplane.Open(dataplane.Options{PinPath: netns.PinPath(t), RoutesPerVRF: testbedRoutes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tb.dp.Detach("swp10")
		tb.dp.Close()
	})
	tb.cfg, tb.log = cfg, log
	tb.startAgent(t, time.Minute)
	return tb
}

// startAgent starts (or restarts) the agent on the testbed's data path.
func (tb *testbed) startAgent(t testing.TB, grace time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	tb.agent, err = NewAgent(tb.cfg, tb.dp, Options{RouterMAC: routerMAC, BGPPort: -1, Log: tb.log, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.agent.start(ctx); err != nil {
		t.Fatal(err)
	}
	agent := tb.agent
	tb.stopAgent = func() { cancel(); agent.hops.stop(); agent.stopHosts(); agent.stopVerify(); agent.speaker.Stop(false) }
	t.Cleanup(tb.stopAgent)
}

// call runs an xleafctl command over the socket and decodes its data.
func call(t *testing.T, sock string, v any, args ...string) {
	t.Helper()
	data, err := Call(sock, args)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

// fromLeaf01 is a Type-5 route as leaf01 (AS 65101) originates it.
func fromLeaf01(prefix string, vni uint32) bgp.Type5 {
	return bgp.Type5{RD: "10.10.10.1:2", Prefix: pfx(prefix), VTEP: addr("10.10.10.1"), VNI: vni,
		RouterMAC: leaf01MAC, RTs: []bgp.RT{{ASN: 65101, Value: vni}}}
}

// forwardsTo runs a frame routed in RED to host (from another address of
// swp10's subnet) once through the data path on swp10, and says whether
// it was forwarded. For a host it has no neighbour for, the data path
// drops it and reports the miss, which the agent resolves.
func (tb *testbed) forwardsTo(t testing.TB, host netip.Addr) bool {
	t.Helper()
	swp10, err := net.InterfaceByName("swp10")
	if err != nil {
		t.Fatal(err)
	}
	src := addr("192.168.100.99")
	if host.Is6() {
		src = addr("2001:db8:100::99")
	}
	frame := fixture.Frame(t, swp10.HardwareAddr, net.HardwareAddr{2, 0, 0, 0, 0, 0x99}, fixture.Flow{Src: src, Dst: host, TTL: 64})
	action, _ := fixture.Run(t, tb.dp.Program(), swp10.Index, frame)
	return action == dataplane.XDPRedirect || action == dataplane.XDPTx
}

// eventually polls cond for up to 30 s (BGP needs a few seconds to connect).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tb *testbed) route(t testing.TB, vrf dataplane.VRFID, p netip.Prefix) (dataplane.Route, bool) {
	rs, err := tb.dp.Routes(vrf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Prefix == p {
			return r, true
		}
	}
	return dataplane.Route{}, false
}

// TestAgentEVPN: routes from a real BGP peer reach the data path in every
// importing VRF with their own label; the leaf's own subnet is advertised
// with its RT, label and router MAC; withdrawal and peer loss remove
// exactly what they should; a reload changes only the difference.
func TestAgentEVPN(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	red, green := tb.agent.ids["RED"], tb.agent.ids["GREEN"]
	ctx := context.Background()

	// The leaf advertises its tenant subnet (redistribute connected).
	eventually(t, "the fabric hears 192.168.100.0/24 from the leaf", func() bool {
		select {
		case e := <-tb.heard:
			p := e.Route
			return !e.Withdraw && p.Prefix == pfx("192.168.100.0/24") && p.VNI == 4001 && p.VTEP == addr("10.10.10.10") &&
				p.RouterMAC.String() == routerMAC.String() && len(p.RTs) == 1 && p.RTs[0] == (bgp.RT{ASN: 65110, Value: 4001})
		default:
			return false
		}
	})

	// leaf01's RED subnet: into RED and, leaked, into GREEN, label 4001.
	if err := tb.fabric.Advertise(ctx, fromLeaf01("192.168.1.0/24", 4001)); err != nil {
		t.Fatal(err)
	}
	want := dataplane.Remote{VTEP: addr("10.10.10.1"), VNI: 4001, RouterMAC: leaf01MAC}
	for _, vrf := range []dataplane.VRFID{red, green} {
		eventually(t, "192.168.1.0/24 in the data path", func() bool {
			r, ok := tb.route(t, vrf, pfx("192.168.1.0/24"))
			return ok && r.Kind == dataplane.RouteRemote && len(r.Remotes) == 1 && r.Remotes[0].VTEP == want.VTEP && r.Remotes[0].VNI == want.VNI
		})
	}
	// The show commands, through the socket xleafctl uses.
	sock := t.TempDir() + "/xleafd.sock"
	sctx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go tb.agent.Serve(sctx, sock, nil)
	eventually(t, "the socket", func() bool { _, err := os.Stat(sock); return err == nil })
	var rt show.RouteTable
	call(t, sock, &rt, "show", "route", "vrf", "GREEN")
	got := map[string]show.Route{}
	for _, r := range rt.Routes {
		got[r.Prefix] = r
	}
	if r := got["192.168.1.0/24"]; r.Protocol != "bgp" || !r.Installed || len(r.Nexthops) != 1 ||
		r.Nexthops[0] != (show.Nexthop{Via: "10.10.10.1", Label: 4001}) {
		t.Errorf("show route vrf GREEN: 192.168.1.0/24 = %+v, want via 10.10.10.1 label 4001 (RED's, leaked)", r)
	}
	if r := got["192.168.100.0/24"]; r.Protocol != "connected" || r.Nexthops[0].VRF != "RED" {
		t.Errorf("show route vrf GREEN: RED's subnet leaked as %+v", r)
	}
	if r := got["0.0.0.0/0"]; !r.Unreach {
		t.Errorf("show route vrf GREEN: no default unreachable: %+v", r)
	}
	var info show.BGPInfo
	call(t, sock, &info, "show", "vrf", "RED", "evpn", "bgp-info")
	if info.LocalVTEP != "10.10.10.10" || info.RouterMAC != routerMAC.String() || !slices.Equal(info.ExportRTs, []string{"65110:4001"}) ||
		!slices.Equal(info.ImportRTs, []string{"0:4001", "0:4002"}) {
		t.Errorf("bgp-info: %+v", info)
	}
	var sum show.Summary
	call(t, sock, &sum, "show", "bgp", "summary")
	if len(sum.Peers) != 1 || sum.Peers[0].State != "established" || sum.Peers[0].Neighbor != "127.0.0.2" {
		t.Errorf("summary: %+v", sum)
	}
	if _, err := Call(sock, []string{"show", "nonsense"}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}

	// Metrics: routes per VRF and the session, as Prometheus scrapes them.
	reg := prometheus.NewRegistry()
	reg.MustRegister(tb.agent.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	metric := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			metric[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if metric["xleaf_vrf_routes/GREEN"] < 2 || metric["xleaf_bgp_peer_up/127.0.0.2"] != 1 || metric["xleaf_bgp_evpn_updates_total/update"] < 1 {
		t.Errorf("metrics: %v", metric)
	}
	// The guide's GREEN has a /16 with /24s in it: one 1 KiB chunk.
	if metric["xleaf_fib_chunks/1024/total"] < 1 || metric["xleaf_fib_chunks/1024/used"] < 1 || metric["xleaf_fib_chunks/64/total"] < 1 {
		t.Errorf("metrics: xleaf_fib_chunks %v", metric)
	}
	for _, result := range []string{"sent", "suppressed", "unroutable"} {
		if _, ok := metric["xleaf_icmp_errors_total/"+result+"/RED"]; !ok {
			t.Errorf("metrics: no xleaf_icmp_errors_total for RED, %s: %v", result, metric)
		}
	}

	// A GREEN host route makes RED's aggregate appear as a blackhole.
	if err := tb.fabric.Advertise(ctx, fromLeaf01("192.168.2.10/32", 4002)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "RED's aggregate 192.168.2.0/24 installed as a blackhole", func() bool {
		r, ok := tb.route(t, red, pfx("192.168.2.0/24"))
		return ok && r.Kind == dataplane.RouteBlackhole
	})
	if err := tb.fabric.Withdraw(ctx, fromLeaf01("192.168.2.10/32", 4002)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the aggregate gone with its contributor", func() bool {
		_, ok := tb.route(t, red, pfx("192.168.2.0/24"))
		return !ok
	})

	// Reload: GREEN stops importing RED's target.
	cfg, err := config.Parse("leaf.cfg", []byte(strings.Replace(leafConfig,
		"nv set vrf GREEN router bgp route-import from-evpn route-target ANY:4001\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.agent.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.route(t, green, pfx("192.168.1.0/24")); ok {
		t.Error("GREEN keeps RED's route after its import was removed")
	}
	if _, ok := tb.route(t, red, pfx("192.168.1.0/24")); !ok {
		t.Error("RED lost its own route in a reload that did not touch it")
	}

	// An invalid file is rejected whole; nothing changes.
	bad := t.TempDir() + "/bad.cfg"
	os.WriteFile(bad, []byte(strings.Replace(leafConfig, "evpn vni 4002", "evpn vni 4001", 1)+"nv set router bgp foo 1\n"), 0o644)
	before, _ := tb.dp.Routes(red)
	err = tb.agent.Reload(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("reload of a bad file: %v, want it rejected with the unknown key named", err)
	}
	if after, _ := tb.dp.Routes(red); len(after) != len(before) || tb.agent.cfg.Load() != cfg {
		t.Error("a rejected reload changed the running state")
	}

	// Peer loss removes what the peer sent.
	tb.fabric.Stop(false)
	eventually(t, "routes gone with the peer", func() bool {
		_, ok := tb.route(t, red, pfx("192.168.1.0/24"))
		return !ok
	})
	if r, ok := tb.route(t, red, pfx("192.168.100.0/24")); !ok || r.Kind != dataplane.RouteLocal {
		t.Errorf("the connected subnet went with the peer: %v %v", r, ok)
	}
}

// TestAgentHosts: a packet for an unresolved host makes the agent have the
// kernel resolve it; the host then reaches the data path's neighbours and
// is advertised as a Type-2 route with RED's L3VNI.
func TestAgentHosts(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	host := addr("192.168.100.10")
	// A frame routed in RED to the host: the data path has no neighbour
	// for it yet, drops it and reports the miss.
	eventually(t, "the host resolved and forwarded to", func() bool { return tb.forwardsTo(t, host) })
	eventually(t, "the fabric hears the host as a Type-2 route", func() bool {
		select {
		case e := <-tb.heard:
			p := e.Route
			return !e.Withdraw && p.Type2 && p.Prefix == netip.PrefixFrom(host, 32) && p.VNI == 4001 && p.RTs[0] == (bgp.RT{ASN: 65110, Value: 4001})
		default:
			return false
		}
	})
	// The host goes: the neighbour and the advertisement go too.
	netns.IP(t, "neigh", "del", host.String(), "dev", "swp10")
	eventually(t, "the fabric hears the host withdrawn", func() bool {
		select {
		case e := <-tb.heard:
			return e.Withdraw && e.Route.Type2 && e.Route.Prefix == netip.PrefixFrom(host, 32)
		default:
			return false
		}
	})
}

// TestAgentRestart: a restarted agent keeps the routes the pinned data
// path holds forwarding while BGP converges again, then removes only what
// it did not re-learn.
func TestAgentRestart(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	ctx := context.Background()
	red := tb.agent.ids["RED"]
	if err := tb.fabric.Advertise(ctx, fromLeaf01("192.168.1.0/24", 4001)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "192.168.1.0/24 installed", func() bool { _, ok := tb.route(t, red, pfx("192.168.1.0/24")); return ok })
	tb.stopAgent()
	// What a previous run left that nobody wants any more.
	stale := dataplane.Route{Prefix: pfx("10.99.0.0/16"), Kind: dataplane.RouteBlackhole}
	if err := tb.dp.SetRoute(red, stale); err != nil {
		t.Fatal(err)
	}

	tb.startAgent(t, 10*time.Second) // the session is back within its 5 s connect retry
	if tb.agent.ids["RED"] != red {
		t.Fatalf("RED's id changed across the restart: %d, was %d", tb.agent.ids["RED"], red)
	}
	for _, p := range []netip.Prefix{pfx("192.168.1.0/24"), stale.Prefix} {
		if _, ok := tb.route(t, red, p); !ok {
			t.Errorf("%v flushed at restart, before BGP converged", p)
		}
	}
	eventually(t, "the stale route swept after the grace period", func() bool { _, ok := tb.route(t, red, stale.Prefix); return !ok })
	if _, ok := tb.route(t, red, pfx("192.168.1.0/24")); !ok {
		t.Error("a re-learned route was swept")
	}
}

// TestAgentRestartDetachesRemovedPorts: a port an earlier run attached and
// the new configuration no longer has loses the program (it would go on
// routing its packets in its old VRF otherwise).
func TestAgentRestartDetachesRemovedPorts(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	if !xdpOn(t, "swp10") {
		t.Fatal("swp10 has no XDP program after the first start")
	}
	tb.stopAgent()
	var lines []string
	for _, l := range strings.Split(leafConfig, "\n") {
		if !strings.Contains(l, "interface swp10") {
			lines = append(lines, l)
		}
	}
	cfg, err := config.Parse("leaf.cfg", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	tb.cfg = cfg
	tb.startAgent(t, time.Minute)
	if xdpOn(t, "swp10") {
		t.Error("swp10 is no longer configured but keeps the XDP program")
	}
	if names, err := tb.dp.Attached(); err != nil || slices.Contains(names, "swp10") {
		t.Errorf("attached: %v %v", names, err)
	}
}

func xdpOn(t *testing.T, ifname string) bool {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
}

// TestAgentRejectsForeignNeighbours: a neighbour entry on a tenant port
// for an address outside the port's subnets (a tenant can make the kernel
// learn any ARP sender) becomes neither a route nor an advertisement.
func TestAgentRejectsForeignNeighbours(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	netns.IP(t, "neigh", "replace", "10.99.9.9", "lladdr", "02:00:00:00:99:99", "dev", "swp10", "nud", "permanent")
	netns.IP(t, "neigh", "replace", "192.168.100.77", "lladdr", "02:00:00:00:77:77", "dev", "swp10", "nud", "permanent")
	eventually(t, "the host on the subnet as a route", func() bool {
		entries, _ := tb.agent.pipeline.rib.Table("RED")
		for _, e := range entries {
			if e.Prefix == pfx("192.168.100.77/32") {
				return true
			}
		}
		return false
	})
	entries, _ := tb.agent.pipeline.rib.Table("RED")
	for _, e := range entries {
		if e.Prefix == pfx("10.99.9.9/32") {
			t.Error("a neighbour outside the port's subnets became a route")
		}
	}
}

// TestAgentReloadReplacesVRF: a reload that removes GREEN and adds PURPLE
// with GREEN's VNI gives PURPLE a fresh id and a working table.
func TestAgentReloadReplacesVRF(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	ctx := context.Background()
	green := tb.agent.ids["GREEN"]
	cfg, err := config.Parse("leaf.cfg", []byte(strings.ReplaceAll(leafConfig, "vrf GREEN", "vrf PURPLE")))
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.agent.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	purple, ok := tb.agent.ids["PURPLE"]
	if !ok || purple == green {
		t.Fatalf("PURPLE got id %d (GREEN had %d)", purple, green)
	}
	if _, ok := tb.agent.ids["GREEN"]; ok {
		t.Error("GREEN still has an id")
	}
	if err := tb.fabric.Advertise(ctx, fromLeaf01("192.168.1.0/24", 4001)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "PURPLE imports RED's route", func() bool { _, ok := tb.route(t, purple, pfx("192.168.1.0/24")); return ok })
	if rs, _ := tb.dp.Routes(green); len(rs) != 0 {
		t.Errorf("GREEN's old table still has %d routes", len(rs))
	}
}

// TestAgentVerify: the audit finds the data path in agreement with the RIB
// (every VRF's routes: remote, leaked, connected, local, aggregate), then
// each kind of divergence injected behind the agent's back (a route gone,
// one added, one changed), through xleafctl verify and the agent's own
// periodic run and its metric; and agreement again once repaired.
func TestAgentVerify(t *testing.T) {
	defer func(d time.Duration) { verifyInterval = d }(verifyInterval)
	verifyInterval = 50 * time.Millisecond
	tb := newTestbed(t, leafConfig)
	red, green := tb.agent.ids["RED"], tb.agent.ids["GREEN"]
	ctx := context.Background()
	for _, r := range []bgp.Type5{fromLeaf01("192.168.1.0/24", 4001), fromLeaf01("192.168.2.128/25", 4002)} {
		if err := tb.fabric.Advertise(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "leaf01's routes in both VRFs", func() bool {
		_, a := tb.route(t, green, pfx("192.168.1.0/24"))
		_, b := tb.route(t, red, pfx("192.168.2.128/25"))
		_, c := tb.route(t, red, pfx("192.168.2.0/24")) // the aggregate over it
		return a && b && c
	})
	sock := t.TempDir() + "/xleafd.sock"
	sctx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go tb.agent.Serve(sctx, sock, nil)
	eventually(t, "the socket", func() bool { _, err := os.Stat(sock); return err == nil })
	verify := func() VerifyReport {
		t.Helper()
		var r VerifyReport
		call(t, sock, &r, "verify")
		return r
	}
	if r := verify(); len(r.Differences) != 0 || r.VRFs != 2 || r.Routes < 8 {
		t.Fatalf("in agreement: %+v", r)
	}
	metric := func() float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(tb.agent.Collector())
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "xleaf_dataplane_differences" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}

	// Behind the agent's back: one gone, one added, one changed.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tb.dp.DeleteRoute(green, pfx("192.168.1.0/24")))
	must(tb.dp.SetRoute(red, dataplane.Route{Prefix: pfx("10.99.0.0/16"), Kind: dataplane.RouteBlackhole}))
	must(tb.dp.SetRoute(red, dataplane.Route{Prefix: pfx("192.168.2.128/25"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: addr("10.10.10.99"), VNI: 4002, RouterMAC: leaf01MAC}}}))
	r := verify()
	got := map[string]string{}
	for _, d := range r.Differences {
		got[d.VRF+" "+d.Prefix] = d.Kind
	}
	want := map[string]string{"GREEN 192.168.1.0/24": "missing", "RED 10.99.0.0/16": "extra", "RED 192.168.2.128/25": "different"}
	if !maps.Equal(got, want) {
		t.Errorf("differences %v, want %v (%+v)", got, want, r.Differences)
	}
	var text bytes.Buffer
	data, _ := json.Marshal(r)
	if err := Commands[slices.IndexFunc(Commands, func(c Command) bool { return c.Words == "verify" })].Text(&text, data); err != nil ||
		!strings.Contains(text.String(), "3 differences") || !strings.Contains(text.String(), "via 10.10.10.99 vni 4002") {
		t.Errorf("verify's text: %v\n%s", err, text.String())
	}
	t.Logf("xleafctl verify:\n%s", text.String())
	eventually(t, "the periodic audit's metric says 3", func() bool { return metric() == 3 })

	// Repaired (as the agent would on its next change: here by hand).
	must(tb.dp.DeleteRoute(red, pfx("10.99.0.0/16")))
	must(tb.dp.SetRoute(green, dataplane.Route{Prefix: pfx("192.168.1.0/24"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: addr("10.10.10.1"), VNI: 4001, RouterMAC: leaf01MAC}}}))
	must(tb.dp.SetRoute(red, dataplane.Route{Prefix: pfx("192.168.2.128/25"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: addr("10.10.10.1"), VNI: 4002, RouterMAC: leaf01MAC}}}))
	eventually(t, "the periodic audit's metric back to 0", func() bool { return metric() == 0 })
}
