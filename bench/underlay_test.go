package bench_test

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/xleaf/xleaf/control"
	"github.com/xleaf/xleaf/dataplane"
)

// resolveHops gives the data path the underlay next hops xleafd would: each
// remote VTEP's, resolved from the kernel as the agent's hops part does.
func resolveHops(tb testing.TB, dp *dataplane.Dataplane) {
	tb.Helper()
	for _, vtep := range dp.RemoteVTEPs() {
		hop, err := control.ResolveUnderlay(vtep)
		if err != nil {
			continue // unresolved or unrouted: the kernel answers
		}
		must(tb, dp.SetUnderlayHop(vtep, hop))
	}
	must(tb, dp.RenewUnderlayHops(time.Hour))
}

// dropHops takes them all out: every packet asks the kernel.
func dropHops(tb testing.TB, dp *dataplane.Dataplane) {
	tb.Helper()
	hops, err := dp.UnderlayHops()
	must(tb, err)
	for vtep := range hops {
		must(tb, dp.DeleteUnderlayHop(vtep))
	}
}

// BenchmarkUnderlay: the encapsulating paths at 1k routes with the underlay
// next hops resolved by the agent (a hash lookup) and without them
// (bpf_fib_lookup per packet), alternating sweeps of the same pool in each
// iteration, so that the ratio compares the two under the same machine
// state. ns/pkt as BenchmarkXDP's; resolved/kernel is the median of the
// iterations' ratios.
func BenchmarkUnderlay(b *testing.B) {
	bed := newBed(b, 1_000)
	for _, p := range []path{dciLeak, accessEncap} {
		pl := bed.pool(b, p, poolSize)
		b.Run("path="+p.String(), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			fd := bed.l.DP.Program().FD()
			var resolved, kernel, ratio []float64
			for b.Loop() {
				resolveHops(b, bed.l.DP)
				n := float64(len(pl.frames))
				r := float64(sweep(b, fd, pl, 1)) / n
				dropHops(b, bed.l.DP)
				k := float64(sweep(b, fd, pl, 1)) / n
				resolved, kernel, ratio = append(resolved, r), append(kernel, k), append(ratio, r/k)
			}
			resolveHops(b, bed.l.DP)
			b.ReportMetric(median(resolved), "resolved-ns/pkt")
			b.ReportMetric(median(kernel), "kernel-ns/pkt")
			b.ReportMetric(median(ratio), "resolved/kernel")
		})
	}
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
