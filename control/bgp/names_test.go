package bgp

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// TestNames: decode's peers and route distinguishers are spelled as GoBGP
// spells them, each once (the same string for every route that has it),
// and two that differ stay apart.
func TestNames(t *testing.T) {
	var n names
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	leaf := netip.MustParseAddr("10.10.10.1")
	if p := n.peer(leaf); p != "10.10.10.1" || !same(p, n.peer(netip.MustParseAddr("10.10.10.1"))) {
		t.Errorf("peer %q, or a second copy", p)
	}
	ll := netip.MustParseAddr("fe80::1").WithZone("swp1")
	if p := n.peer(ll); p != "fe80::1%swp1" || p == n.peer(netip.MustParseAddr("fe80::1").WithZone("swp2")) {
		t.Errorf("link-local peers: %q", p)
	}
	ip2, _ := bgp.NewRouteDistinguisherIPAddressAS(leaf, 2)
	ip3, _ := bgp.NewRouteDistinguisherIPAddressAS(leaf, 3)
	rds := []bgp.RouteDistinguisherInterface{
		ip2,
		ip3,
		bgp.NewRouteDistinguisherTwoOctetAS(65101, 2),
		bgp.NewRouteDistinguisherFourOctetAS(4200000001, 2),
		bgp.NewRouteDistinguisherTwoOctetAS(2, 65101), // the same numbers, otherwise
	}
	seen := map[string]bool{}
	for _, rd := range rds {
		got := n.rd(rd)
		if got != rd.String() {
			t.Errorf("rd %q, want %q", got, rd.String())
		}
		if seen[got] {
			t.Errorf("rd %q twice", got)
		}
		seen[got] = true
		again, _ := bgp.ParseRouteDistinguisher(rd.String())
		if !same(got, n.rd(again)) {
			t.Errorf("rd %q: a second copy for an equal RD", got)
		}
	}
}
