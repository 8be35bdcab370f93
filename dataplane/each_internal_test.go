package dataplane

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// TestEachEntry: a route table of more entries than one batch read is
// read whole, each entry once with its value, in batches and an entry at
// a time alike; fn's error stops the read and is returned.
func TestEachEntry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF maps)")
	}
	spec, err := loadXleaf()
	if err != nil {
		t.Fatal(err)
	}
	ts := spec.Maps[xleafMapVrfTableTmpl].Copy()
	ts.MaxEntries = 3 * readBatch
	m, err := ebpf.NewMap(ts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 2*readBatch + 100
	var keys []xleafLpmKey
	var vals []xleafRoute
	for i := range n {
		keys = append(keys, xleafLpmKey{Prefixlen: 32, Addr: uint32(0x0a000000 + i)})
		vals = append(vals, xleafRoute{Kind: uint8(RouteRemote), Prefixlen: 32, Target: uint32(i)})
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		t.Fatal(err)
	}
	var c ebpf.MapBatchCursor
	if _, err := m.BatchLookup(&c, keys[:1], vals[:1], nil); errors.Is(err, ebpf.ErrNotSupported) {
		t.Log("this kernel reads LPM tries an entry at a time only: both cases below read so")
	}
	for name, each := range map[string]func(*ebpf.Map, func(xleafLpmKey, xleafRoute) error) error{
		"batches": eachEntry[xleafLpmKey], "one at a time": eachEntryIterate[xleafLpmKey],
	} {
		seen := map[uint32]int{}
		if err := each(m, func(k xleafLpmKey, v xleafRoute) error {
			if v.Target != k.Addr-0x0a000000 {
				t.Errorf("%s: %x: value %+v", name, k.Addr, v)
			}
			seen[k.Addr]++
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(seen) != n {
			t.Errorf("%s: read %d entries, want %d", name, len(seen), n)
		}
		for a, c := range seen {
			if c != 1 {
				t.Errorf("%s: %x read %d times", name, a, c)
			}
		}
		stop := errors.New("stop")
		calls := 0
		if err := each(m, func(xleafLpmKey, xleafRoute) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
			t.Errorf("%s: fn's error: %v after %d calls, want it after 1", name, err, calls)
		}
	}
}
