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
				r := sweep(b, fd, pl)
				dropHops(b, bed.l.DP)
				k := sweep(b, fd, pl)
				resolved, kernel, ratio = append(resolved, r), append(kernel, k), append(ratio, r/k)
			}
			resolveHops(b, bed.l.DP)
			b.ReportMetric(median(resolved), "resolved-ns/pkt")
			b.ReportMetric(median(kernel), "kernel-ns/pkt")
			b.ReportMetric(median(ratio), "resolved/kernel")
		})
	}
}

// sweep runs every frame of pl once and returns the kernel's mean time per
// packet.
func sweep(b *testing.B, fd int, pl *pool) float64 {
	var ns uint64
	for i := range pl.frames {
		ret, dur, err := testRun(fd, &pl.frames[i], 1)
		if err != nil {
			b.Fatal(err)
		}
		if int(ret) != pl.action {
			b.Fatalf("frame %d: action %d, want %d", i, ret, pl.action)
		}
		ns += uint64(dur)
	}
	return float64(ns) / float64(len(pl.frames))
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
