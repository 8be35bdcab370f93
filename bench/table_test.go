package bench_test

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

// tableBench is an empty data path and the table the table benchmarks
// write and read: n remote /24s over 4 groups.
func tableBench(b *testing.B, n int) (*dataplane.Dataplane, []dataplane.Route) {
	netns.Root(b)
	dp, err := dataplane.Open(dataplane.Options{PinPath: netns.PinPath(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.Close() })
	groups := [][]dataplane.Remote{
		{{VTEP: fixture.Leaf01, VNI: 4001, RouterMAC: fixture.Leaf01MAC}},
		{{VTEP: fixture.Leaf02, VNI: 4001, RouterMAC: fixture.Leaf02MAC}},
		{{VTEP: fixture.Leaf01, VNI: 4001, RouterMAC: fixture.Leaf01MAC}, {VTEP: fixture.Leaf02, VNI: 4001, RouterMAC: fixture.Leaf02MAC}},
		{{VTEP: fixture.Border04, VNI: 5001, RouterMAC: fixture.Border04MAC}},
	}
	routes := make([]dataplane.Route, n)
	for i := range routes {
		a := addrFromUint(0x0a800000 + uint32(i)<<8)
		routes[i] = dataplane.Route{Prefix: netip.PrefixFrom(a, 24), Kind: dataplane.RouteRemote, Remotes: groups[i%len(groups)]}
	}
	return dp, routes
}

// BenchmarkReplaceTable: programming a VRF's whole table (what a restart
// or a full BGP table costs the agent), 100k remote routes over 4 groups.
func BenchmarkReplaceTable(b *testing.B) {
	const n = 100_000
	dp, routes := tableBench(b, n)
	b.ResetTimer()
	for range b.N {
		if err := dp.ReplaceTable(1, routes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
}

// BenchmarkRouteChange: one route added to (then deleted from) RED's 1M
// table, each timed from the call to its return, when the compiled FIB
// holds it (the program reads the FIB's memory directly: no later step
// makes it visible). Checked once through the lookup program first.
func BenchmarkRouteChange(b *testing.B) {
	bed := newBedIn(b, 1_000_000, 1)
	fib, lpm, err := bed.l.DP.LookupPrograms(fixture.RED)
	must(b, err)
	defer fib.Close()
	defer lpm.Close()
	host := netip.MustParsePrefix("198.18.1.7/32") // outside every route of the bed: chunks made and freed
	route := dataplane.Route{Prefix: host, Kind: dataplane.RouteLocal, HostVRF: fixture.GREEN}
	run := make([]byte, 4*(1+lookupKeys))
	binary.NativeEndian.PutUint32(run, uint32(fixture.RED))
	copy(run[4:], host.Addr().AsSlice())
	must(b, bed.l.DP.SetRoute(fixture.RED, route))
	if got := lookupRun(b, fib, run)[1]; got == 0 {
		b.Fatal("the program does not find the route just set")
	}
	must(b, bed.l.DP.DeleteRoute(fixture.RED, host))
	if got := lookupRun(b, fib, run)[1]; got != 0 {
		b.Fatalf("the program finds %#x for a deleted route", got)
	}
	var set, del time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		must(b, bed.l.DP.SetRoute(fixture.RED, route))
		mid := time.Now()
		must(b, bed.l.DP.DeleteRoute(fixture.RED, host))
		set, del = set+mid.Sub(start), del+time.Since(mid)
	}
	b.ReportMetric(set.Seconds()*1e6/float64(b.N), "set-µs")
	b.ReportMetric(del.Seconds()*1e6/float64(b.N), "delete-µs")
}

// BenchmarkReadTable: reading a VRF's whole table back from the data path
// (Dataplane.Routes: what xleafctl verify and the agent's audit read), the
// table BenchmarkReplaceTable writes.
func BenchmarkReadTable(b *testing.B) {
	const n = 100_000
	dp, routes := tableBench(b, n)
	if err := dp.ReplaceTable(1, routes); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, err := dp.Routes(1)
		if err != nil || len(got) != n {
			b.Fatalf("read %d routes, %v; want %d", len(got), err, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
}

// BenchmarkVerify: the agent's audit of a 100k-route VRF (what xleafd
// runs every minute, and xleafctl verify on demand): the RIB's selected
// routes against the table read back from the data path. Time and memory
// allocated per route.
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	dp, routes := tableBench(b, n)
	r := rib.New(dp)
	r.SetVRFs([]rib.VRF{{Name: "RED", ID: 1, VNI: 4001, ASN: 65110}})
	for _, route := range routes {
		for _, m := range route.Remotes {
			r.Update(&rib.Path{Prefix: route.Prefix, Attrs: &rib.Attrs{Peer: "spine", RD: m.VTEP.String() + ":3", VTEP: m.VTEP, VNI: m.VNI,
				RouterMAC: m.RouterMAC, RTs: []rib.RT{{ASN: 65101, Value: 4001}}, ASPath: []uint32{65199, 65101}}})
		}
	}
	if errs := r.Err(); len(errs) > 0 {
		b.Fatal(errs[0])
	}
	var allocs runtime.MemStats
	runtime.ReadMemStats(&allocs)
	before := allocs.TotalAlloc
	for b.Loop() {
		diffs, compared, err := r.Verify(dp.EachRoute)
		if err != nil || len(diffs) != 0 || compared != n {
			b.Fatalf("compared %d routes (want %d): %d differences, %v", compared, n, len(diffs), err)
		}
	}
	runtime.ReadMemStats(&allocs)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
	b.ReportMetric(float64(allocs.TotalAlloc-before)/float64(b.N*n), "B/route")
}
