package control

import (
	"net/netip"
	"testing"
	"time"
)

// TestProbeLimiter: an address is probed once per interval; all addresses
// together at most max times; and the limiter forgets past intervals, so
// a tenant sweeping a /8 leaves no table behind.
func TestProbeLimiter(t *testing.T) {
	l := newProbeLimiter(time.Second, 3)
	t0 := time.Unix(1000, 0)
	a := netip.MustParseAddr("192.168.1.10")
	if !l.allow(a, t0) || l.allow(a, t0.Add(500*time.Millisecond)) {
		t.Fatal("an address is probed once per interval")
	}
	if !l.allow(a, t0.Add(time.Second)) {
		t.Fatal("an address is probed again in the next interval")
	}
	allowed := 0
	for i := range 1 << 16 {
		if l.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), t0.Add(1500*time.Millisecond)) {
			allowed++
		}
	}
	if allowed != 2 { // a already took one of the interval's three
		t.Errorf("%d probes in one interval, want 2 more after the first", allowed)
	}
	if len(l.seen) > 3 {
		t.Errorf("remembers %d addresses, want at most 3", len(l.seen))
	}
}
