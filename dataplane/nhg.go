package dataplane

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// Nexthop groups are interned: every route with the same set of remote
// members points at one group, so a million routes over a few VTEP pairs
// cost a few groups. A group's slot table is a pure function of its member
// set (rendezvous hashing per slot), which is what makes it resilient: when
// a member leaves, only the slots it won change hands, so only its flows
// move, and a restarted agent computes exactly the table it left behind.

// groups tracks interned nexthop groups. Id 0 is never used, so a zeroed
// route can never name a live group.
type groups struct {
	ids  map[string]uint32 // member-set key -> id
	keys map[uint32]string
	refs map[uint32]int
	next uint32
	free []uint32
	// vteps counts the VTEPs the groups in use name.
	vteps *vtepSet
}

func newGroups() *groups {
	return &groups{ids: map[string]uint32{}, keys: map[uint32]string{}, refs: map[uint32]int{}, next: 1, vteps: newVTEPSet()}
}

// canonical validates members and returns them deduplicated and sorted,
// so the same set always gives the same group, with its interning key.
func canonical(members []Remote) ([]xleafNexthop, string, error) {
	nhs := make([]xleafNexthop, 0, len(members))
	for _, m := range members {
		if err := checkIPv4(m.VTEP, "vtep"); err != nil {
			return nil, "", err
		}
		if m.VNI == 0 || m.VNI >= 1<<24 {
			return nil, "", fmt.Errorf("vni %d out of range 1..16777215", m.VNI)
		}
		rmac, err := mac6(m.RouterMAC)
		if err != nil {
			return nil, "", fmt.Errorf("router %w", err)
		}
		nhs = append(nhs, xleafNexthop{Vtep: be32(m.VTEP), Vni: m.VNI, Rmac: rmac})
	}
	slices.SortFunc(nhs, func(a, b xleafNexthop) int {
		return cmp.Or(cmp.Compare(a.Vtep, b.Vtep), cmp.Compare(a.Vni, b.Vni),
			slices.Compare(a.Rmac[:], b.Rmac[:]))
	})
	nhs = slices.Compact(nhs)
	switch {
	case len(nhs) == 0:
		return nil, "", fmt.Errorf("remote route without members")
	case len(nhs) > MaxECMP:
		return nil, "", fmt.Errorf("%d members: %w", len(nhs), ErrTooManyPaths)
	}
	return nhs, nexthopsKey(nhs), nil
}

// nexthopKeyLen is a member's share of an interning key: VTEP (first),
// VNI, router MAC.
const nexthopKeyLen = 14

// nexthopsKey is the interning key: the members' bytes.
func nexthopsKey(nhs []xleafNexthop) string {
	key := make([]byte, 0, len(nhs)*nexthopKeyLen)
	for _, nh := range nhs {
		key = binary.LittleEndian.AppendUint32(key, nh.Vtep)
		key = binary.LittleEndian.AppendUint32(key, nh.Vni)
		key = append(key, nh.Rmac[:]...)
	}
	return string(key)
}

// buildGroup is the map value of a canonical member list.
func buildGroup(nhs []xleafNexthop) xleafNhg {
	var g xleafNhg
	copy(g.Member[:], nhs)
	g.Members = uint32(len(nhs))
	g.Slot = slotTable(nhs)
	return g
}

// slotTable gives each slot to the member with the highest score for it.
func slotTable(nhs []xleafNexthop) [NHGSlots]uint8 {
	var slots [NHGSlots]uint8
	for s := range slots {
		best, bestScore := 0, uint32(0)
		for i, nh := range nhs {
			score := mix32(mix32(nh.Vtep^mix32(nh.Vni)) ^ mix32(uint32(s)+1))
			if i == 0 || score > bestScore {
				best, bestScore = i, score
			}
		}
		slots[s] = uint8(best)
	}
	return slots
}

// mix32 is murmur3's finalizer, as in bpf/hash.h.
func mix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// acquire returns the id for key, allocating one (new = true) if the group
// is not in use yet. The caller writes the group before any route uses it.
func (gs *groups) acquire(key string) (id uint32, isNew bool, err error) {
	if id, ok := gs.ids[key]; ok {
		gs.refs[id]++
		return id, false, nil
	}
	switch {
	case len(gs.free) > 0:
		id = gs.free[len(gs.free)-1]
		gs.free = gs.free[:len(gs.free)-1]
	case gs.next < MaxNHGs:
		id = gs.next
		gs.next++
	default:
		return 0, false, ErrNoGroupSpace
	}
	gs.ids[key], gs.keys[id], gs.refs[id] = id, key, 1
	gs.vteps.add(key, 1)
	return id, true, nil
}

// tableGroups counts, per VRF table, the routes that use each group, so a
// replaced or deleted table releases its references without reading it.
type tableGroups map[VRFID]map[uint32]int

func (tg tableGroups) add(vrf VRFID, v xleafRoute, n int) {
	if RouteKind(v.Kind) != RouteRemote {
		return
	}
	m := tg[vrf]
	if m == nil {
		m = map[uint32]int{}
		tg[vrf] = m
	}
	if m[v.Target] += n; m[v.Target] == 0 {
		delete(m, v.Target)
	}
}

// release drops n references; it reports whether the group is now unused
// (the caller then clears it in the map).
func (gs *groups) release(id uint32, n int) bool {
	if _, ok := gs.refs[id]; !ok {
		return false
	}
	gs.refs[id] -= n
	if gs.refs[id] > 0 {
		return false
	}
	gs.vteps.add(gs.keys[id], -1)
	delete(gs.ids, gs.keys[id])
	delete(gs.keys, id)
	delete(gs.refs, id)
	gs.free = append(gs.free, id)
	return true
}

// adopt records a group found in a pinned map after a restart.
func (gs *groups) adopt(id uint32, key string) {
	gs.ids[key], gs.keys[id], gs.refs[id] = id, key, 0
	gs.vteps.add(key, 1)
	if id >= gs.next {
		gs.next = id + 1
	}
}

// groupKey recomputes the interning key of a stored group.
func groupKey(g *xleafNhg) string {
	return nexthopsKey(g.Member[:min(int(g.Members), MaxECMP)])
}
