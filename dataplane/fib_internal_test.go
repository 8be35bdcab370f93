package dataplane

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xleaf/xleaf/test/netns"
)

// TestFIBMatchesLPM: the compiled FIB finds, for any address, the longest
// route of its VRF, through route churn (adds, replacements, deletes, in
// any order), and gives back every chunk once the routes are gone. The
// program's own lookup (run through BPF_PROG_TEST_RUN) and the LPM trie
// find the same as Go's walk of the FIB.
func TestFIBMatchesLPM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF maps)")
	}
	d, err := Open(Options{PinPath: netns.PinPath(t), RoutesPerVRF: 1 << 14, FIBChunks: 4096, FIBSmallChunks: 16384})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetVRF(VRF{ID: 1, VNI: 4001, RouterMAC: []byte{2, 0, 0, 0, 0, 1}, VTEP: netip.MustParseAddr("10.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	// Routes crowd into a few /8s so that they nest and share chunks.
	randPrefix := func() netip.Prefix {
		lens := []int{0, 8, 12, 16, 17, 20, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
		bits := lens[r.IntN(len(lens))]
		a := [4]byte{byte(10 + r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(8)), byte(r.IntN(256))}
		return netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked()
	}
	fibProg, lpmProg, err := d.LookupPrograms(1)
	if err != nil {
		t.Fatal(err)
	}
	defer fibProg.Close()
	defer lpmProg.Close()
	routes := map[netip.Prefix]Route{}
	lpm := func(a netip.Addr) uint32 {
		best := -1
		var e uint32
		for p, rt := range routes {
			if p.Contains(a) && p.Bits() > best {
				best, e = p.Bits(), uint32(rt.Kind)<<fibKindBits|uint32(rt.HostVRF)
			}
		}
		return e
	}
	check := func(round int) {
		t.Helper()
		probes := []netip.Addr{}
		for p := range routes {
			last := p.Addr().As4()
			h := be32host(p.Addr()) | (1<<(32-p.Bits()) - 1)
			if p.Bits() == 0 {
				h = 0xffffffff
			}
			last = [4]byte{byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)}
			probes = append(probes, p.Addr(), netip.AddrFrom4(last), p.Addr().Prev(), netip.AddrFrom4(last).Next())
		}
		for range 200 {
			probes = append(probes, netip.AddrFrom4([4]byte{byte(9 + r.IntN(5)), byte(r.IntN(5)), byte(r.IntN(9)), byte(r.IntN(256))}))
		}
		valid := probes[:0]
		for _, a := range probes {
			if !a.IsValid() {
				continue
			}
			valid = append(valid, a)
			if got, want := d.fib.lookup(1, a), lpm(a); got != want {
				t.Fatalf("round %d: %v finds %#x, the longest match is %#x (%d routes)", round, a, got, want, len(routes))
			}
			// at also gives the match's length (DeleteRoute's old value).
			best := 0
			for p := range routes {
				if p.Contains(a) && p.Bits() > best {
					best = p.Bits()
				}
			}
			if got := d.fib.at(d.fib.tables[1], a); got.e != 0 && int(got.plen) != best {
				t.Fatalf("round %d: %v: at gives length %d, the longest match is /%d", round, a, got.plen, best)
			}
		}
		for i := 0; i < len(valid); i += lookupKeys {
			batch := valid[i:min(i+lookupKeys, len(valid))]
			for name, prog := range map[string]*ebpf.Program{"program": fibProg, "trie": lpmProg} {
				for k, got := range runLookups(t, prog, 1, batch) {
					if want := lpm(batch[k]); got != want {
						t.Fatalf("round %d: the %s finds %#x for %v, the longest match is %#x", round, name, got, batch[k], want)
					}
				}
			}
		}
	}
	for round := range 60 {
		for range 20 {
			p := randPrefix()
			if _, ok := routes[p]; ok && r.IntN(2) == 0 {
				if err := d.DeleteRoute(1, p); err != nil {
					t.Fatal(err)
				}
				delete(routes, p)
				continue
			}
			// Local routes to VRF 1..7: distinct entries to tell apart.
			rt := Route{Prefix: p, Kind: RouteLocal, HostVRF: VRFID(1 + r.IntN(7))}
			if err := d.SetRoute(1, rt); err != nil {
				t.Fatal(err)
			}
			routes[p] = rt
		}
		check(round)
	}
	// A whole table at once (how Open and ReplaceTable build a FIB).
	var table []Route
	for _, rt := range routes {
		table = append(table, rt)
	}
	if err := d.ReplaceTable(1, table); err != nil {
		t.Fatal(err)
	}
	fibProg.Close()
	lpmProg.Close()
	if fibProg, lpmProg, err = d.LookupPrograms(1); err != nil { // the new trie
		t.Fatal(err)
	}
	check(-1)
	big, small := d.fib.chunksInUse()
	t.Logf("%d routes use %d chunks of 256 entries and %d range chunks", len(routes), big, small)
	for p := range routes {
		if err := d.DeleteRoute(1, p); err != nil {
			t.Fatal(err)
		}
		delete(routes, p)
	}
	check(-2)
	if big, small := d.fib.chunksInUse(); big != 0 || small != 0 {
		t.Errorf("%d big and %d small chunks still in use with no route left", big, small)
	}
}

const lookupKeys = 64

// runLookups runs a lookup program (LookupPrograms) on up to 64 addresses
// of vrf and returns the entries it finds.
func runLookups(t *testing.T, p *ebpf.Program, vrf VRFID, addrs []netip.Addr) []uint32 {
	t.Helper()
	in := make([]byte, 4*(1+lookupKeys))
	binary.NativeEndian.PutUint32(in, uint32(vrf))
	for k, a := range addrs {
		copy(in[4*(1+k):], a.AsSlice())
	}
	out := make([]byte, len(in))
	if ret, err := p.Run(&ebpf.RunOptions{Data: in, DataOut: out}); err != nil || ret != XDPPass {
		t.Fatalf("lookup program: verdict %d, %v", ret, err)
	}
	got := make([]uint32, len(addrs))
	for k := range got {
		got[k] = binary.NativeEndian.Uint32(out[4*(1+k):])
	}
	return got
}

// BenchmarkFIBBuild: compiling a 1M-route table into a new FIB (what Open
// and ReplaceTable do, the LPM trie aside): random /24-/32 routes over 128
// /16s (crowded /24s: 256-entry chunks) and over 4096 /16s (sparse: range
// chunks).
func BenchmarkFIBBuild(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (BPF maps)")
	}
	d, err := Open(Options{PinPath: netns.PinPath(b), FIBChunks: 1 << 17, FIBSmallChunks: 1 << 21})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for _, span := range []int{128, 4096} {
		b.Run(fmt.Sprintf("routes=1M/16s=%d", span), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			seen := map[netip.Prefix]bool{}
			var ps []netip.Prefix
			var es []uint32
			for len(ps) < 1_000_000 {
				x := r.IntN(span << 16)
				a := netip.AddrFrom4([4]byte{byte(10 + x>>24), byte(x >> 16), byte(x >> 8), byte(r.IntN(256))})
				p := netip.PrefixFrom(a, 24+r.IntN(9)).Masked()
				if !seen[p] {
					seen[p] = true
					ps, es = append(ps, p), append(es, uint32(RouteRemote)<<fibKindBits|5)
				}
			}
			for b.Loop() {
				t, err := d.fib.newVRF(1)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.fib.setAll(t, ps, es); err != nil {
					b.Fatal(err)
				}
				big, small := d.fib.chunksInUse()
				b.ReportMetric(float64(big), "chunks")
				b.ReportMetric(float64(small), "range-chunks")
				d.fib.releaseAll(t)
				d.fib.graceDone()
			}
		})
	}
}

// TestFIBReclaimsInBackground: chunks freed by route changes become
// reusable without a route change waiting for a grace period.
func TestFIBReclaimsInBackground(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF maps)")
	}
	d, err := Open(Options{PinPath: netns.PinPath(t), FIBChunks: 64, FIBSmallChunks: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := netip.MustParsePrefix("10.1.2.3/32")
	if err := d.SetRoute(1, Route{Prefix: p, Kind: RouteBlackhole}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteRoute(1, p); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		big, small, _ := d.fib.pendingNow()
		return big + small
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d chunks pending after a /32 came and went, want 2 (its /16's and its /24's)", n)
	}
	deadline := time.Now().Add(10 * reclaimInterval)
	for pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d chunks still pending after %v", pending(), 10*reclaimInterval)
		}
		time.Sleep(reclaimInterval / 10)
	}
	if big, small := d.fib.chunksInUse(); big != 0 || small != 0 || len(d.fib.big.free) != 64 || len(d.fib.small.free) != 64 {
		t.Errorf("after reclaim: %d+%d in use, %d+%d free", big, small, len(d.fib.big.free), len(d.fib.small.free))
	}
}
