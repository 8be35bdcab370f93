package dataplane_test

import (
	"fmt"
	"maps"
	"net/netip"
	"testing"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
)

// TestLeakMatrix counts forwarded packets by where they went, on
// borderleaf01's paths: RED to its own hosts, leaked to GREEN's host, leaked
// into GREEN's VNI towards leaf01/02, to site 2's GREEN VNI over the DCI,
// and a drop, which no cell counts. The cells stay with their names across
// a restart, and keep counting.
func TestLeakMatrix(t *testing.T) {
	l := fixture.New(t)
	site2 := fixture.Flow{Src: a("192.168.20.110"), Dst: fixture.HostRed, TTL: 64}
	fromHostRed := func(dst string) []byte {
		return fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a(dst), TTL: 64})
	}
	sends := []struct {
		ingress int
		frame   []byte
		n       int
	}{
		{l.Swp3.Index, fromBorder04(t, l, fixture.RedVNI, fixture.Frame(t, fixture.RouterMAC, fixture.Border04MAC, site2)), 1}, // RED -> RED host
		{l.Swp10.Index, fromHostRed(fixture.HostGreen.String()), 2},                                                            // RED -> GREEN host
		{l.Swp10.Index, fromHostRed("192.168.2.10"), 3},                                                                        // RED -> GREEN's VNI 4002
		{l.Swp10.Index, fromHostRed("192.168.10.7"), 4},                                                                        // RED -> site 2's GREEN VNI 5002
		{l.Swp10.Index, fromHostRed("192.168.1.10"), 5},                                                                        // RED -> RED's VNI 4001
		{l.Swp10.Index, fromHostRed("172.31.0.1"), 6},                                                                          // no route: no cell
	}
	want := map[dataplane.Leak]dataplane.Counter{}
	for i, s := range sends {
		for range s.n {
			fixture.Run(t, l.DP.Program(), s.ingress, s.frame)
		}
		var cell dataplane.Leak
		switch i {
		case 0:
			cell = dataplane.Leak{From: fixture.RED, Local: true, HostVRF: fixture.RED}
		case 1:
			cell = dataplane.Leak{From: fixture.RED, Local: true, HostVRF: fixture.GREEN}
		case 2:
			cell = dataplane.Leak{From: fixture.RED, VNI: fixture.GreenVNI}
		case 3:
			cell = dataplane.Leak{From: fixture.RED, VNI: fixture.Site2GreenVNI}
		case 4:
			cell = dataplane.Leak{From: fixture.RED, VNI: fixture.RedVNI}
		default:
			continue
		}
		want[cell] = dataplane.Counter{Packets: uint64(s.n), Bytes: uint64(s.n * len(s.frame))}
	}
	got, err := l.DP.Leaks()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("leak matrix:\n got %v\nwant %v", got, want)
	}
	// The reasons' counters include the cells.
	cs, err := l.DP.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cs[dataplane.CounterKey{VRF: fixture.RED, Reason: dataplane.ReasonFwdRemote}].Packets, uint64(3+4+5); got != want {
		t.Errorf("RED forwarded remote: %d packets, want %d", got, want)
	}
	if got, want := cs[dataplane.CounterKey{VRF: fixture.RED, Reason: dataplane.ReasonFwdLocal}].Packets, uint64(1+2); got != want {
		t.Errorf("RED forwarded local: %d packets, want %d", got, want)
	}
	if _, stats, err := dataplane.ReadStats(l.PinPath); err != nil || !maps.Equal(stats, want) {
		t.Errorf("ReadStats: %v, %v; want %v", stats, err, want)
	}

	// A restarted data path names the same columns and counts on.
	if err := l.DP.Close(); err != nil {
		t.Fatal(err)
	}
	dp, err := dataplane.Open(dataplane.Options{PinPath: l.PinPath})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer dp.Close()
	fixture.Run(t, dp.Program(), sends[3].ingress, sends[3].frame)
	c := want[dataplane.Leak{From: fixture.RED, VNI: fixture.Site2GreenVNI}]
	want[dataplane.Leak{From: fixture.RED, VNI: fixture.Site2GreenVNI}] = dataplane.Counter{Packets: c.Packets + 1, Bytes: c.Bytes + uint64(len(sends[3].frame))}
	if got, err := dp.Leaks(); err != nil || !maps.Equal(got, want) {
		t.Fatalf("leak matrix after a restart:\n got %v (%v)\nwant %v", got, err, want)
	}
}

