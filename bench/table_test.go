package bench_test

import (
	"net/netip"
	"testing"

	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

// BenchmarkReplaceTable: programming a VRF's whole table (what a restart
// or a full BGP table costs the agent), 100k remote routes over 4 groups.
func BenchmarkReplaceTable(b *testing.B) {
	netns.Root(b)
	dp, err := dataplane.Open(dataplane.Options{PinPath: netns.PinPath(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer dp.Close()
	groups := [][]dataplane.Remote{
		{{VTEP: fixture.Leaf01, VNI: 4001, RouterMAC: fixture.Leaf01MAC}},
		{{VTEP: fixture.Leaf02, VNI: 4001, RouterMAC: fixture.Leaf02MAC}},
		{{VTEP: fixture.Leaf01, VNI: 4001, RouterMAC: fixture.Leaf01MAC}, {VTEP: fixture.Leaf02, VNI: 4001, RouterMAC: fixture.Leaf02MAC}},
		{{VTEP: fixture.Border04, VNI: 5001, RouterMAC: fixture.Border04MAC}},
	}
	const n = 100_000
	routes := make([]dataplane.Route, n)
	for i := range routes {
		a := addrFromUint(0x0a800000 + uint32(i)<<8)
		routes[i] = dataplane.Route{Prefix: netip.PrefixFrom(a, 24), Kind: dataplane.RouteRemote, Remotes: groups[i%len(groups)]}
	}
	b.ResetTimer()
	for range b.N {
		if err := dp.ReplaceTable(1, routes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
}
