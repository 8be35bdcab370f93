package rib

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/xleaf/xleaf/dataplane"
)

// read is Dataplane.EachRoute over the fake's tables, in address order.
func (f *fakeDP) read(vrf dataplane.VRFID, fn func(dataplane.Route) error) error {
	for _, p := range slices.SortedFunc(maps.Keys(f.tables[vrf]), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
		if err := fn(f.tables[vrf][p]); err != nil {
			return err
		}
	}
	return nil
}

// TestVerify: the audit finds each kind of difference, before and after
// a chunk's end (a table bigger than one chunk), counts every route the
// RIB wants (a previous run's not swept yet included), and finds nothing
// when the data path holds what the RIB programmed.
func TestVerify(t *testing.T) {
	dp, r := guideRIB()
	// More than two chunks of RED routes from one leaf.
	n := 2*verifyChunk + 10
	for i := range n {
		r.Update(t5("spine", fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256), "10.10.10.1", 4001, rmac1, RT{ASN: 65101, Value: 4001}, 65199, 65101))
	}
	stale := dataplane.Route{Prefix: pfx("172.16.0.0/16"), Kind: dataplane.RouteBlackhole}
	dp.SetRoute(1, stale)
	r.Adopt("RED", []dataplane.Route{stale})
	want := len(dp.tables[1]) + len(dp.tables[2]) + len(dp.tables[3])

	diffs, compared, err := r.Verify(dp.read)
	if err != nil || len(diffs) != 0 {
		t.Fatalf("a data path as programmed: %v, %v", diffs, err)
	}
	if compared != want {
		t.Errorf("compared %d routes, want %d (every route the data path holds)", compared, want)
	}

	// One of each, in RED: the first chunk, the last, and in between.
	first, last := pfx("10.100.0.0/24"), pfx(fmt.Sprintf("10.%d.%d.0/24", 100+(n-1)/256, (n-1)%256))
	mid := pfx(fmt.Sprintf("10.%d.%d.0/24", 100+verifyChunk/256, verifyChunk%256+3))
	// Missing: the first; and a previous run's route, not swept yet.
	delete(dp.tables[1], first)
	delete(dp.tables[1], stale.Prefix)
	// Extra.
	dp.tables[1][pfx("10.99.0.0/24")] = dataplane.Route{Prefix: pfx("10.99.0.0/24"), Kind: dataplane.RouteBlackhole}
	// Different: the last, and one in between.
	dp.tables[1][last] = dataplane.Route{Prefix: last, Kind: dataplane.RouteRemote,
		Remotes: []dataplane.Remote{remote("10.10.10.2", 4001, rmac2)}}
	dp.tables[1][mid] = dataplane.Route{Prefix: mid, Kind: dataplane.RouteLocal, HostVRF: 2}

	diffs, _, err = r.Verify(dp.read)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range diffs {
		got[d.VRF+" "+d.Prefix] = d.Kind
	}
	wantDiffs := map[string]string{
		"RED 10.99.0.0/24": "extra", "RED " + first.String(): "missing", "RED " + last.String(): "different",
		"RED " + mid.String(): "different", "RED 172.16.0.0/16": "missing",
	}
	if !maps.Equal(got, wantDiffs) {
		t.Errorf("differences %v, want %v", got, wantDiffs)
	}
	if !slices.IsSortedFunc(diffs, func(a, b Difference) int {
		return netip.MustParsePrefix(a.Prefix).Addr().Compare(netip.MustParsePrefix(b.Prefix).Addr())
	}) {
		t.Errorf("differences not in prefix order: %v", diffs)
	}
	for _, d := range diffs {
		if d.Prefix == last.String() && (d.Want != "via 10.10.10.1 vni 4001 rmac "+rmac1.String() || d.Got != "via 10.10.10.2 vni 4001 rmac "+rmac2.String()) {
			t.Errorf("%s: want %q got %q", d.Prefix, d.Want, d.Got)
		}
	}
}

// TestVerifyDuringApply: an audit reading the data path while a
// configuration apply replaces the VRFs (run with -race: the audit read
// the VRF's ID outside the RIB's lock).
func TestVerifyDuringApply(t *testing.T) {
	dp, r := guideRIB()
	for _, p := range guidePaths() {
		r.Update(p)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			r.SetVRFs(guideVRFs()) // the same: nothing to program
		}
	}()
	for range 50 {
		if _, _, err := r.Verify(dp.read); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if diffs, _, err := r.Verify(dp.read); err != nil || len(diffs) != 0 {
		t.Errorf("after the applies: %v, %v", diffs, err)
	}
}

// TestSameForwarding: remote sets compare as sets (any order), every
// field counts, and a member repeated is not another member.
func TestSameForwarding(t *testing.T) {
	a, b := remote("10.10.10.1", 4001, rmac1), remote("10.10.10.2", 4001, rmac2)
	route := func(rs ...dataplane.Remote) dataplane.Route {
		return dataplane.Route{Prefix: pfx("192.168.1.0/24"), Kind: dataplane.RouteRemote, Remotes: rs}
	}
	otherMAC, otherVNI, otherVTEP := a, a, a
	otherMAC.RouterMAC, otherVNI.VNI, otherVTEP.VTEP = rmac2, 4002, addr("10.10.10.3")
	for _, c := range []struct {
		name string
		x, y dataplane.Route
		want bool
	}{
		{"same order", route(a, b), route(a, b), true},
		{"other order", route(a, b), route(b, a), true},
		{"one less", route(a, b), route(a), false},
		{"repeated", route(a, a), route(a, b), false},
		{"router mac", route(a), route(otherMAC), false},
		{"vni", route(a), route(otherVNI), false},
		{"vtep", route(a), route(otherVTEP), false},
		{"kind", route(a), dataplane.Route{Kind: dataplane.RouteBlackhole}, false},
		{"host vrf", dataplane.Route{Kind: dataplane.RouteLocal, HostVRF: 1}, dataplane.Route{Kind: dataplane.RouteLocal, HostVRF: 2}, false},
	} {
		if got := sameForwarding(c.x, c.y); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
