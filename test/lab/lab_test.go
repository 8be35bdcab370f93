package lab

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xleaf/xleaf/control"
	"github.com/xleaf/xleaf/control/show"
	"github.com/xleaf/xleaf/dataplane"
)

// TestGuideTablesParse: the guide's text gives the tables the lab is held
// to; a parser that read nothing would make every comparison pass.
func TestGuideTablesParse(t *testing.T) {
	tables, err := GuideTables()
	if err != nil {
		t.Fatal(err)
	}
	for key, n := range map[string]int{"borderleaf01/RED": 6, "borderleaf01/GREEN": 6, "borderleaf04/RED": 6, "borderleaf04/GREEN": 6} {
		if len(tables[key]) != n {
			t.Errorf("%s: %d routes parsed, want %d", key, len(tables[key]), n)
		}
	}
	want := Route{Via: []string{"10.10.10.1", "10.10.10.2"}, Label: 4002}
	if got := tables["borderleaf01/RED"]["192.168.2.10/32"]; got.String() != want.String() {
		t.Errorf("borderleaf01 RED 192.168.2.10/32: %v, want %v", got, want)
	}
	if !tables["borderleaf04/RED"]["192.168.20.0/24"].Blackhole {
		t.Error("borderleaf04 RED 192.168.20.0/24 should be the blackhole aggregate")
	}
	both, err := DualStackTables()
	if err != nil {
		t.Fatal(err)
	}
	for key, tbl := range tables {
		if len(both[key]) != 2*len(tbl) {
			t.Errorf("%s: %d routes with the IPv6 twins, want %d", key, len(both[key]), 2*len(tbl))
		}
	}
	if got := both["borderleaf01/RED"]["2001:db8:2::10/128"]; got.String() != want.String() {
		t.Errorf("borderleaf01 RED 2001:db8:2::10/128: %v, want %v", got, want)
	}
	if !both["borderleaf04/RED"]["2001:db8:20::/64"].Blackhole {
		t.Error("borderleaf04 RED 2001:db8:20::/64 should be the blackhole aggregate")
	}
}

