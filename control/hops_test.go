package control

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

// The hops part against the real kernel: the fixture's underlay (leaf01
// and leaf02 over an unnumbered spine link, borderleaf04 over the numbered
// DCI link, one VTEP behind a silent next hop, one with no route).

var dciMAC2 = net.HardwareAddr{0x02, 0, 0, 0, 0x03, 0x99}

func member(ifc *net.Interface, dmac net.HardwareAddr, mtu int) dataplane.UnderlayMember {
	return dataplane.UnderlayMember{Ifindex: ifc.Index, SrcMAC: ifc.HardwareAddr, DstMAC: dmac, MTU: mtu}
}

func hopOf(ms ...dataplane.UnderlayMember) dataplane.UnderlayHop {
	return dataplane.UnderlayHop{Members: ms}
}

// TestResolveUnderlay: what the agent resolves is what the kernel has, for
// every kind of underlay route.
func TestResolveUnderlay(t *testing.T) {
	l := fixture.New(t)
	spine := member(l.Swp1, fixture.SpineMAC, fixture.UnderlayMTU)
	dci := member(l.Swp3, fixture.DCIMAC, fixture.UnderlayMTU)
	check := func(what string, vtep netip.Addr, want dataplane.UnderlayHop) {
		t.Helper()
		got, err := ResolveUnderlay(vtep)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if !got.Equal(want) {
			t.Errorf("%s: resolved %+v, want %+v", what, got, want)
		}
	}
	fails := func(what string, vtep netip.Addr, because string) {
		t.Helper()
		if got, err := ResolveUnderlay(vtep); err == nil || !strings.Contains(err.Error(), because) {
			t.Errorf("%s: resolved %+v, err %v; want an error saying %q", what, got, err, because)
		}
	}
	check("via an IPv6 link-local (RFC 5549)", fixture.Leaf01, hopOf(spine))
	check("via a numbered next hop", fixture.Border04, hopOf(dci))
	fails("next hop without a neighbour", fixture.Unresolved, "not resolved")
	fails("no route", fixture.Unrouted, "no route")
	check("connected", fixture.DCIPeer, hopOf(dci))

	netns.IP(t, "route", "replace", "10.10.20.0/24", "via", fixture.DCIPeer.String(), "dev", "swp3", "mtu", "1400")
	check("a route with an MTU, not locked: the kernel forwards at the device's", fixture.Border04, hopOf(dci))
	netns.IP(t, "route", "replace", "10.10.20.0/24", "via", fixture.DCIPeer.String(), "dev", "swp3", "mtu", "lock", "1400")
	check("a route with a locked MTU", fixture.Border04, hopOf(member(l.Swp3, fixture.DCIMAC, 1400)))
	weighted := netip.MustParseAddr("10.10.50.2")
	netns.IP(t, "route", "add", weighted.String()+"/32",
		"nexthop", "via", "inet6", fixture.SpineLL.String(), "dev", "swp1", "weight", "3",
		"nexthop", "via", fixture.DCIPeer.String(), "dev", "swp3", "weight", "1")
	fails("multipath of unequal weights (the kernel's)", weighted, "unequal weights")

	ecmp := netip.MustParseAddr("10.10.50.1")
	netns.IP(t, "route", "add", ecmp.String()+"/32",
		"nexthop", "via", "inet6", fixture.SpineLL.String(), "dev", "swp1",
		"nexthop", "via", fixture.DCIPeer.String(), "dev", "swp3")
	check("multipath", ecmp, hopOf(spine, dci))
	netns.IP(t, "link", "set", "dci", "down") // swp3 loses its carrier
	check("multipath, one link down", ecmp, hopOf(spine))
	fails("single path, link down", fixture.Border04, "down")
}