// TestLeakColumnsReused: when every column is taken, a VNI no group names
// any more gives its column (its counts cleared) to a new one; while all
// are named, a new VNI's packets are still forwarded and counted under
// their reason, outside the matrix.
func TestLeakColumnsReused(t *testing.T) {
	l := fixture.New(t)
	route := func(vni uint32) dataplane.Route {
		return dataplane.Route{Prefix: netip.MustParsePrefix("192.168.77.0/24"), Kind: dataplane.RouteRemote,
			Remotes: []dataplane.Remote{{VTEP: fixture.Border04, VNI: vni, RouterMAC: fixture.Border04MAC}}}
	}
	frame := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a("192.168.77.1"), TTL: 64})
	send := func(vni uint32) {
		t.Helper()
		if err := l.DP.SetRoute(fixture.RED, route(vni)); err != nil {
			t.Fatal(err)
		}
		if action, _ := fixture.Run(t, l.DP.Program(), l.Swp10.Index, frame); action != dataplane.XDPTx && action != dataplane.XDPRedirect {
			t.Fatalf("vni %d: action %d", vni, action)
		}
	}
	// The fixture's groups name a few VNIs; each VNI sent here is
	// replaced by the next, so once the free columns are gone the oldest
	// unnamed ones are given again, their counts cleared.
	named := map[uint32]bool{}
	for _, rs := range fixture.Routes() {
		for _, r := range rs {
			for _, m := range r.Remotes {
				named[m.VNI] = true
			}
		}
	}
	free := uint32(dataplane.LeakCols - 1 - len(named))
	first := uint32(100000)
	for vni := first; vni < first+free+5; vni++ {
		send(vni)
	}
	got, err := l.DP.Leaks()
	if err != nil {
		t.Fatal(err)
	}
	for vni := first; vni < first+free+5; vni++ {
		want := uint64(1)
		if vni < first+5 {
			want = 0 // its column given to a later VNI
		}
		if c := got[dataplane.Leak{From: fixture.RED, VNI: vni}]; c.Packets != want {
			t.Errorf("vni %d: %d packets, want %d", vni, c.Packets, want)
		}
	}
	if n := uint32(len(got)); n != free {
		t.Errorf("%d cells, want %d", n, free)
	}

	// Every column named at once: one VNI more is forwarded and counted,
	// outside the matrix.
	for i := range free + 1 {
		vni := 200000 + i
		r := route(vni)
		r.Prefix = netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
		if err := l.DP.SetRoute(fixture.RED, r); err != nil {
			t.Fatal(err)
		}
	}
	before, err := l.DP.Counters()
	if err != nil {
		t.Fatal(err)
	}
	leaksBefore, err := l.DP.Leaks()
	if err != nil {
		t.Fatal(err)
	}
	last := fixture.Frame(t, l.Swp10.HardwareAddr, fixture.HostRedMAC, fixture.Flow{Src: fixture.HostRed, Dst: a(fmt.Sprintf("10.%d.%d.1", free/256, free%256)), TTL: 64})
	if action, _ := fixture.Run(t, l.DP.Program(), l.Swp10.Index, last); action != dataplane.XDPTx && action != dataplane.XDPRedirect {
		t.Fatalf("vni beyond the columns: action %d", action)
	}
	after, err := l.DP.Counters()
	if err != nil {
		t.Fatal(err)
	}
	leaksAfter, err := l.DP.Leaks()
	if err != nil {
		t.Fatal(err)
	}
	key := dataplane.CounterKey{VRF: fixture.RED, Reason: dataplane.ReasonFwdRemote}
	if after[key].Packets != before[key].Packets+1 {
		t.Errorf("forwarded remote: %d -> %d packets, want one more", before[key].Packets, after[key].Packets)
	}
	if !maps.Equal(leaksBefore, leaksAfter) {
		t.Errorf("a VNI without a column moved the matrix: %v -> %v", leaksBefore, leaksAfter)
	}
}
