package dataplane

import (
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/xleaf/xleaf/test/netns"
)

// TestFib6Lens: a VRF's word holds its IPv6 prefix lengths, longest first
// (+1 each), while it has at most fib6Lens of them, and 0 (its trie) when it
// has more; fib6 holds exactly its routes, and none once the VRF is gone.
func TestFib6Lens(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF maps)")
	}
	d, err := Open(Options{PinPath: netns.PinPath(t), FIB6MinRoutes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const vrf = VRFID(5)
	if err := d.SetVRF(VRF{ID: vrf, VNI: 5005, RouterMAC: []byte{2, 0, 0, 0, 0, 1}, VTEP: netip.MustParseAddr("10.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	word := func() uint64 { return atomic.LoadUint64((*uint64)(unsafe.Pointer(&d.fib6Lens[8*int(vrf)]))) }
	count := func() int {
		var k xleafFib6Key
		var v xleafRoute
		n := 0
		it := d.objs.Fib6.Iterate()
		for it.Next(&k, &v) {
			if VRFID(k.Vrf) == vrf {
				n++
			}
		}
		return n
	}
	set := func(p string) {
		t.Helper()
		if err := d.SetRoute(vrf, Route{Prefix: netip.MustParsePrefix(p), Kind: RouteBlackhole}); err != nil {
			t.Fatal(err)
		}
	}
	set("2001:db8::/48")
	set("2001:db8:1::/64")
	set("2001:db8:1::1/128")
	set("2001:db8:2::/64") // a length it has already
	if got, want := word(), uint64(129|65<<8|49<<16); got != want {
		t.Errorf("word %#x, want %#x (128, 64, 48)", got, want)
	}
	if n := count(); n != 4 {
		t.Errorf("fib6 holds %d of the vrf's routes, want 4", n)
	}
	for _, p := range []string{"::/0", "2001:db8::/32", "2001:db8::/40", "2001:db8::/56", "2001:db8::/96", "2001:db8::/100"} {
		set(p)
	}
	if got := word(); got != 0 {
		t.Errorf("9 lengths: word %#x, want 0 (the trie)", got)
	}
	if err := d.DeleteRoute(vrf, netip.MustParsePrefix("2001:db8::/100")); err != nil {
		t.Fatal(err)
	}
	if got, want := word(), uint64(129|97<<8|65<<16|57<<24|49<<32|41<<40|33<<48|1<<56); got != want {
		t.Errorf("8 lengths: word %#x, want %#x", got, want)
	}
	if err := d.DeleteRoute(vrf, netip.MustParsePrefix("2001:db8:2::/64")); err != nil {
		t.Fatal(err)
	}
	if got := word() >> 16 & 0xff; got != 65 {
		t.Errorf("a /64 left: its length gone from the word (%#x)", word())
	}
	// Below FIB6MinRoutes, the trie.
	if err := d.SetFIB6MinRoutes(100); err != nil {
		t.Fatal(err)
	}
	if got := word(); got != 0 {
		t.Errorf("fewer routes than FIB6MinRoutes: word %#x, want 0 (the trie)", got)
	}
	if err := d.DeleteVRF(vrf); err != nil {
		t.Fatal(err)
	}
	if n, w := count(), word(); n != 0 || w != 0 {
		t.Errorf("vrf gone: fib6 holds %d of its routes, word %#x", n, w)
	}
}

// TestFib6Full: a full IPv6 lookup refuses the route with an error and
// keeps the table as it was.
func TestFib6Full(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF maps)")
	}
	d, err := Open(Options{PinPath: netns.PinPath(t), FIB6Routes: 4, FIB6MinRoutes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const vrf = VRFID(6)
	for i := range 5 {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i)}), 48)
		err := d.SetRoute(vrf, Route{Prefix: p, Kind: RouteBlackhole})
		if i < 4 && err != nil {
			t.Fatalf("route %d of 4: %v", i, err)
		}
		if i == 4 && err == nil {
			t.Fatal("a fifth route into a lookup of 4 accepted")
		}
	}
	rs, err := d.Routes(vrf)
	if err != nil || len(rs) != 4 {
		t.Errorf("after the refused route: %d routes (%v), want the 4 before", len(rs), err)
	}
}