// TestLab brings the guide's fabric up, with xleafd on every switch, and
// holds it to the guide and to real traffic. It cleans up after itself,
// also when it fails.
func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, XDP): run 'make test' as root; CI does")
	}
	for _, tool := range []string{"ping", "iperf3", "sysctl", "ethtool", "traceroute"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: .ci/run installs it (apt-get install iputils-ping iperf3 procps ethtool traceroute)", tool)
		}
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/xleafd", "../../cmd/xleafctl").CombinedOutput(); err != nil {
		t.Fatalf("build xleafd: %v\n%s", err, out)
	}
	if !HaveFRR() {
		t.Fatal("FRR is missing: .ci/run installs it (apt-get install frr); the interop tests need it")
	}
	l := &Lab{Prefix: "xle-", Bin: bin, FRR: true, Log: t.Logf}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the agents' logs stay in %s", l.LogDir())
			for _, sw := range Switches {
				if b, err := os.ReadFile(l.LogFile(sw.Name)); err == nil {
					t.Logf("%s log (tail):\n%s", sw.Name, tailLines(string(b), 15))
				}
			}
		}
		l.Down()
	})
	ctx := context.Background()
	if err := l.Up(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("convergence: the border leafs' tables are the guide's and their IPv6 twins", func(t *testing.T) {
		if err := l.Converge(ctx, 180*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("ping across every leak path, and BLUE isolated, for IPv4 and IPv6", func(t *testing.T) {
		for _, f := range append(slices.Clone(Flows), Flows6...) {
			r, err := l.RunFlow(f)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				t.Errorf("%s: sent %d received %d ttls %v (want %d), XDP forwarded %d, leafs' kernels routed %d\n%s",
					f.Path, r.Sent, r.Received, r.TTLs, 64-f.Hops, r.Forwarded, r.KernelRouted, r.Output)
			}
		}
	})

	t.Run("underlay next hops: every remote VTEP resolved, and no packet looks up the kernel's FIB", func(t *testing.T) {
		before, err := l.Underlays()
		if err != nil {
			t.Fatal(err)
		}
		vteps := 0
		for sw, u := range before {
			if !u.Live {
				t.Errorf("%s: underlay next hops not in use", sw)
			}
			for _, v := range u.VTEPs {
				vteps++
				if !v.Resolved {
					t.Errorf("%s: VTEP %s not resolved: %s", sw, v.VTEP, v.Reason)
				}
			}
		}
		if vteps == 0 {
			t.Fatal("no agent has a remote VTEP")
		}
		r, err := l.RunFlow(Flows[0])
		if err != nil || !r.OK() {
			t.Fatalf("%s: %v %+v", Flows[0].Path, err, r)
		}
		after, err := l.Underlays()
		if err != nil {
			t.Fatal(err)
		}
		for sw, u := range after {
			if n := u.FallbackPackets - before[sw].FallbackPackets; n != 0 {
				t.Errorf("%s: %d packets looked up the kernel's FIB during %s", sw, n, Flows[0].Path)
			}
		}
		t.Logf("%d remote VTEPs resolved on %d agents; %d packets forwarded by XDP without a kernel lookup", vteps, len(after), r.Forwarded)
	})

	t.Run("verify: every agent's data path agrees with its RIB and its hosts", func(t *testing.T) {
		routes, hosts := 0, 0
		for _, sw := range Switches {
			var r control.VerifyReport
			if err := l.Ctl(sw.Name, &r, "verify"); err != nil {
				t.Fatalf("%s: %v", sw.Name, err)
			}
			for _, d := range r.Differences {
				t.Errorf("%s: vrf %s %s %s: RIB %q, data path %q", sw.Name, d.VRF, d.Prefix, d.Kind, d.Want, d.Got)
			}
			routes += r.Routes
			hosts += r.Hosts
		}
		if routes == 0 || hosts == 0 {
			t.Fatalf("%d routes and %d hosts compared", routes, hosts)
		}
		t.Logf("%d routes and %d hosts compared on %d agents", routes, hosts, len(Switches))
	})

	t.Run("leak matrix: a ping across the DCI leak, counted cell by cell on every switch it crosses", func(t *testing.T) {
		before, err := l.LeakCells()
		if err != nil {
			t.Fatal(err)
		}
		r, err := l.RunFlow(Flows[0]) // red1 -> green2, leaked at borderleaf04; replies leaked at borderleaf01
		if err != nil || !r.OK() {
			t.Fatalf("%s: %v %+v", Flows[0].Path, err, r)
		}
		after, err := l.LeakCells()
		if err != nil {
			t.Fatal(err)
		}
		// The echo requests: site 1's leaf sends RED's packet with site
		// 2's RED VNI (5001); borderleaf04 leaks it into GREEN; site 2's
		// leaf delivers it in GREEN. The replies: site 2's leaf sends
		// GREEN's with site 1's GREEN VNI (4002); borderleaf01 leaks it
		// into RED; site 1's leaf delivers it in RED. A site's two leafs
		// share its cells (ECMP picks one).
		site := map[string]string{"leaf01": "site 1 leafs", "leaf02": "site 1 leafs", "leaf03": "site 2 leafs", "leaf04": "site 2 leafs"}
		n := uint64(r.Sent)
		want := map[string]map[[2]string]uint64{
			"site 1 leafs": {{"RED", "vni 5001"}: n, {"RED", "RED"}: n},
			"borderleaf04": {{"RED", "GREEN"}: n},
			"site 2 leafs": {{"GREEN", "GREEN"}: n, {"GREEN", "vni 4002"}: n},
			"borderleaf01": {{"GREEN", "RED"}: n},
		}
		got := map[string]map[[2]string]uint64{}
		for sw, cells := range after {
			who := cmp.Or(site[sw], sw)
			for cell, packets := range cells {
				if moved := packets - before[sw][cell]; moved != 0 {
					if got[who] == nil {
						got[who] = map[[2]string]uint64{}
					}
					got[who][cell] += moved
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("leak matrix cells moved:\n got %v\nwant %v", got, want)
		}
		for _, node := range []string{"borderleaf01", "borderleaf04"} {
			out, err := l.CtlText(node, "show", "vrf", "leak-matrix")
			if err != nil {
				t.Fatalf("%s: %v\n%s", node, err, out)
			}
			t.Logf("%s$ xleafctl show vrf leak-matrix\n%s", node, out)
		}
	})

	t.Run("explain: the guide's leaked DCI flow at borderleaf04, step by step, and as the live program forwards it", func(t *testing.T) {
		var ex show.Explain
		if err := l.Ctl(ExplainDCI.Node, &ex, ExplainDCI.Args...); err != nil {
			t.Fatal(err)
		}
		steps := map[string]show.ExplainStep{}
		for _, s := range ex.Steps {
			steps[s.Step] = s
		}
		if s := steps["vrf"]; s.VRF != "RED" || s.VNI != 5001 {
			t.Errorf("vrf step %+v: want RED, VNI 5001", s)
		}
		if s := steps["route"]; s.Owner != "GREEN" || s.ImportedBy != "ANY:5002" || s.Kind != "remote" {
			t.Errorf("route step %+v: want leaked from GREEN, imported by ANY:5002, remote", s)
		}
		if s := steps["ecmp"]; s.VNI != 5002 {
			t.Errorf("ecmp step %+v: want VNI 5002 on the wire", s)
		}
		if s := steps["verdict"]; s.VRF != "RED" || s.Reason != "forward-remote" || s.To != "GREEN" {
			t.Errorf("verdict %+v: want forward-remote in RED, to GREEN", s)
		}
		if ex.Out == nil || !slices.Contains(ex.Out.Headers, "outer  VXLAN VNI 5002") {
			t.Errorf("frame out %+v: want VXLAN VNI 5002", ex.Out)
		}
		// The live program, attached to the same port, does exactly this.
		in, err := hex.DecodeString(ex.In.Hex)
		if err != nil {
			t.Fatal(err)
		}
		action, out, err := l.RunLive(ExplainDCI.Node, "swp3", in)
		if err != nil {
			t.Fatal(err)
		}
		xdpActions := map[int]string{dataplane.XDPDrop: "XDP_DROP", dataplane.XDPPass: "XDP_PASS", dataplane.XDPTx: "XDP_TX", dataplane.XDPRedirect: "XDP_REDIRECT"}
		if got := fmt.Sprintf("%s %x", xdpActions[action], out); got != ex.Action+" "+ex.Out.Hex {
			t.Errorf("the live program: %s\nexplain:          %s %s", got, ex.Action, ex.Out.Hex)
		}
		text, err := l.CtlText(ExplainDCI.Node, ExplainDCI.Args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		t.Logf("%s$ xleafctl %s\n%s", ExplainDCI.Node, strings.Join(ExplainDCI.Args, " "), text)
	})

	t.Run("TCP and UDP with iperf3 across sites", func(t *testing.T) {
		for _, mode := range [][]string{{}, {"-u", "-b", "20M"}} {
			for _, pair := range [][2]string{{"red1", "green2"}, {"green2", "red1"}} {
				if got := iperf(t, l, pair[0], pair[1], mode...); got <= 0 {
					t.Errorf("iperf3 %v %s -> %s: nothing received", mode, pair[0], pair[1])
				}
			}
		}
	})

	t.Run("traceroute across the DCI leak shows every routed hop; BLUE gets net unreachable; the same over IPv6", func(t *testing.T) {
		for _, want := range Traces {
			tr, err := l.Traceroute(want.From, want.To)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tr.Hops, want.Want) {
				t.Errorf("traceroute %s -> %s: hops %q, want %q\n%s", want.From, want.To, tr.Hops, want.Want, tr.Output)
			}
		}
		for _, want := range Traces6 {
			tr, err := l.Traceroute6(want.From, want.To)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tr.Hops, want.Want) {
				t.Errorf("traceroute -6 %s -> %s: hops %q, want %q\n%s", want.From, want.To, tr.Hops, want.Want, tr.Output)
			}
		}
	})

	for _, v6 := range []bool{false, true} {
		name, from := "IPv4", "fragmentation-needed"
		if v6 {
			name, from = "IPv6", "packet too big"
		}
		t.Run("path MTU discovery ("+name+"): TCP across a narrower host link learns its MTU from xleaf and moves", func(t *testing.T) {
			r, err := l.PathMTU(v6)
			if err != nil {
				t.Fatalf("%v\n%s", err, tailLines(r.Output, 10))
			}
			t.Logf("red1 -> green2 (%s) across a %d-byte link: %.0f bytes received, %d retransmits, red1 learned mtu %d", name, NarrowMTU, r.Bytes, r.Retransmits, r.LearnedMTU)
			if r.LearnedMTU != NarrowMTU {
				t.Errorf("red1's route to green2 has mtu %d, want %d from xleaf's %s", r.LearnedMTU, NarrowMTU, from)
			}
			if r.Bytes < 1e6 {
				t.Errorf("%.0f bytes received in 3 s: the flow did not move", r.Bytes)
			}
		})
	}

	testInterop(t, l)
	testInteropGR(t, l)

	// The hosts' neighbour entries now. From here to "quiet hosts" only
	// red1 and green2 speak (the restart test's flows): the others stay
	// quiet for more than the kernel's 60 s gc_stale_time, and the lab's
	// crowd keeps its collection running. The data path's packets never
	// pass the kernel: the agents must keep the entries themselves.
	hostsBefore, _, err := l.HostNeighbours()
	if err != nil {
		t.Fatal(err)
	}
	quietSince := time.Now()

	t.Run("graceful restart: an agent killed or stopped for 10 s and started again loses no packet", func(t *testing.T) {
		for _, o := range []RestartOptions{
			{Node: "borderleaf01", Signal: syscall.SIGKILL},
			{Node: "borderleaf01", Signal: syscall.SIGTERM},
			{Node: "spine1", Signal: syscall.SIGKILL},
			{Node: "leaf01", Signal: syscall.SIGKILL},
		} {
			o.Down, o.Rate, o.Watch = 10*time.Second, 2000, 12*time.Second
			e := l.RestartUnderTraffic(ctx, o)
			if e.Err != "" {
				t.Fatalf("%s: %s", e.Name, e.Err)
			}
			for _, f := range e.Flows {
				t.Logf("%s: %s sent %d lost %d (longest outage %v)", e.Name, f.Flow, f.Loss.Sent, f.Loss.Lost, f.Loss.Outage)
				if f.Loss.Lost > 0 {
					t.Errorf("%s: %s lost %d of %d datagrams (longest outage %v from %s)", e.Name, f.Flow, f.Loss.Lost, f.Loss.Sent,
						f.Loss.Outage, f.Loss.OutFrom.Format("15:04:05.000"))
				}
			}
		}
	})

	t.Run("quiet hosts: their neighbour entries kept minutes later, and traffic to them passes, both families", func(t *testing.T) {
		have, entries6, err := l.HostNeighbours()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d host entries, quiet for %v; the lab's namespaces hold %d IPv6 neighbour entries", len(hostsBefore),
			time.Since(quietSince).Round(time.Second), entries6)
		for e := range hostsBefore {
			if !have[e] {
				t.Errorf("the kernel lost the host entry %s", e)
			}
		}
		// green1 and red2 have been quiet: their flows across the DCI
		// need their host routes at both ends.
		for _, f := range []Flow{Flows[2], Flows[3], Flows6[2], Flows6[3]} {
			r, err := l.RunFlow(f)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				t.Errorf("%s: sent %d received %d", f.Path, r.Sent, r.Received)
			}
		}
	})

	t.Run("failure: a leaf's agent stops, its routes go, and come back", func(t *testing.T) {
		host := "192.168.1.10/32"
		pair := func() []string {
			tbl, err := l.XleafTable("borderleaf01", "RED")
			if err != nil {
				return nil
			}
			return tbl[host].Via
		}
		// Shut down for good: a graceful stop would leave its routes at
		// its peers for the restart time.
		if err := l.Shutdown("leaf02"); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		waitFor(t, "borderleaf01 drops leaf02 from the ECMP pair", 30*time.Second, func() bool {
			v := pair()
			return len(v) == 1 && v[0] == "10.10.10.1"
		})
		t.Logf("leaf02's routes withdrawn %v after its agent stopped", time.Since(stopped).Round(100*time.Millisecond))
		if r, err := l.RunFlow(Flows[1]); err != nil || !r.OK() { // GREEN site 2 -> RED site 1 now only via leaf01
			t.Errorf("traffic to site 1 with leaf02 down: %v %+v", err, r)
		}
		if err := l.Restart("leaf02"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the ECMP pair back", 60*time.Second, func() bool {
			l.Announce()
			return len(pair()) == 2
		})
	})
}

