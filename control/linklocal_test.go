package control

import (
	"net"
	"net/netip"
	"testing"

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
