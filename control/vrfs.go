package control

import (
	"fmt"
	"maps"
	"slices"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/dataplane"
)

// tenantVRF is one configured VRF as every part sees it.
type tenantVRF struct {
	*config.VRF
	ID dataplane.VRFID
	RD string // router-id:id, stable across restarts
}

// exportRTs are the route targets the VRF's routes carry: those
// configured, or ASN:VNI.
func (v *tenantVRF) exportRTs() []bgp.RT {
	if len(v.ExportRTs) == 0 {
		return []bgp.RT{{ASN: v.ASN, Value: v.VNI}}
	}
	out := make([]bgp.RT, len(v.ExportRTs))
	for i, rt := range v.ExportRTs {
		out[i] = bgp.RT{Addr: rt.Addr, ASN: rt.ASN, Value: rt.Value}
	}
	return out
}

// vrfSet is the applied VRFs. It never changes once built: every apply
// builds a new one, so a part reads it without anyone's lock.
type vrfSet struct {
	byName map[string]*tenantVRF
	byID   map[dataplane.VRFID]*tenantVRF
}

func newVRFSet(cfg *config.Config, ids vrfIDs) *vrfSet {
	s := &vrfSet{byName: map[string]*tenantVRF{}, byID: map[dataplane.VRFID]*tenantVRF{}}
	for name, v := range cfg.VRFs {
		id := ids[name]
		t := &tenantVRF{VRF: v, ID: id, RD: fmt.Sprintf("%s:%d", v.RouterID, id)}
		s.byName[name], s.byID[id] = t, t
	}
	return s
}

// get is a VRF by name (nil if not configured); a nil set has none.
func (s *vrfSet) get(name string) *tenantVRF {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// nameOf is how the views name VRF id: its name, "-" for 0 (no VRF known
// yet), the number for one not configured.
func (s *vrfSet) nameOf(id dataplane.VRFID) string {
	if s != nil {
		if v := s.byID[id]; v != nil {
			return v.Name
		}
	}
	if id == 0 {
		return "-"
	}
	return fmt.Sprint(id)
}

// vniName names where a packet encapsulated with vni goes: the VRF here
// whose L3VNI it is (here true), else "vni N", a VRF of another site.
func (s *vrfSet) vniName(vni uint32) (name string, here bool) {
	if s != nil {
		for _, v := range s.byID {
			if v.VNI == vni {
				return v.Name, true
			}
		}
	}
	return fmt.Sprintf("vni %d", vni), false
}

// names are the VRFs' names, sorted.
func (s *vrfSet) names() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.byName))
}

// rib is the set as the RIB takes it.
func (s *vrfSet) rib() []rib.VRF {
	var out []rib.VRF
	for _, name := range s.names() {
		v := s.byName[name]
		rv := rib.VRF{Name: name, ID: v.ID, VNI: v.VNI, ASN: v.ASN, Aggregates: slices.Clone(v.Aggregates)}
		for _, rt := range v.ImportRTs {
			rv.Imports = append(rv.Imports, rib.RT{Any: rt.Any, Addr: rt.Addr, ASN: rt.ASN, Value: rt.Value})
		}
		for _, rt := range v.ExportRTs {
			rv.Exports = append(rv.Exports, rib.RT{Addr: rt.Addr, ASN: rt.ASN, Value: rt.Value})
		}
		out = append(out, rv)
	}
	return out
}

// vrfIDs gives each VRF name its data path id. An id is never reused
// within a run while its VRF is being removed, and a restarted agent finds
// the ids the data path holds (by VNI), so nothing of one VRF lands in
// another.
type vrfIDs map[string]dataplane.VRFID

// adopt takes the ids of the VRFs a previous run left in the data path,
// for those cfg still has (by VNI); it returns the others, to remove.
func (ids vrfIDs) adopt(cfg *config.Config, existing []dataplane.VRF) (stale []dataplane.VRF) {
	byVNI := map[uint32]string{}
	for name, v := range cfg.VRFs {
		byVNI[v.VNI] = name
	}
	for _, v := range existing {
		name, ok := byVNI[v.VNI]
		if !ok {
			stale = append(stale, v)
			continue
		}
		ids[name] = v.ID
	}
	return stale
}

// allocate gives every VRF of cfg an id, keeping the ids of those that
// have one; new ones get ids no name holds now, removed ones included.
func (ids vrfIDs) allocate(cfg *config.Config) error {
	used := map[dataplane.VRFID]bool{}
	for _, id := range ids {
		used[id] = true
	}
	next := dataplane.VRFID(1)
	for _, name := range slices.Sorted(maps.Keys(cfg.VRFs)) {
		if _, ok := ids[name]; ok {
			continue
		}
		for used[next] {
			next++
		}
		if next >= dataplane.MaxVRFs {
			return fmt.Errorf("more than %d VRFs", dataplane.MaxVRFs-1)
		}
		ids[name], used[next] = next, true
	}
	return nil
}