// TestResolvedHopsForwardAsTheKernel: frames sent with the next hops the
// agent resolved are byte for byte those the kernel's own lookup gives.
func TestResolvedHopsForwardAsTheKernel(t *testing.T) {
	l := fixture.New(t)
	// An unlocked route MTU below the device's: the kernel's lookup
	// forwards at the device's MTU (the reviewer's case), and so must the
	// resolved next hop; 1400 bytes of payload are over the route's.
	netns.IP(t, "route", "replace", "10.10.20.0/24", "via", fixture.DCIPeer.String(), "dev", "swp3", "mtu", "1400")
	var frames [][]byte
	var ingress []int
	for _, dst := range []string{"192.168.20.9", "192.168.1.10"} {
		f := fixture.Flow{Src: fixture.HostRed, Dst: netip.MustParseAddr(dst), SrcPort: 9, DstPort: 80, TTL: 64, DF: true, Payload: make([]byte, 1400)}
		frames = append(frames, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f))
		ingress = append(ingress, l.Swp10.Index)
	}
	for sport := uint16(1); sport <= 64; sport++ {
		for _, dst := range []string{"192.168.1.10", "192.168.2.10", "192.168.20.9", "192.168.10.9"} {
			f := fixture.Flow{Src: fixture.HostRed, Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: 80, TTL: 64, DF: true}
			frames = append(frames, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, f))
			ingress = append(ingress, l.Swp10.Index)
		}
	}
	run := func() [][]byte {
		var out [][]byte
		for i, f := range frames {
			_, o := fixture.Run(t, l.DP.Program(), ingress[i], f)
			out = append(out, o)
		}
		return out
	}
	kernel := run()
	for _, vtep := range l.DP.RemoteVTEPs() {
		if hop, err := ResolveUnderlay(vtep); err == nil {
			if err := l.DP.SetUnderlayHop(vtep, hop); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.DP.RenewUnderlayHops(time.Hour); err != nil {
		t.Fatal(err)
	}
	before, err := l.DP.UnderlayFallbacks()
	if err != nil {
		t.Fatal(err)
	}
	resolved := run()
	after, _ := l.DP.UnderlayFallbacks()
	if after != before {
		t.Errorf("%d fallbacks with every VTEP resolved", after-before)
	}
	if diff := cmp.Diff(kernel, resolved); diff != "" {
		t.Errorf("resolved next hops forward otherwise than the kernel (-kernel +resolved):\n%s", diff)
	}
}

// TestHopsFollowTheKernel: with the periodic pass off, the kernel's events
// alone keep the data path's next hops right: a next hop's MAC changes, a
// silent next hop answers, a route goes, a multipath route loses a link, a
// route names a new VTEP. It logs how long each change took to reach the
// data path (the window in which packets take the old paths).
func TestHopsFollowTheKernel(t *testing.T) {
	defer func(d time.Duration) { hopsInterval = d }(hopsInterval)
	hopsInterval = time.Hour
	l := fixture.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newHops(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), l.DP)
	if err := h.run(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.stop()
	spine := member(l.Swp1, fixture.SpineMAC, fixture.UnderlayMTU)
	dci := member(l.Swp3, fixture.DCIMAC, fixture.UnderlayMTU)
	want := map[netip.Addr]dataplane.UnderlayHop{fixture.Leaf01: hopOf(spine), fixture.Leaf02: hopOf(spine), fixture.Border04: hopOf(dci)}
	// follows waits for the data path to hold want, and says how long it took.
	follows := func(what string) {
		t.Helper()
		start := time.Now()
		for {
			got, err := l.DP.UnderlayHops()
			if err != nil {
				t.Fatal(err)
			}
			same := len(got) == len(want)
			for vtep, hop := range want {
				same = same && got[vtep].Equal(hop)
			}
			if same {
				t.Logf("%s: in the data path after %v", what, time.Since(start).Round(10*time.Microsecond))
				return
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: data path holds %+v, want %+v", what, got, want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	follows("at start")

	netns.IP(t, "neigh", "replace", fixture.DCIPeer.String(), "lladdr", dciMAC2.String(), "dev", "swp3", "nud", "permanent")
	want[fixture.Border04] = hopOf(member(l.Swp3, dciMAC2, fixture.UnderlayMTU))
	follows("the DCI next hop's MAC changed")

	netns.IP(t, "neigh", "replace", "169.254.3.5", "lladdr", fixture.DCIMAC.String(), "dev", "swp3", "nud", "reachable")
	want[fixture.Unresolved] = hopOf(dci)
	follows("the silent next hop resolved")

	netns.IP(t, "route", "del", "10.10.20.0/24")
	delete(want, fixture.Border04)
	follows("borderleaf04's route withdrawn")

	netns.IP(t, "route", "replace", fixture.Leaf01.String()+"/32",
		"nexthop", "via", "inet6", fixture.SpineLL.String(), "dev", "swp1",
		"nexthop", "via", "169.254.3.5", "dev", "swp3")
	want[fixture.Leaf01] = hopOf(spine, dci)
	follows("leaf01 over two paths")

	netns.IP(t, "link", "set", "dci", "down")
	want[fixture.Leaf01] = hopOf(spine)
	delete(want, fixture.Unresolved)
	follows("the DCI link down")

	vtep := netip.MustParseAddr("10.10.10.3")
	netns.IP(t, "route", "add", vtep.String()+"/32", "via", "inet6", fixture.SpineLL.String(), "dev", "swp1")
	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("192.168.3.0/24"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: vtep, VNI: fixture.RedVNI, RouterMAC: fixture.Leaf01MAC}}}); err != nil {
		t.Fatal(err)
	}
	want[vtep] = hopOf(spine)
	follows("a route naming a new VTEP")
}

// TestHopsProbeUnresolvedPaths: a VTEP over two paths, one of whose next
// hops has no neighbour entry yet (it answers ARP, but nothing has asked):
// the VTEP is resolved over the other path at once, and the hops part makes
// the kernel resolve the missing neighbour, so both paths are in use soon
// after. No packet would: the VTEP's packets go out by the resolved path
// and never ask the kernel.
func TestHopsProbeUnresolvedPaths(t *testing.T) {
	l := fixture.New(t)
	nhMAC := nextHopOnSwp4(t)
	vtep := netip.MustParseAddr("10.10.50.4")
	netns.IP(t, "route", "add", vtep.String()+"/32",
		"nexthop", "via", "inet6", fixture.SpineLL.String(), "dev", "swp1",
		"nexthop", "via", "169.254.4.2", "dev", "swp4")
	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("192.168.95.0/24"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: vtep, VNI: fixture.RedVNI, RouterMAC: fixture.Leaf01MAC}}}); err != nil {
		t.Fatal(err)
	}
	swp4, err := net.InterfaceByName("swp4")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ResolveUnderlay(vtep); err != nil || len(got.Members) != 1 {
		t.Fatalf("before: resolved %+v, %v; want the spine path alone", got, err)
	}

	follow(t, l)
	want := hopOf(member(l.Swp1, fixture.SpineMAC, fixture.UnderlayMTU), member(swp4, nhMAC, 1500))
	start := time.Now()
	for {
		hops, err := l.DP.UnderlayHops()
		if err != nil {
			t.Fatal(err)
		}
		if hops[vtep].Equal(want) {
			t.Logf("both paths in use %v after the hops part started", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("after 5 s the data path holds %+v for %v, want both paths %+v", hops[vtep], vtep, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHopsFollowSourcePolicy: a policy rule on the source (traffic from
// the VTEP takes another table) is followed as the program's own kernel
// lookup follows it (bpf_fib_lookup from the VRF's VTEP): the next hops
// are resolved from the local VTEP, not as from nowhere.
func TestHopsFollowSourcePolicy(t *testing.T) {
	l := fixture.New(t)
	vtep := netip.MustParseAddr("10.10.50.5")
	netns.IP(t, "route", "add", vtep.String()+"/32", "via", "inet6", fixture.SpineLL.String(), "dev", "swp1")
	netns.IP(t, "route", "add", vtep.String()+"/32", "via", fixture.DCIPeer.String(), "dev", "swp3", "table", "100")
	netns.IP(t, "rule", "add", "from", fixture.VTEP.String(), "lookup", "100", "priority", "100")
	t.Cleanup(func() {
		netns.IP(t, "rule", "del", "from", fixture.VTEP.String(), "lookup", "100", "priority", "100")
		netns.IP(t, "route", "flush", "table", "100")
	})
	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("192.168.94.0/24"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: vtep, VNI: fixture.RedVNI, RouterMAC: fixture.Leaf01MAC}}}); err != nil {
		t.Fatal(err)
	}
	// From nowhere, the main table's path: what resolving without the
	// source got, and what the program's lookup does not.
	if got, err := ResolveUnderlay(vtep); err != nil || !got.Equal(hopOf(member(l.Swp1, fixture.SpineMAC, fixture.UnderlayMTU))) {
		t.Fatalf("from nowhere: %+v, %v; want the spine path", got, err)
	}
	follow(t, l)
	hops, err := l.DP.UnderlayHops()
	if err != nil {
		t.Fatal(err)
	}
	if want := hopOf(member(l.Swp3, fixture.DCIMAC, fixture.UnderlayMTU)); !hops[vtep].Equal(want) {
		t.Errorf("resolved %+v, want the policy table's DCI path %+v", hops[vtep], want)
	}
}

// follow runs the hops part on l's data path for the rest of the test.
func follow(t *testing.T, l *fixture.Leaf) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := FollowUnderlay(ctx, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), l.DP)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); cancel() })
}

