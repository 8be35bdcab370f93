package control

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/test/netns"
)

// TestOneLinkLocalNeighbor: an unnumbered port's neighbour is its one
// link-local neighbour entry; of several, the one the kernel confirmed
// lately (a neighbour replaced or renumbered leaves its old entry STALE
// for a minute); more than one either way is no answer.
func TestOneLinkLocalNeighbor(t *testing.T) {
	netns.Root(t)
	netns.Veth(t, netns.Dev{Name: "ll0"}, netns.Dev{Name: "ll1"})
	netns.Sysctl(t, "net.ipv6.conf.ll1.disable_ipv6", "1") // silent: no entry of its own
	netns.IP(t, "link", "set", "ll0", "up")
	netns.IP(t, "link", "set", "ll1", "up")
	ifc, err := net.InterfaceByName("ll0")
	if err != nil {
		t.Fatal(err)
	}
	neigh := func(addr, state string) {
		netns.IP(t, "-6", "neigh", "replace", addr, "lladdr", "02:00:00:00:00:0a", "dev", "ll0", "nud", state)
	}
	want := func(what, addr string) {
		t.Helper()
		got, err := oneLinkLocalNeighbor(ifc)
		switch {
		case addr == "" && err == nil:
			t.Errorf("%s: got %v, want no answer", what, got)
		case addr != "" && err != nil:
			t.Errorf("%s: %v, want %s", what, err, addr)
		case addr != "" && got != netip.MustParseAddr(addr).WithZone("ll0"):
			t.Errorf("%s: got %v, want %s", what, got, addr)
		}
	}
	want("no neighbour", "")
	neigh("fe80::a", "stale")
	want("one stale neighbour", "fe80::a")
	neigh("fe80::b", "stale")
	want("two stale neighbours", "")
	neigh("fe80::b", "reachable")
	want("the old one stale, the new one confirmed", "fe80::b")
	neigh("fe80::a", "permanent")
	want("two confirmed", "")
}

// TestUnnumberedPeerRepointed: an unnumbered peer deleted and added again
// with another neighbour address on the same port (a replaced neighbour,
// as followLinkLocal does it) is configured whole each time, with its
// next-hop policy: nothing of the one before is left in the way.
func TestUnnumberedPeerRepointed(t *testing.T) {
	netns.Root(t)
	netns.IP(t, "link", "set", "lo", "up")
	netns.Veth(t, netns.Dev{Name: "rp0"}, netns.Dev{Name: "rp1"})
	netns.IP(t, "link", "set", "rp0", "up")
	netns.IP(t, "link", "set", "rp1", "up")
	eventually(t, "rp0's link-local address", func() bool { return bgp.LinkLocal("rp0").IsValid() })
	ctx := context.Background()
	sp := bgp.New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := sp.Start(ctx, bgp.Global{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(false)
	for _, addr := range []string{"fe80::2", "fe80::3", "fe80::2"} {
		p := bgp.Peer{Address: netip.MustParseAddr(addr).WithZone("rp0"), Interface: "rp0", ASN: 65002, IPv4: true, EVPN: true, ConnectRetry: 5}
		if err := sp.AddPeer(ctx, p); err != nil {
			t.Fatalf("add %v: %v", p.Address, err)
		}
		ps, err := sp.Peers(ctx, false)
		if err != nil || len(ps) != 1 || ps[0].Address != p.Address.WithZone("").String() && ps[0].Address != p.Address.String() {
			t.Fatalf("after adding %v, GoBGP has %+v (%v)", p.Address, ps, err)
		}
		if err := sp.DeletePeer(ctx, p); err != nil {
			t.Fatalf("delete %v: %v", p.Address, err)
		}
	}
}
