package control

import (
	"context"
	"flag"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/rib"
)

var benchRoutes = flag.Int("bench-routes", 100_000, "Type-5 routes the fabric peer injects in BenchmarkBGPToDataplane")

// BenchmarkBGPToDataplane: a real GoBGP peer sends N Type-5 routes (RED's
// target, so RED and GREEN both import each); the figure is the time from
// the first advertisement until the data path holds the last route, in
// routes per second. Both speakers share this process, so the time includes
// the sender's work too.
func BenchmarkBGPToDataplane(b *testing.B) {
	testbedRoutes = uint32(*benchRoutes) + 1024
	tb := newTestbed(b, leafConfig)
	ctx := context.Background()
	n := *benchRoutes
	routes := make([]bgp.Type5, n)
	for i := range routes {
		a := netip.AddrFrom4([4]byte{10, byte(128 + i>>16), byte(i >> 8), byte(i)})
		routes[i] = bgp.Type5{RD: "10.10.10.1:2", Prefix: netip.PrefixFrom(a, 32), VTEP: addr("10.10.10.1"), VNI: 4001,
			RouterMAC: leaf01MAC, RTs: []rib.RT{{ASN: 65101, Value: 4001}}}
	}
	b.ResetTimer()
	start := time.Now()
	for _, r := range routes {
		if err := tb.fabric.Advertise(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	sent := time.Since(start)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		// The RIB counts a route as installed once the data path took it.
		if c := tb.agent.rib.Counts(); c["RED"] >= n && c["GREEN"] >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not programmed after 2 minutes: %v", tb.agent.rib.Counts())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(n)/took.Seconds(), "routes/s")
	b.ReportMetric(took.Seconds(), "s-to-last")
	b.ReportMetric(sent.Seconds(), "s-sending")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}
