package rib

import (
	"fmt"
	"net/netip"
)

// Lookup is vrf's selected route for addr: the longest prefix holding it
// that has one (false: none, the VRF's default unreachable applies). For
// explaining a packet: it walks the prefix lengths, 32 map lookups.
func (r *RIB) Lookup(vrf string, addr netip.Addr) (Entry, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.vrfs[vrf]
	if t == nil {
		return Entry{}, false, fmt.Errorf("vrf %s not configured", vrf)
	}
	for bits := addr.BitLen(); bits >= 0; bits-- {
		p, err := addr.Prefix(bits)
		if err != nil {
			return Entry{}, false, err
		}
		_, candidate := t.connected[p]
		if !candidate && !t.local[p] && t.paths(p).first == nil && !t.aggActive[p] {
			continue
		}
		if e, ok := r.selectRoute(t, p); ok {
			inst, had := t.installedAt(p)
			e.Installed = had && sameRoute(r.route(inst, p), r.toDataplane(e))
			if had {
				e.Since = inst.sinceTime()
			}
			return e, true, nil
		}
	}
	return Entry{}, false, nil
}

// Provenance is where a selected route of a VRF comes from.
type Provenance struct {
	// Owner is the VRF here whose prefix it is: the port's VRF for a
	// connected route, the VRF whose L3VNI the best path's label is for a
	// BGP one; "" when no VRF here has that VNI (a VRF of another site),
	// then VNI is the label.
	Owner string
	VNI   uint32
	// Import is the VRF's import target that took the route, and Matched
	// the route's own target it accepted (Imported false: the route is the
	// VRF's own, or an aggregate).
	Import, Matched RT
	Imported        bool
}

// Provenance says where e, a selected route of vrf, comes from.
func (r *RIB) Provenance(vrf string, e Entry) Provenance {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.vrfs[vrf]
	if t == nil {
		return Provenance{}
	}
	var pv Provenance
	var rts []RT
	switch e.Source {
	case SourceLocal, SourceAggregate:
		return Provenance{Owner: vrf}
	case SourceConnected:
		pv.Owner = e.HostVRF
		if e.HostVRF == vrf {
			return pv
		}
		if o := r.vrfs[e.HostVRF]; o != nil {
			rts = o.vrf.ExportRTs()
		}
	case SourceBGP:
		if len(e.Paths) == 0 {
			return pv
		}
		best := e.Paths[0]
		pv.VNI = best.VNI
		for name, o := range r.vrfs {
			if o.vrf.VNI == best.VNI {
				pv.Owner = name
			}
		}
		rts = best.RTs
	}
	for _, imp := range t.vrf.ImportRTs() {
		for _, rt := range rts {
			if imp.Matches(rt) {
				pv.Import, pv.Matched, pv.Imported = imp, rt, true
				return pv
			}
		}
	}
	return pv
}
