package dataplane

import (
	"reflect"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestLayoutMatchesC guards the map keys and values: every generated Go
// type has the size and field offsets of its C struct in the object's BTF,
// and the limits in types.go are the C ones.
func TestLayoutMatchesC(t *testing.T) {
	spec, err := loadXleaf()
	if err != nil {
		t.Fatal(err)
	}
	for name, goType := range map[string]any{
		"iface": xleafIface{}, "vrf": xleafVrf{}, "lpm_key": xleafLpmKey{}, "route": xleafRoute{},
		"nexthop": xleafNexthop{}, "nhg": xleafNhg{}, "neigh_key": xleafNeighKey{}, "neigh": xleafNeigh{},
		"counter": xleafCounter{}, "event": xleafEvent{}, "underlay_hop": xleafUnderlayHop{},
	} {
		var s *btf.Struct
		if err := spec.Types.TypeByName(name, &s); err != nil {
			t.Errorf("struct %s: %v", name, err)
			continue
		}
		rt := reflect.TypeOf(goType)
		if uintptr(s.Size) != rt.Size() {
			t.Errorf("struct %s: C size %d, Go size %d", name, s.Size, rt.Size())
		}
		goFields := map[string]uintptr{}
		for i := range rt.NumField() {
			goFields[rt.Field(i).Name] = rt.Field(i).Offset
		}
		for _, m := range s.Members {
			off, ok := goFields[goName(m.Name)]
			if !ok {
				t.Errorf("struct %s: field %s missing in Go", name, m.Name)
			} else if uintptr(m.Offset.Bytes()) != off {
				t.Errorf("struct %s: field %s at %d in C, %d in Go", name, m.Name, m.Offset.Bytes(), off)
			}
		}
	}

	var hop xleafUnderlayHop
	if len(hop.Member) != MaxUnderlayECMP {
		t.Errorf("underlay_hop: %d members; underlay.go says %d", len(hop.Member), MaxUnderlayECMP)
	}
	var nhg xleafNhg
	if len(nhg.Member) != MaxECMP || len(nhg.Slot) != NHGSlots {
		t.Errorf("nhg: %d members, %d slots; types.go says %d, %d", len(nhg.Member), len(nhg.Slot), MaxECMP, NHGSlots)
	}
	for name, want := range map[string]uint32{"vrf_tables": MaxVRFs, "vrfs": MaxVRFs, "nhgs": MaxNHGs, "stats": StatsSlots, "leak_vnis": LeakCols, "iface_index": IfaceIndexMax,
		"vni_index": vniIndexSize, "underlay_index": underlayIndexSize, "underlay_slots": underlaySlots, "underlay_hops": maxUnderlayHops} {
		if got := spec.Maps[name].MaxEntries; got != want {
			t.Errorf("map %s: %d entries in C, Go expects %d", name, got, want)
		}
	}
	if reasonMax > ReasonSlots {
		t.Errorf("%d reasons do not fit %d counter slots per VRF", reasonMax, ReasonSlots)
	}
	if len(reasonNames) != int(reasonMax) {
		t.Errorf("%d reason names for %d reasons", len(reasonNames), reasonMax)
	}
}

// goName is bpf2go's field name for a C member: snake_case to CamelCase.
func goName(c string) string {
	out := []byte{}
	upper := true
	for i := 0; i < len(c); i++ {
		switch {
		case c[i] == '_':
			upper = true
		case upper && c[i] >= 'a' && c[i] <= 'z':
			out = append(out, c[i]-32)
			upper = false
		default:
			out = append(out, c[i])
			upper = false
		}
	}
	return string(out)
}
