package control

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/control/show"
	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

// dualStackConfig is leafConfig with RED's port dual-stack and both VRFs
// exporting their IPv6 routes, keys as NVUE spells them.
const dualStackConfig = leafConfig + `
nv set interface swp10 ip address 2001:db8:100::1/64
nv set vrf RED router bgp address-family ipv6-unicast enable on
nv set vrf RED router bgp address-family ipv6-unicast redistribute connected enable on
nv set vrf RED router bgp address-family ipv6-unicast route-export to-evpn enable on
nv set vrf RED router bgp address-family ipv6-unicast aggregate-route 2001:db8:2::/48
nv set vrf GREEN router bgp address-family ipv6-unicast enable on
nv set vrf GREEN router bgp address-family ipv6-unicast route-export to-evpn enable on
`

// hear waits for the fabric to hear an event cond accepts.
func (tb *testbed) hear(t *testing.T, what string, cond func(bgp.Event) bool) {
	t.Helper()
	eventually(t, what, func() bool {
		select {
		case e := <-tb.heard:
			return cond(e)
		default:
			return false
		}
	})
}

// TestAgentDualStack: IPv6 Type-5 routes from a real BGP peer reach the
// data path of every importing VRF with their own label, the leaf
// advertises its IPv6 subnet (gateway ::, its VNI and router MAC) and its
// aggregate once a route under it exists, an IPv6 host learned by ND is
// delivered to and advertised as a Type-2 MAC/IPv6 route, and the show
// commands list the IPv6 tables.
func TestAgentDualStack(t *testing.T) {
	tb := newTestbed(t, dualStackConfig)
	red, green := tb.agent.ids["RED"], tb.agent.ids["GREEN"]
	ctx := context.Background()

	tb.hear(t, "the fabric hears 2001:db8:100::/64 from the leaf", func(e bgp.Event) bool {
		p := e.Route
		return p != nil && !e.Withdraw && !p.Type2 && p.Prefix == pfx("2001:db8:100::/64") && p.VNI == 4001 &&
			p.VTEP == addr("10.10.10.10") && p.RouterMAC.String() == routerMAC.String() && len(p.RTs) == 1 && p.RTs[0] == (bgp.RT{ASN: 65110, Value: 4001})
	})

	// leaf01's RED IPv6 subnet: into RED and, leaked, into GREEN.
	if err := tb.fabric.Advertise(ctx, fromLeaf01("2001:db8:1::/64", 4001)); err != nil {
		t.Fatal(err)
	}
	for _, vrf := range []dataplane.VRFID{red, green} {
		eventually(t, "2001:db8:1::/64 in the data path", func() bool {
			r, ok := tb.route(t, vrf, pfx("2001:db8:1::/64"))
			return ok && r.Kind == dataplane.RouteRemote && len(r.Remotes) == 1 && r.Remotes[0].VTEP == addr("10.10.10.1") && r.Remotes[0].VNI == 4001
		})
	}
	// A GREEN route under RED's aggregate: the aggregate goes up, a
	// blackhole in RED, advertised.
	if err := tb.fabric.Advertise(ctx, fromLeaf01("2001:db8:2::10/128", 4002)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "RED's IPv6 aggregate as a blackhole", func() bool {
		r, ok := tb.route(t, red, pfx("2001:db8:2::/48"))
		return ok && r.Kind == dataplane.RouteBlackhole
	})
	tb.hear(t, "the fabric hears the aggregate 2001:db8:2::/48", func(e bgp.Event) bool {
		return e.Route != nil && !e.Withdraw && e.Route.Prefix == pfx("2001:db8:2::/48") && e.Route.VNI == 4001
	})

	// The host on swp10 answers ND: the kernel learns it, the agent puts it
	// in the data path (routed to from GREEN, leaked) and advertises it.
	netns.IP(t, "-n", tb.hostNS, "-6", "addr", "add", "2001:db8:100::10/64", "dev", "eth0", "nodad")
	host := addr("2001:db8:100::10")
	swp10, err := net.InterfaceByName("swp10")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the IPv6 host resolved and forwarded to", func() bool { return tb.forwardsTo(t, host) })
	tb.hear(t, "the fabric hears the host as a Type-2 MAC/IPv6 route", func(e bgp.Event) bool {
		p := e.Route
		return p != nil && !e.Withdraw && p.Type2 && p.Prefix == netip.PrefixFrom(host, 128) && p.VNI == 4001
	})
	eventually(t, "the host's /128 leaked into GREEN", func() bool {
		r, ok := tb.route(t, green, netip.PrefixFrom(host, 128))
		return ok && r.Kind == dataplane.RouteLocal && r.HostVRF == red
	})

	sock := t.TempDir() + "/xleafd.sock"
	sctx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go tb.agent.Serve(sctx, sock, nil)
	eventually(t, "the socket", func() bool { _, err := os.Stat(sock); return err == nil })
	var rt show.RouteTable
	call(t, sock, &rt, "show", "route", "vrf", "GREEN")
	got := map[string]show.Route{}
	for _, r := range rt.Routes6 {
		got[r.Prefix] = r
	}
	if r := got["2001:db8:1::/64"]; r.Protocol != "bgp" || !r.Installed || len(r.Nexthops) != 1 ||
		r.Nexthops[0] != (show.Nexthop{Via: "::ffff:10.10.10.1", Label: 4001}) {
		t.Errorf("show route vrf GREEN: 2001:db8:1::/64 = %+v, want via ::ffff:10.10.10.1 label 4001", r)
	}
	if r := got["::/0"]; !r.Unreach {
		t.Errorf("show route vrf GREEN: no IPv6 default unreachable: %+v", r)
	}
	for _, r := range rt.Routes {
		if netip.MustParsePrefix(r.Prefix).Addr().Is6() {
			t.Errorf("show route vrf GREEN: IPv6 route %s in the IPv4 table", r.Prefix)
		}
	}
	var bt show.BGPTable
	call(t, sock, &bt, "show", "bgp", "vrf", "RED")
	found := false
	for _, p := range bt.Prefixes6 {
		if p.Prefix == "2001:db8:1::/64" && len(p.Paths) == 1 && p.Paths[0].NextHop == "::ffff:10.10.10.1" {
			found = true
		}
	}
	if !found {
		t.Errorf("show bgp vrf RED: no 2001:db8:1::/64 via ::ffff:10.10.10.1 in %+v", bt.Prefixes6)
	}

	// The host's packet expiring: time exceeded back to it, from RED's
	// IPv6 address on its port (the agent's choice of source).
	link, err := exec.Command("ip", "-n", tb.hostNS, "-br", "link", "show", "eth0").Output()
	if err != nil {
		t.Fatal(err)
	}
	hostMAC, err := net.ParseMAC(strings.Fields(string(link))[2])
	if err != nil {
		t.Fatal(err)
	}
	expiring := fixture.Frame(t, swp10.HardwareAddr, hostMAC, fixture.Flow{Src: host, Dst: addr("2001:db8:1::10"), TTL: 1})
	action, out := fixture.Run(t, tb.dp.Program(), swp10.Index, expiring)
	if action != dataplane.XDPTx || len(out) < 62 || out[14+6] != 58 || out[54] != 3 ||
		netip.AddrFrom16([16]byte(out[22:38])) != addr("2001:db8:100::1") || netip.AddrFrom16([16]byte(out[38:54])) != host {
		t.Errorf("hop limit 1 from the host: action %d, frame %x; want time exceeded from 2001:db8:100::1 back to it", action, out)
	}

	// Explained: the same packet, step by step, and as the live program
	// forwards it.
	var ex show.Explain
	call(t, sock, &ex, "explain", "in", "swp10", "from", host.String(), "to", "2001:db8:1::10", "udp", "ttl", "1")
	var steps []string
	for _, st := range ex.Steps {
		steps = append(steps, st.Step+" "+st.Prefix+st.Address)
	}
	if want := "[ingress  vrf  route 2001:db8:1::/64 icmp  route back 2001:db8:100::10/128 neighbour 2001:db8:100::10 verdict ]"; fmt.Sprint(steps) != want {
		t.Errorf("explain steps %v\nwant %s", steps, want)
	}
	in, err := hex.DecodeString(ex.In.Hex)
	if err != nil {
		t.Fatal(err)
	}
	if action, out := fixture.Run(t, tb.dp.Program(), swp10.Index, in); ex.Action != "XDP_TX" || ex.Out == nil || hex.EncodeToString(out) != ex.Out.Hex || action != dataplane.XDPTx {
		t.Errorf("explain: %s; the live program: action %d (frames equal: %v)", ex.Action, action, ex.Out != nil && hex.EncodeToString(out) == ex.Out.Hex)
	}

	// A reload that turns RED's IPv6 off (its port's IPv6 address and its
	// IPv6 exports gone): the subnet is withdrawn and leaves the data
	// path; IPv4 is untouched.
	cfg, err := config.Parse("leaf.cfg", []byte(strings.NewReplacer(
		"nv set interface swp10 ip address 2001:db8:100::1/64\n", "",
		"nv set vrf RED router bgp address-family ipv6-unicast route-export to-evpn enable on\n", "").Replace(dualStackConfig)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.agent.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	tb.hear(t, "the fabric hears 2001:db8:100::/64 withdrawn", func(e bgp.Event) bool {
		return e.Route != nil && e.Withdraw && e.Route.Prefix == pfx("2001:db8:100::/64")
	})
	if _, ok := tb.route(t, red, pfx("2001:db8:100::/64")); ok {
		t.Error("RED keeps its IPv6 subnet after the port's address went")
	}
	if _, ok := tb.route(t, red, pfx("192.168.100.0/24")); !ok {
		t.Error("RED lost its IPv4 subnet in a reload that touched only IPv6")
	}

	// Withdrawn: gone from both VRFs.
	if err := tb.fabric.Withdraw(ctx, fromLeaf01("2001:db8:1::/64", 4001)); err != nil {
		t.Fatal(err)
	}
	for _, vrf := range []dataplane.VRFID{red, green} {
		eventually(t, "2001:db8:1::/64 withdrawn from the data path", func() bool {
			_, ok := tb.route(t, vrf, pfx("2001:db8:1::/64"))
			return !ok
		})
	}
}
