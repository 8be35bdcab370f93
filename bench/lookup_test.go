package bench_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/test/fixture"
)

// BenchmarkLookup is the route lookup alone, the compiled FIB against the
// BPF LPM trie it is built from, on the same keys in the same run: the
// BenchmarkXDP bed with all N routes in RED (one table of N, the trie's
// worst case; BenchmarkXDP spreads them over 16 VRFs), each key a random
// address in one of RED's remote prefixes (what the DCI path looks up). A run looks up 64 keys;
// ns/lookup is the kernel's time per run over 64, so the run's own cost
// (a clock read, the context) adds about 1/64 of BenchmarkHarness's
// floor. Before timing, both programs' answers are compared key by key:
// a fast lookup that finds another route would be a lie.
func BenchmarkLookup(b *testing.B) {
	for _, size := range sizes {
		b.Run("routes="+size.name, func(b *testing.B) {
			bed := newBedIn(b, size.routes, 1)
			fib, lpm, err := bed.l.DP.LookupPrograms(fixture.RED)
			must(b, err)
			defer fib.Close()
			defer lpm.Close()
			runs := make([][]byte, poolSize/16)
			for i := range runs {
				runs[i] = make([]byte, 4*(1+lookupKeys))
				binary.NativeEndian.PutUint32(runs[i], uint32(fixture.RED))
				for k := 1; k <= lookupKeys; k++ {
					copy(runs[i][4*k:], bed.randomIn(bed.redRemote).AsSlice())
				}
			}
			for i, run := range runs {
				f, l := lookupRun(b, fib, run), lookupRun(b, lpm, run)
				for k := 1; k <= lookupKeys; k++ {
					if f[k] == 0 || f[k] != l[k] {
						b.Fatalf("run %d, key %d (%v): the FIB finds %#x, the trie %#x", i, k, run[4*k:4*k+4], f[k], l[k])
					}
				}
			}
			var ns [2]float64
			for i, p := range []*ebpf.Program{fib, lpm} {
				name := [...]string{"fib", "lpm"}[i]
				b.Run(name, func(b *testing.B) {
					ns[i] = measureLookups(b, p, runs)
				})
			}
			if ns[0] > 0 && ns[1] > 0 {
				b.Logf("routes=%s: lpm/fib = %.1f (%.1f ns vs %.1f ns a lookup)", size.name, ns[1]/ns[0], ns[1], ns[0])
			}
		})
	}
}

const lookupKeys = 64

// lookupRun runs p once on run and returns the words it leaves.
func lookupRun(b *testing.B, p *ebpf.Program, run []byte) []uint32 {
	out := make([]byte, len(run))
	ret, err := p.Run(&ebpf.RunOptions{Data: run, DataOut: out})
	must(b, err)
	if ret != 2 { // XDP_PASS
		b.Fatalf("lookup program: verdict %d", ret)
	}
	words := make([]uint32, 1+lookupKeys)
	for k := range words {
		words[k] = binary.NativeEndian.Uint32(out[4*k:])
	}
	return words
}

// measureLookups runs every run once per b.Loop iteration and reports the
// kernel's time per lookup.
func measureLookups(b *testing.B, p *ebpf.Program, runs [][]byte) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var kernel, lookups uint64
	for b.Loop() {
		for _, run := range runs {
			// Each run looks its 64 keys up once: repeating would only
			// look up the answers of the first.
			ns, err := rawRun(p.FD(), run)
			must(b, err)
			kernel += uint64(ns)
			lookups += lookupKeys
		}
	}
	perLookup := float64(kernel) / float64(lookups)
	b.ReportMetric(perLookup, "ns/lookup")
	return perLookup
}

// rawRun is one BPF_PROG_TEST_RUN of data, returning the kernel's time.
func rawRun(fd int, data []byte) (uint32, error) {
	attr := progRunAttr{progFD: uint32(fd), dataSizeIn: uint32(len(data)), dataIn: uint64(uintptr(unsafe.Pointer(&data[0]))), repeat: 1}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(data)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, fmt.Errorf("BPF_PROG_TEST_RUN: %w", errno)
		}
		return attr.duration, nil
	}
}
