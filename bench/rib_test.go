package bench_test

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/dataplane"
)

// BenchmarkRIBLoad: the RIB alone (its data path a no-op) taking N Type-5
// paths that two VRFs import, as in BenchmarkBGPScale, then withdrawing
// them: the Go side of xleafd's route pipeline, without GoBGP or the
// kernel. ns/route is the load's time a route; live-B/route is
// the heap the loaded RIB holds, after a collection; withdraw-ns/route
// the withdrawal's time.
func BenchmarkRIBLoad(b *testing.B) {
	const n = 200_000
	mac, _ := net.ParseMAC("44:38:39:22:dd:01")
	rts := []rib.RT{{ASN: 65101, Value: 4001}}
	asPath := []uint32{65199}
	attrs := &rib.Attrs{Peer: "127.0.0.2", RD: "10.10.10.1:2", VTEP: netip.MustParseAddr("10.10.10.1"), VNI: 4001,
		RouterMAC: mac, RTs: rts, ASPath: asPath} // one set, as xleafd interns them
	paths := make([]*rib.Path, n)
	for i := range paths {
		paths[i] = &rib.Path{Prefix: netip.PrefixFrom(scaleAddr(i), 32), Attrs: attrs}
	}
	vrfs := []rib.VRF{
		{Name: "RED", ID: 1, VNI: 4001, ASN: 65110},
		{Name: "GREEN", ID: 2, VNI: 4002, ASN: 65110, Imports: []rib.RT{{Any: true, Value: 4001}}},
	}
	var live float64
	var withdraw time.Duration
	b.ResetTimer()
	for range b.N {
		r := rib.New(nopDataplane{})
		r.SetVRFs(vrfs)
		for _, p := range paths {
			r.Update(p)
		}
		b.StopTimer()
		if c := r.Counts(); c["RED"] != n || c["GREEN"] != n {
			b.Fatalf("loaded: %v, want %d routes in each VRF", c, n)
		}
		var loaded, empty runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&loaded)
		start := time.Now()
		for _, p := range paths {
			r.Withdraw(p.Key())
		}
		withdraw += time.Since(start)
		if c := r.Counts(); c["RED"] != 0 || c["GREEN"] != 0 {
			b.Fatalf("withdrawn: %v, want none", c)
		}
		r = nil // its maps (which do not shrink) go too
		runtime.GC()
		runtime.ReadMemStats(&empty)
		live += float64(loaded.HeapAlloc) - float64(empty.HeapAlloc)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
	b.ReportMetric(float64(withdraw.Nanoseconds())/float64(b.N*n), "withdraw-ns/route")
	b.ReportMetric(live/float64(b.N*n), "live-B/route")
}

type nopDataplane struct{}

func (nopDataplane) SetRoute(dataplane.VRFID, dataplane.Route) error { return nil }
func (nopDataplane) DeleteRoute(dataplane.VRFID, netip.Prefix) error { return nil }