// TestHopsKeepStaleNextHops: a next hop the data path forwards by is used
// as a packet through the kernel would use it (the kernel would collect it
// otherwise): its STALE entry is confirmed, REACHABLE again by a unicast
// probe the next hop answers.
func TestHopsKeepStaleNextHops(t *testing.T) {
	l := fixture.New(t)
	nhMAC := nextHopOnSwp4(t)
	netns.Sysctl(t, "net.ipv4.neigh.swp4.delay_first_probe_time", "0")
	netns.IP(t, "neigh", "add", "169.254.4.2", "lladdr", nhMAC.String(), "dev", "swp4", "nud", "stale")
	vtep := netip.MustParseAddr("10.10.50.6")
	netns.IP(t, "route", "add", vtep.String()+"/32", "via", "169.254.4.2", "dev", "swp4")
	if err := l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: netip.MustParsePrefix("192.168.96.0/24"), Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{{VTEP: vtep, VNI: fixture.RedVNI, RouterMAC: fixture.Leaf01MAC}}}); err != nil {
		t.Fatal(err)
	}
	swp4, err := net.InterfaceByName("swp4")
	if err != nil {
		t.Fatal(err)
	}
	state := func() int {
		ns, err := netlink.NeighList(swp4.Index, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.IP.String() == "169.254.4.2" {
				return n.State
			}
		}
		return 0
	}
	time.Sleep(500 * time.Millisecond)
	if s := state(); s != netlink.NUD_STALE {
		t.Fatalf("before: the next hop's entry is in state %#x, want STALE", s)
	}
	follow(t, l)
	eventually(t, "the next hop's entry REACHABLE", func() bool { return state() == netlink.NUD_REACHABLE })
}

// nextHopOnSwp4 gives the leaf a port swp4 (169.254.4.1/30) to a next hop
// in a namespace of its own (169.254.4.2, answering ARP), and returns the
// next hop's MAC.
func nextHopOnSwp4(t *testing.T) net.HardwareAddr {
	t.Helper()
	nh := netns.New(t, "nexthop")
	netns.Veth(t, netns.Dev{Name: "swp4"}, netns.Dev{NS: nh, Name: "eth0"})
	netns.IP(t, "addr", "add", "169.254.4.1/30", "dev", "swp4")
	netns.IP(t, "link", "set", "swp4", "up")
	netns.IP(t, "-n", nh, "addr", "add", "169.254.4.2/30", "dev", "eth0")
	netns.IP(t, "-n", nh, "link", "set", "eth0", "up")
	var nhMAC net.HardwareAddr
	netns.Do(t, nh, func() {
		eth0, err := net.InterfaceByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		nhMAC = eth0.HardwareAddr
	})
	return nhMAC
}
