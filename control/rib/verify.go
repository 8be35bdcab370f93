package rib

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/xleaf/xleaf/dataplane"
)

// Difference is one way a VRF's table in the data path disagrees with the
// RIB: a route the RIB selected that the data path lacks (missing), one the
// data path holds that the RIB does not want (extra), or the same prefix
// forwarding otherwise (different).
type Difference struct {
	VRF    string `json:"vrf"`
	Prefix string `json:"prefix"`
	Kind   string `json:"kind"` // missing, extra, different
	Want   string `json:"want,omitempty"`
	Got    string `json:"got,omitempty"`
}

// Verify compares every VRF's table in the data path (read a batch at a
// time) with what the RIB wants there: each selected route as it programs
// it, and each route a previous run left that is not swept yet. It does
// not hold the RIB while reading the data path (a big table takes a
// while, and the RIB would hold every update back meanwhile): it compares
// what it read a chunk at a time, so a change in flight may show as a
// difference, and the caller confirms one by asking again. It keeps no
// copy of either table, only the prefixes it saw. It returns the
// differences, in VRF and prefix order, and how many routes it compared.
func (r *RIB) Verify(read func(dataplane.VRFID, func(dataplane.Route) error) error) ([]Difference, int, error) {
	r.mu.Lock()
	names := make([]string, 0, len(r.vrfs))
	for name := range r.vrfs {
		names = append(names, name)
	}
	r.mu.Unlock()
	slices.Sort(names)
	var diffs []Difference
	n := 0
	for _, name := range names {
		d, m, err := r.verifyVRF(name, read)
		if err != nil {
			return nil, n, err
		}
		diffs, n = append(diffs, d...), n+m
	}
	return diffs, n, nil
}

// verifyChunk is how many routes read from the data path are compared
// under one hold of the RIB.
const verifyChunk = 4096

func (r *RIB) verifyVRF(name string, read func(dataplane.VRFID, func(dataplane.Route) error) error) ([]Difference, int, error) {
	r.mu.Lock()
	t := r.vrfs[name]
	var id dataplane.VRFID
	if t != nil {
		id = t.vrf.ID // SetVRFs may replace t.vrf while the table is read
	}
	r.mu.Unlock()
	if t == nil {
		return nil, 0, nil // gone meanwhile
	}
	var (
		diffs    []Difference
		seen     = map[netip.Prefix]struct{}{}
		chunk    = make([]dataplane.Route, 0, verifyChunk)
		replaced bool
	)
	compare := func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if replaced = replaced || r.vrfs[name] != t || t.vrf.ID != id; replaced {
			return
		}
		for _, g := range chunk {
			seen[g.Prefix] = struct{}{}
			w, ok := r.want(t, g.Prefix)
			switch {
			case !ok:
				diffs = append(diffs, Difference{VRF: name, Prefix: g.Prefix.String(), Kind: "extra", Got: describe(r, g)})
			case !sameForwarding(w, g):
				diffs = append(diffs, Difference{VRF: name, Prefix: g.Prefix.String(), Kind: "different", Want: describe(r, w), Got: describe(r, g)})
			}
		}
		chunk = chunk[:0]
	}
	err := read(id, func(g dataplane.Route) error {
		if chunk = append(chunk, g); len(chunk) == cap(chunk) {
			compare()
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("vrf %s: read the data path's table: %w", name, err)
	}
	compare()
	r.mu.Lock()
	defer r.mu.Unlock()
	if replaced || r.vrfs[name] != t || t.vrf.ID != id {
		return nil, 0, nil // replaced meanwhile
	}
	n := 0
	for p := range t.allPrefixes() {
		n++
		if _, ok := seen[p]; !ok {
			w, _ := r.want(t, p)
			diffs = append(diffs, Difference{VRF: name, Prefix: p.String(), Kind: "missing", Want: describe(r, w)})
		}
	}
	slices.SortFunc(diffs, func(a, b Difference) int {
		pa, pb := netip.MustParsePrefix(a.Prefix), netip.MustParsePrefix(b.Prefix)
		return cmp.Or(pa.Addr().Compare(pb.Addr()), cmp.Compare(pa.Bits(), pb.Bits()))
	})
	return diffs, n, nil
}

// want is the route the RIB programs for p in t: the selected one, or a
// previous run's not swept yet: one for each prefix allPrefixes lists.
// Called with r.mu held.
func (r *RIB) want(t *table, p netip.Prefix) (dataplane.Route, bool) {
	if e, ok := r.selectRoute(t, p); ok {
		return r.toDataplane(e), true
	}
	if t.stale[p] {
		in, _ := t.installedAt(p)
		return r.route(in, p), true
	}
	return dataplane.Route{}, false
}

// sameForwarding: the same kind, host VRF and set of remotes (in any
// order: the data path keeps a group's members in its own). Matched
// pairwise: a set has at most MaxECMP members (fmt keys for a sort were a
// tenth of xleafd's CPU while an audit overlapped a withdrawal).
func sameForwarding(a, b dataplane.Route) bool {
	if a.Kind != b.Kind || a.HostVRF != b.HostVRF || len(a.Remotes) != len(b.Remotes) {
		return false
	}
	var used [dataplane.MaxECMP]bool
	if len(b.Remotes) > len(used) {
		return false // no group is that big
	}
next:
	for _, x := range a.Remotes {
		for j, y := range b.Remotes {
			if !used[j] && sameRemote(x, y) {
				used[j] = true
				continue next
			}
		}
		return false
	}
	return true
}

// describe is a route as show route prints its forwarding, the host VRF by
// name. Called with r.mu held.
func describe(r *RIB, d dataplane.Route) string {
	switch d.Kind {
	case dataplane.RouteReceive:
		return "local"
	case dataplane.RouteBlackhole:
		return "blackhole"
	case dataplane.RouteLocal:
		for name, t := range r.vrfs {
			if t.vrf.ID == d.HostVRF {
				return "connected, vrf " + name
			}
		}
		return fmt.Sprintf("connected, vrf id %d", d.HostVRF)
	}
	var parts []string
	for _, m := range d.Remotes {
		parts = append(parts, fmt.Sprintf("via %v vni %d rmac %v", m.VTEP, m.VNI, m.RouterMAC))
	}
	return strings.Join(parts, ", ")
}