// iperf runs a 2-second iperf3 from one host to another and returns the
// bytes the receiver got.
func iperf(t *testing.T, l *Lab, from, to string, args ...string) float64 {
	t.Helper()
	if out, err := l.Exec(to, "iperf3", "-s", "-D", "-1", "-p", "5201"); err != nil {
		t.Fatalf("iperf3 server on %s: %v %s", to, err, out)
	}
	time.Sleep(300 * time.Millisecond)
	cmd := append([]string{"iperf3", "-c", HostAddr(to), "-p", "5201", "-t", "2", "-J"}, args...)
	out, err := l.Exec(from, cmd...)
	if err != nil {
		t.Fatalf("iperf3 %s -> %s: %v\n%s", from, to, err, tailLines(out, 10))
	}
	var res struct {
		End struct {
			SumReceived struct{ Bytes float64 } `json:"sum_received"`
			Sum         struct {
				Bytes       float64
				LostPercent float64 `json:"lost_percent"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, tailLines(out, 10))
	}
	got := res.End.SumReceived.Bytes
	if len(args) > 0 { // UDP: the server's count, less what it lost
		got = res.End.Sum.Bytes * (100 - res.End.Sum.LostPercent) / 100
	}
	t.Logf("iperf3 %v %s -> %s: %.0f bytes received", args, from, to, got)
	return got
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// testInterop holds FRR's leaf and xleaf's to each other.
func testInterop(t *testing.T, l *Lab) {
	t.Run("interop: FRR shows xleaf's Type-5 routes with their RT, VNI and router MAC", func(t *testing.T) {
		want := []FRRType5{
			{Prefix: "192.168.1.0/24", NextHop: "10.10.10.1", RouterMAC: "44:38:39:22:dd:01", VNI: 4001, RTs: []string{"65101:4001"}},
			{Prefix: "192.168.2.0/24", NextHop: "10.10.10.10", RouterMAC: "44:38:39:22:dd:06", VNI: 4001, RTs: []string{"65110:4001"}}, // an aggregate
		}
		waitFor(t, "FRR to hold xleaf's routes", 60*time.Second, func() bool {
			got, err := l.FRRRoutes()
			if err != nil {
				t.Log(err)
				return false
			}
			found := 0
			for _, w := range want {
				for _, g := range got {
					if fmt.Sprint(g) == fmt.Sprint(w) {
						found++
						break
					}
				}
			}
			return found == len(want)
		})
	})

	t.Run("interop: xleaf imports FRR's Type-5 route, and leaks it", func(t *testing.T) {
		waitFor(t, "leaf01 RED and GREEN hold FRR's subnet", 60*time.Second, func() bool {
			red, err1 := l.XleafTable("leaf01", "RED")
			green, err2 := l.XleafTable("leaf01", "GREEN")
			return err1 == nil && err2 == nil &&
				red[FRRSubnet].String() == "via 10.10.10.5" && green[FRRSubnet].String() == "via 10.10.10.5 label 4001"
		})
	})

	t.Run("route targets and origins: FRR's IPv4-address target imported; redistributed subnets incomplete, as in the guide", func(t *testing.T) {
		type path struct {
			Origin string
			Peer   string
			RTs    []string `json:"route-targets"`
			ASPath []uint32 `json:"as-path"`
		}
		paths := func(node, vrf, prefix string) []path {
			var table struct {
				Prefixes []struct {
					Prefix string
					Paths  []path
				}
			}
			if err := l.Ctl(node, &table, "show", "bgp", "vrf", vrf); err != nil {
				t.Fatal(err)
			}
			for _, p := range table.Prefixes {
				if p.Prefix == prefix {
					return p.Paths
				}
			}
			return nil
		}
		frr := paths("leaf01", "RED", FRRSubnet)
		if len(frr) == 0 || fmt.Sprint(frr[0].RTs) != "[10.10.10.5:4001]" {
			t.Errorf("FRR's %s at leaf01: %+v, want it imported with route target 10.10.10.5:4001", FRRSubnet, frr)
		}
		// The guide, borderleaf01's GREEN: *= 192.168.2.0/24 10.10.10.2< ... 0 65199 65102 ?
		found := false
		for _, p := range paths("borderleaf01", "GREEN", "192.168.2.0/24") {
			if len(p.ASPath) == 2 && p.ASPath[1] == 65102 {
				found = true
				if p.Origin != "?" {
					t.Errorf("leaf02's connected 192.168.2.0/24 at borderleaf01 has origin %q, want ? (incomplete) as in the guide", p.Origin)
				}
			}
		}
		if !found {
			t.Error("borderleaf01's GREEN has no path to 192.168.2.0/24 from leaf02")
		}
	})

	t.Run("interop: traffic between FRR's and xleaf's hosts, also leaked through borderleaf01", func(t *testing.T) {
		if err := l.ConvergeFRR(120 * time.Second); err != nil {
			t.Fatal(err)
		}
		missing, err := l.FRRRMACs()
		if err != nil || len(missing) > 0 {
			t.Errorf("FRR's zebra lacks the router MAC of VTEPs it routes to: %v %v", missing, err)
		}
		for _, f := range append(slices.Clone(FRRFlows), FRRFlows6...) {
			r, err := l.RunFlow(f)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				t.Errorf("%s: sent %d received %d ttls %v (want %d), XDP forwarded %d\n%s", f.Path, r.Sent, r.Received, r.TTLs, 64-f.Hops, r.Forwarded, r.Output)
			}
		}
	})

	// Either end of the session between GoBGP and FRR restarting at once:
	// FRR's bgpd crashes and comes back, then spine1's xleafd.
	for _, restart := range []struct {
		end string
		do  func() error
	}{
		{"FRR's bgpd", l.RestartFRRBGP},
		{"spine1's xleafd", func() error {
			if err := l.Stop("spine1"); err != nil {
				return err
			}
			return l.Restart("spine1")
		}},
	} {
		t.Run("interop: "+restart.end+" restarts at once; the session and FRR's traffic come back", func(t *testing.T) {
			before := time.Now()
			if err := restart.do(); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			waitFor(t, "spine1's and FRR's sessions established anew", 60*time.Second, func() bool { return frrSessionUp(l, before) })
			t.Logf("the session between spine1 and FRR established %v after %s started again", time.Since(back).Round(100*time.Millisecond), restart.end)
			if err := l.ConvergeFRR(120 * time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("FRR's traffic back %v after %s started again", time.Since(back).Round(100*time.Millisecond), restart.end)
			for _, f := range FRRFlows {
				if r, err := l.RunFlow(f); err != nil || !r.OK() {
					t.Errorf("%s after the restart: %v %+v", f.Path, err, r)
				}
			}
		})
	}
}

// testInteropGR: graceful restart between FRR and xleaf, each way, for
// IPv4 unicast (FRR 8.4 has none for l2vpn-evpn, so those routes go and
// come back as without it).
func testInteropGR(t *testing.T, l *Lab) {
	t.Run("interop: graceful restart with FRR each way (IPv4 unicast; FRR 8.4 has none for EVPN)", func(t *testing.T) {
		// FRR restarts; spine1's xleafd is the helper.
		before := time.Now()
		if err := l.KillFRRBGP(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "spine1 to show FRR restarting", 10*time.Second, func() bool { return peerRestarting(l, "spine1", "swp7") })
		if out, err := l.Exec("spine1", "ip", "route", "show", "10.10.10.5/32"); err != nil || !strings.Contains(out, "10.10.10.5") {
			t.Errorf("spine1 dropped FRR's loopback while FRR restarts gracefully: %q %v", out, err)
		}
		if err := l.StartFRRBGP(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "spine1's and FRR's sessions established anew", 60*time.Second, func() bool { return frrSessionUp(l, before) })
		up := time.Now()
		waitFor(t, "spine1 to end FRR's restart (its End-of-RIB)", 60*time.Second, func() bool { return !peerRestarting(l, "spine1", "swp7") })
		t.Logf("FRR's restart over at spine1 %v after the session came back", time.Since(up).Round(100*time.Millisecond))

		// spine1's xleafd restarts; FRR is the helper.
		before = time.Now()
		if err := l.Kill("spine1", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "FRR to keep spine1's IPv4 routes, stale", 10*time.Second, func() bool {
			out, _ := l.Vtysh("show bgp ipv4 unicast")
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[1] == "10.10.10.1/32" {
					return strings.HasPrefix(f[0], "S")
				}
			}
			return false
		})
		if err := l.Restart("spine1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "spine1's and FRR's sessions established anew", 60*time.Second, func() bool { return frrSessionUp(l, before) })
		if err := l.ConvergeFRR(120 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// peerRestarting says whether a switch's xleafd shows a neighbour in
// graceful restart.
func peerRestarting(l *Lab, node, neighbor string) bool {
	var s struct {
		Peers []struct {
			Neighbor string
			GR       struct {
				PeerRestarting bool `json:"peer-restarting"`
			} `json:"graceful-restart"`
		}
	}
	if err := l.Ctl(node, &s, "show", "bgp", "summary"); err != nil {
		return false
	}
	for _, p := range s.Peers {
		if p.Neighbor == neighbor {
			return p.GR.PeerRestarting
		}
	}
	return false
}

// frrSessionUp says whether both ends of the session between spine1 and
// FRR's leaf say it has been established since then.
func frrSessionUp(l *Lab, since time.Time) bool {
	up := 0
	for _, ss := range l.Sessions() {
		for _, s := range ss.Sessions {
			end := ss.Node == "spine1" && s.Neighbor == "swp7" || ss.Node == FRRLeaf+" (FRR)"
			if end && s.State == "established" && s.Since.After(since) {
				up++
			}
		}
	}
	return up == 2
}
