package control

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/netns"
)

// TestAgentKeepsQuietHosts: the kernel collects neighbour entries nothing
// uses once its table is large (gc_thresh1 entries, shared by every
// namespace); the data path forwards to hosts without the kernel seeing
// it, so the agent keeps the entries of the hosts it holds. Here the
// kernel's collection deletes an unkept entry on the same port with the
// same timers, while the quiet hosts (IPv4 and IPv6) stay: in the kernel,
// in the data path, leaked into GREEN and advertised.
func TestAgentKeepsQuietHosts(t *testing.T) {
	tb := newTestbed(t, dualStackConfig)
	// swp10's timers, short so that minutes on a leaf take seconds here:
	// an entry is REACHABLE for 0.25-0.75 s after a confirmation, then
	// STALE (no DELAY: nothing sent through the kernel), and collectable
	// when unused for 1 s.
	for _, family := range []string{"ipv4", "ipv6"} {
		netns.Sysctl(t, "net."+family+".neigh.swp10.base_reachable_time_ms", "500")
		netns.Sysctl(t, "net."+family+".neigh.swp10.gc_stale_time", "1")
		netns.Sysctl(t, "net."+family+".neigh.swp10.delay_first_probe_time", "0")
	}
	netns.IP(t, "-n", tb.hostNS, "-6", "addr", "add", "2001:db8:100::10/64", "dev", "eth0", "nodad")
	swp10, err := net.InterfaceByName("swp10")
	if err != nil {
		t.Fatal(err)
	}
	green := tb.agent.ids["GREEN"]
	hosts := []netip.Addr{addr("192.168.100.10"), addr("2001:db8:100::10")}
	for _, host := range hosts {
		eventually(t, fmt.Sprintf("%v resolved and forwarded to", host), func() bool { return tb.forwardsTo(t, host) })
		eventually(t, fmt.Sprintf("%v leaked into GREEN", host), func() bool {
			_, ok := tb.route(t, green, netip.PrefixFrom(host, host.BitLen()))
			return ok
		})
	}

	// Fill both tables past gc_thresh1 (128 unless raised), so that the
	// kernel's periodic collection runs; the fillers are off swp10's
	// subnets (no hosts), STALE, on swp10's timers.
	var batch strings.Builder
	const fillers = 300
	for i := range fillers {
		fmt.Fprintf(&batch, "neigh add 10.99.%d.%d lladdr 02:00:00:00:99:01 dev swp10 nud stale\n", i/256, i%256)
		fmt.Fprintf(&batch, "neigh add 2001:db8:99::%x lladdr 02:00:00:00:99:01 dev swp10 nud stale\n", i)
	}
	file := t.TempDir() + "/fill"
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	netns.IP(t, "-batch", file)

	// Wait for a collection: both families' fillers gone (it runs every
	// 15 s, half the default base reachable time, in every namespace).
	filled := func() (v4, v6 bool) {
		ns, err := netlink.NeighList(swp10.Index, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			switch a, _ := netip.AddrFromSlice(n.IP); {
			case a == addr("10.99.0.0"):
				v4 = true
			case a == addr("2001:db8:99::"):
				v6 = true
			}
		}
		return v4, v6
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		v4, v6 := filled()
		if !v4 && !v6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kernel collected no filler in 60 s (IPv4 left: %v, IPv6 left: %v): is gc_thresh1 above %d?", v4, v6, fillers)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The hosts stayed, though quiet for several of their reachable times.
	ns, err := netlink.NeighList(swp10.Index, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	inKernel := map[netip.Addr]bool{}
	for _, n := range ns {
		a, _ := netip.AddrFromSlice(n.IP)
		inKernel[a.Unmap()] = n.State&nudValid != 0
	}
	for _, host := range hosts {
		if !inKernel[host] {
			t.Errorf("the kernel collected the quiet host %v", host)
		}
		if _, ok := tb.route(t, green, netip.PrefixFrom(host, host.BitLen())); !ok {
			t.Errorf("%v's host route left GREEN", host)
		}
		if !tb.forwardsTo(t, host) {
			t.Errorf("RED no longer forwards to %v", host)
		}
	}
	for {
		select {
		case e := <-tb.heard:
			if e.Withdraw && e.Route != nil && e.Route.Type2 {
				t.Errorf("the fabric heard %v withdrawn", e.Route.Prefix)
			}
			continue
		default:
		}
		break
	}
}

// TestHostsForgetAbsent: after lost neighbour events, the hosts the
// kernel no longer has are forgotten (data path, RIB, BGP), and the ones
// it has are kept.
func TestHostsForgetAbsent(t *testing.T) {
	netns.Root(t)
	netns.Veth(t, netns.Dev{Name: "swp10"}, netns.Dev{Name: "peer10"})
	ifc, err := net.InterfaceByName("swp10")
	if err != nil {
		t.Fatal(err)
	}
	h, dp, sp, _, vs := newTestHosts(t)
	red := vs.get("RED")
	ctx := context.Background()
	kept, gone := addr("192.168.100.10"), addr("192.168.100.11")
	mac := net.HardwareAddr{0x02, 1, 1, 1, 1, 1}
	netns.IP(t, "neigh", "add", kept.String(), "lladdr", mac.String(), "dev", "swp10", "nud", "stale")
	h.neighbor(ctx, ifc, kept, mac, true)
	h.neighbor(ctx, ifc, gone, mac, true) // its deletion is never heard

	h.forgetAbsent()
	if _, ok := dp.Neighbor(red.ID, kept); !ok {
		t.Error("a host the kernel has was forgotten")
	}
	if _, ok := dp.Neighbor(red.ID, gone); ok {
		t.Error("a host the kernel lost stays in the data path")
	}
	if _, ok := sp.hosts[gone]; ok {
		t.Error("a host the kernel lost stays advertised")
	}
	if _, ok := dp.Route(vs.get("GREEN").ID, pfx("192.168.100.11/32")); ok {
		t.Error("a host the kernel lost stays leaked into GREEN")
	}
}

// TestAgentVerifyHosts: xleafctl verify audits the hosts too: the data
// path's against the agent's and the kernel's neighbour entries. A host
// behind the agent's back (extra), one with another MAC than the
// kernel's (different), one the data path lost (missing).
func TestAgentVerifyHosts(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	red := tb.agent.ids["RED"]
	host := addr("192.168.100.10")
	swp10, err := net.InterfaceByName("swp10")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the host resolved and forwarded to", func() bool { return tb.forwardsTo(t, host) })
	differences := func() map[string]string {
		t.Helper()
		r, err := tb.agent.Verify()
		if err != nil {
			t.Fatal(err)
		}
		if r.Hosts != 1 {
			t.Errorf("%d hosts compared, want 1", r.Hosts)
		}
		got := map[string]string{}
		for _, d := range r.Differences {
			got[d.VRF+" "+d.Prefix] = d.Kind
		}
		var text strings.Builder
		r.Text(&text)
		t.Logf("xleafctl verify:\n%s", text.String())
		return got
	}
	if got := differences(); len(got) != 0 {
		t.Fatalf("in agreement: %v", got)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	other := net.HardwareAddr{0x02, 9, 9, 9, 9, 9}
	must(tb.dp.SetNeighbor(red, addr("192.168.100.77"), dataplane.Neighbor{Ifindex: swp10.Index, MAC: other, SrcMAC: swp10.HardwareAddr}))
	must(tb.dp.SetNeighbor(red, host, dataplane.Neighbor{Ifindex: swp10.Index, MAC: other, SrcMAC: swp10.HardwareAddr}))
	want := map[string]string{"RED 192.168.100.77/32": "extra", "RED 192.168.100.10/32": "different"}
	if got := differences(); !maps.Equal(got, want) {
		t.Errorf("differences %v, want %v", got, want)
	}
	must(tb.dp.DeleteNeighbor(red, addr("192.168.100.77")))
	must(tb.dp.DeleteNeighbor(red, host))
	want = map[string]string{"RED 192.168.100.10/32": "missing"}
	if got := differences(); !maps.Equal(got, want) {
		t.Errorf("differences %v, want %v", got, want)
	}
}
