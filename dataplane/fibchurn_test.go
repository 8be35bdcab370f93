package dataplane_test

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// TestFIBUpdatesUnderTraffic: while routes under a covering /16 come and go
// (chunks made, linked, collapsed and reused), the program, run at the same
// time, finds for every packet the covering route or one
// of the routes inside it: never no route, never anything else.
func TestFIBUpdatesUnderTraffic(t *testing.T) {
	// A small pool: freed chunks come round again within the run, after
	// their grace periods.
	l := fixture.NewWithFIB(t, 32, 32)
	pfx := netip.MustParsePrefix
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.DP.SetRoute(fixture.RED, dataplane.Route{Prefix: pfx("10.77.0.0/16"), Kind: dataplane.RouteBlackhole}))
	inner := []dataplane.Route{
		{Prefix: pfx("10.77.5.0/24"), Kind: dataplane.RouteRemote, Remotes: leafs(fixture.RedVNI)},
		{Prefix: pfx("10.77.5.128/25"), Kind: dataplane.RouteRemote, Remotes: border04(fixture.Site2RedVNI)},
		{Prefix: pfx("10.77.5.7/32"), Kind: dataplane.RouteRemote, Remotes: border04(fixture.Site2RedVNI)},
		{Prefix: pfx("10.77.9.0/24"), Kind: dataplane.RouteRemote, Remotes: leafs(fixture.RedVNI)},
	}
	var stop atomic.Bool
	updates := make(chan int)
	go func() {
		n := 0
		for i := 0; !stop.Load(); i++ {
			r := inner[i%len(inner)]
			var err error
			if (i/len(inner))%2 == 0 {
				err = l.DP.SetRoute(fixture.RED, r)
			} else {
				err = l.DP.DeleteRoute(fixture.RED, r.Prefix)
			}
			if err != nil {
				t.Error(err)
				break
			}
			n++
		}
		updates <- n
	}()

	var frames [][]byte
	for _, dst := range []string{"10.77.5.7", "10.77.5.200", "10.77.5.1", "10.77.9.1", "10.77.200.1"} {
		frames = append(frames, fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC,
			fixture.Flow{Src: fixture.HostRed, Dst: netip.MustParseAddr(dst), SrcPort: 1, DstPort: 2, TTL: 64}))
	}
	before, err := l.DP.Counters()
	must(err)
	packets := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		for _, f := range frames {
			if action, _ := fixture.Run(t, l.DP.Program(), l.Swp10.Index, f); action != dataplane.XDPDrop && action != dataplane.XDPRedirect && action != dataplane.XDPTx {
				t.Fatalf("action %d", action)
			}
			packets++
		}
	}
	stop.Store(true)
	n := <-updates
	after, err := l.DP.Counters()
	must(err)
	for k, c := range delta(before, after) {
		if k.Reason != dataplane.ReasonBlackhole && k.Reason != dataplane.ReasonFwdRemote {
			t.Errorf("%d packets counted %v in vrf %d: a packet saw a route half-changed", c.Packets, k.Reason, k.VRF)
		}
	}
	t.Logf("%d packets during %d route changes", packets, n)
	if n < 100 {
		t.Errorf("only %d route changes happened during the traffic", n)
	}
}
