package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The underlay next hops: for each remote VTEP, the egress interface and
// MACs of each path of the kernel's route towards it, resolved by the agent
// from the kernel's routes and neighbours (control/hops.go) and kept up to
// date on their changes. The program finds them without hashing (the
// VTEP's position in an index names its slot: underlayStore); a VTEP that is
// not here is asked of the kernel (bpf_fib_lookup) per packet, and counted
// (UnderlayFallbacks).

// MaxUnderlayECMP is how many underlay paths a VTEP's entry holds.
const MaxUnderlayECMP = 8

// UnderlayHop is a remote VTEP's underlay paths; a flow takes one by its
// hash (UnderlayPick).
type UnderlayHop struct {
	Members []UnderlayMember
}

// UnderlayMember is one path: out of Ifindex, from SrcMAC to DstMAC (the
// next hop's), with the path's MTU.
type UnderlayMember struct {
	Ifindex int
	SrcMAC  net.HardwareAddr
	DstMAC  net.HardwareAddr
	MTU     int
}

// Equal says whether h and o are the same paths in the same order.
func (h UnderlayHop) Equal(o UnderlayHop) bool {
	return slices.EqualFunc(h.Members, o.Members, func(a, b UnderlayMember) bool {
		return a.Ifindex == b.Ifindex && a.MTU == b.MTU &&
			slices.Equal(a.SrcMAC, b.SrcMAC) && slices.Equal(a.DstMAC, b.DstMAC)
	})
}

// UnderlayPick is the member of h a flow of hash takes, as the program
// picks it (bpf/fib.h): its slot, bits 8..15 of the hash, in h's pick
// table.
func UnderlayPick(hash uint32, h UnderlayHop) int {
	return int(underlayPicks(h.Members)[int(hash>>8)%underlayPicksLen])
}

// underlayPicksLen is the C UNDERLAY_PICKS, as the generated type has it.
const underlayPicksLen = len(xleafUnderlayHop{}.Pick)

// underlayPicks is a VTEP's pick table: each slot to the member with the
// highest score for it (rendezvous hashing, as nexthop groups' slotTable),
// a member known by its egress and next hop, so that when one goes only the
// slots it had change hands, and the same paths always give the same table.
func underlayPicks(members []UnderlayMember) [underlayPicksLen]uint8 {
	keys := make([]uint32, len(members))
	for i, m := range members {
		k := mix32(uint32(m.Ifindex))
		for j := 0; j+1 < len(m.DstMAC); j += 2 {
			k = mix32(k ^ uint32(m.DstMAC[j])<<8 ^ uint32(m.DstMAC[j+1]))
		}
		keys[i] = k
	}
	var picks [underlayPicksLen]uint8
	for s := range picks {
		best, bestScore := 0, uint32(0)
		for i, k := range keys {
			if score := mix32(k ^ mix32(uint32(s)+1)); i == 0 || score > bestScore {
				best, bestScore = i, score
			}
		}
		picks[s] = uint8(best)
	}
	return picks
}

func encodeHop(vtep netip.Addr, h UnderlayHop) (xleafUnderlayHop, error) {
	var v xleafUnderlayHop
	if err := checkIPv4(vtep, "vtep"); err != nil {
		return v, err
	}
	if len(h.Members) == 0 || len(h.Members) > MaxUnderlayECMP {
		return v, fmt.Errorf("underlay hop %v: %d members, want 1..%d", vtep, len(h.Members), MaxUnderlayECMP)
	}
	v.Members, v.Vtep = uint32(len(h.Members)), be32(vtep)
	for i, m := range h.Members {
		if m.Ifindex <= 0 {
			return v, fmt.Errorf("underlay hop %v: bad ifindex %d", vtep, m.Ifindex)
		}
		if m.MTU < 68 || m.MTU > 65535 {
			return v, fmt.Errorf("underlay hop %v: mtu %d out of range 68..65535", vtep, m.MTU)
		}
		smac, err := mac6(m.SrcMAC)
		if err != nil {
			return v, fmt.Errorf("underlay hop %v: source %w", vtep, err)
		}
		dmac, err := mac6(m.DstMAC)
		if err != nil {
			return v, fmt.Errorf("underlay hop %v: %w", vtep, err)
		}
		v.Member[i].Ifindex, v.Member[i].Mtu = uint32(m.Ifindex), uint16(m.MTU)
		v.Member[i].Smac, v.Member[i].Dmac = smac, dmac
	}
	v.Pick = underlayPicks(h.Members)
	return v, nil
}

func decodeHop(v *xleafUnderlayHop) UnderlayHop {
	var h UnderlayHop
	for i := range min(int(v.Members), MaxUnderlayECMP) {
		m := v.Member[i]
		h.Members = append(h.Members, UnderlayMember{Ifindex: int(m.Ifindex), MTU: int(m.Mtu),
			SrcMAC: slices.Clone(m.Smac[:]), DstMAC: slices.Clone(m.Dmac[:])})
	}
	return h
}

// SetUnderlayHop installs or replaces vtep's underlay paths, in one update:
// a packet sees the old paths or the new ones. They are used while
// RenewUnderlayHops keeps them live.
func (d *Dataplane) SetUnderlayHop(vtep netip.Addr, h UnderlayHop) error {
	v, err := encodeHop(vtep, h)
	if err != nil {
		return err
	}
	if err := d.hops.set(v); err != nil {
		return fmt.Errorf("underlay hop %v: %w", vtep, err)
	}
	return nil
}

// DeleteUnderlayHop takes vtep's paths out: its packets ask the kernel.
// Deleting one that is not there is not an error.
func (d *Dataplane) DeleteUnderlayHop(vtep netip.Addr) error {
	if err := checkIPv4(vtep, "vtep"); err != nil {
		return err
	}
	if err := d.hops.delete(be32(vtep)); err != nil {
		return fmt.Errorf("delete underlay hop %v: %w", vtep, err)
	}
	return nil
}

// RenewUnderlayHops keeps the underlay next hops in use for valid from now
// (0: stop using them now). Whoever keeps them in step with the kernel
// renews them; if it stops (it died), the program's watchdog timer fires
// when valid has passed, and packets ask the kernel again.
func (d *Dataplane) RenewUnderlayHops(valid time.Duration) error {
	if valid < 0 {
		return fmt.Errorf("renew underlay hops: valid for %v", valid)
	}
	data := make([]byte, 64)
	binary.NativeEndian.PutUint64(data, uint64(valid))
	ret, err := d.objs.HopsRenew.Run(&ebpf.RunOptions{Data: data})
	if err != nil {
		return fmt.Errorf("renew underlay hops: %w", err)
	}
	if ret != XDPPass {
		return fmt.Errorf("renew underlay hops: the watchdog refused (%d)", ret)
	}
	return nil
}

// UnderlayHopsLive says whether the program uses the underlay next hops
// now (renewed, and not expired since).
func (d *Dataplane) UnderlayHopsLive() (bool, error) {
	var w xleafHopsWatchdog
	if err := d.objs.HopsWatchdog.Lookup(uint32(0), &w); err != nil {
		return false, fmt.Errorf("underlay hops watchdog: %w", err)
	}
	return w.Live != 0, nil
}

// UnderlayHops is every VTEP's paths the program holds.
func (d *Dataplane) UnderlayHops() (map[netip.Addr]UnderlayHop, error) {
	out := map[netip.Addr]UnderlayHop{}
	if err := d.hops.each(func(v *xleafUnderlayHop) { out[addrFromBe32(v.Vtep)] = decodeHop(v) }); err != nil {
		return nil, fmt.Errorf("underlay hops: %w", err)
	}
	return out, nil
}

// UnderlayFallbacks is how many packets, over all CPUs, found no resolved
// next hop for their VTEP and were looked up in the kernel's FIB instead.
func (d *Dataplane) UnderlayFallbacks() (uint64, error) {
	var per []uint64
	if err := d.objs.UnderlayFallbacks.Lookup(uint32(0), &per); err != nil {
		return 0, fmt.Errorf("underlay fallbacks: %w", err)
	}
	var n uint64
	for _, c := range per {
		n += c
	}
	return n, nil
}

// RemoteVTEPs is every VTEP a route's nexthop group names now: the ones
// whose underlay next hops are worth resolving. It does not wait for a
// table being loaded.
func (d *Dataplane) RemoteVTEPs() []netip.Addr { return d.groups.vteps.list() }

// RemoteVTEPsChanged is signalled (never blocking, coalesced) when the
// set RemoteVTEPs returns changes.
func (d *Dataplane) RemoteVTEPsChanged() <-chan struct{} { return d.groups.vteps.changed }

// vtepSet counts the groups that name each VTEP. Written under the
// dataplane's lock with the groups; read under its own.
type vtepSet struct {
	mu      sync.Mutex
	refs    map[uint32]int // be32 VTEP -> groups naming it
	changed chan struct{}
}

func newVTEPSet() *vtepSet {
	return &vtepSet{refs: map[uint32]int{}, changed: make(chan struct{}, 1)}
}

// add counts the VTEPs of a group's interning key (n = +1 or -1).
func (s *vtepSet) add(key string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	moved := false
	for i := 0; i+nexthopKeyLen <= len(key); i += nexthopKeyLen {
		vtep := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		before := s.refs[vtep]
		if s.refs[vtep] += n; s.refs[vtep] <= 0 {
			delete(s.refs, vtep)
		}
		moved = moved || (before == 0) != (s.refs[vtep] == 0)
	}
	if moved {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

func (s *vtepSet) list() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.Addr, 0, len(s.refs))
	for v := range s.refs {
		out = append(out, addrFromBe32(v))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// underlayStore keeps the remote VTEPs' next hops where the program finds
// them (bpf/maps.h): a VTEP's position in underlay_index (underlayPos) names
// the slot of underlay_slots that holds its entry, or, when another VTEP
// holds the position, the entry is in underlay_hops, a hash. A slot is
// never written while a position names it: a changed entry goes to a free
// slot, the position is pointed at it in one store, and the old slot is
// reused only after a grace period (no program run can still be reading
// it). Slots are twice the VTEPs it holds, so a grace period is seldom
// waited for.
type underlayStore struct {
	mu      sync.Mutex
	index   words // underlay_index, mmapped
	slots   *ebpf.Map
	hash    *ebpf.Map
	at      map[uint32]uint32 // be32 VTEP -> its slot, for the VTEPs in the index
	inHash  map[uint32]bool
	free    []uint32 // slots reusable now
	pending []uint32 // slots freed since the last grace period
	grace   func() error
}

// underlayIndexBits, maxUnderlayHops and underlaySlots are the C
// UNDERLAY_INDEX_BITS, MAX_UNDERLAY_HOPS and UNDERLAY_SLOTS (the layout
// test holds the maps' sizes to them).
const (
	underlayIndexBits = 13
	underlayIndexSize = 1 << underlayIndexBits
	maxUnderlayHops   = 4096
	underlaySlots     = 2 * maxUnderlayHops
)

// underlayPos is a VTEP's position in underlay_index, as the program
// computes it (bpf/fib.h underlay_pos).
func underlayPos(vtep uint32) int { return int((vtep * 0x9e3779b1) >> (32 - underlayIndexBits)) }

func newUnderlayStore(index, slots, hash *ebpf.Map, grace func() error) (*underlayStore, error) {
	mem, err := mmapMap(index, underlayIndexSize*8)
	if err != nil {
		return nil, err
	}
	s := &underlayStore{index: mem, slots: slots, hash: hash, at: map[uint32]uint32{}, inHash: map[uint32]bool{}, grace: grace}
	for slot := uint32(underlaySlots - 1); slot > 0; slot-- { // 0 names none
		s.free = append(s.free, slot)
	}
	return s, nil
}

// close unmaps the index; every call after it returns ErrClosed.
func (s *underlayStore) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	unix.Munmap(s.index)
	s.index = nil
}

// alloc takes a free slot, waiting for a grace period if only freed ones
// are left.
func (s *underlayStore) alloc() (uint32, error) {
	if len(s.free) == 0 && len(s.pending) > 0 {
		if err := s.grace(); err != nil {
			return 0, err
		}
		s.free, s.pending = append(s.free, s.pending...), s.pending[:0]
	}
	if len(s.free) == 0 {
		return 0, fmt.Errorf("underlay next hops full (%d)", maxUnderlayHops)
	}
	slot := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	return slot, nil
}

// set installs v for its VTEP: in a fresh slot named from the VTEP's
// position if that is free or already the VTEP's, else in the hash.
func (s *underlayStore) set(v xleafUnderlayHop) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index == nil {
		return ErrClosed
	}
	return s.place(v)
}

func (s *underlayStore) place(v xleafUnderlayHop) error {
	vtep, pos := v.Vtep, underlayPos(v.Vtep)
	old, indexed := s.at[vtep]
	if !indexed && !s.inHash[vtep] && len(s.at)+len(s.inHash) >= maxUnderlayHops {
		return fmt.Errorf("underlay next hops full (%d)", maxUnderlayHops)
	}
	if !indexed && s.index.loadValue(pos) != 0 { // another VTEP's position
		if err := s.hash.Put(vtep, &v); err != nil {
			return err
		}
		s.inHash[vtep] = true
		return nil
	}
	slot, err := s.alloc()
	if err != nil {
		return err
	}
	if err := s.slots.Put(slot, &v); err != nil {
		s.free = append(s.free, slot)
		return err
	}
	s.index.storeValue(pos, slot)
	s.at[vtep] = slot
	if indexed {
		s.pending = append(s.pending, old)
	}
	if s.inHash[vtep] { // its position came free: out of the hash, now it is found first
		s.hash.Delete(vtep)
		delete(s.inHash, vtep)
	}
	return nil
}

// delete takes vtep's entry out, wherever it is.
func (s *underlayStore) delete(vtep uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index == nil {
		return ErrClosed
	}
	if s.inHash[vtep] {
		if err := s.hash.Delete(vtep); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		delete(s.inHash, vtep)
	}
	slot, ok := s.at[vtep]
	if !ok {
		return nil
	}
	pos := underlayPos(vtep)
	s.index.storeValue(pos, 0)
	delete(s.at, vtep)
	s.pending = append(s.pending, slot)
	// A VTEP the position turned away moves in: found first again.
	for other := range s.inHash {
		if underlayPos(other) != pos {
			continue
		}
		var v xleafUnderlayHop
		if err := s.hash.Lookup(other, &v); err != nil {
			return err
		}
		return s.place(v)
	}
	return nil
}

// each calls f with every entry the program can find, read from the maps.
func (s *underlayStore) each(f func(*xleafUnderlayHop)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index == nil {
		return ErrClosed
	}
	var v xleafUnderlayHop
	for vtep, slot := range s.at {
		if err := s.slots.Lookup(slot, &v); err != nil {
			return err
		}
		if v.Vtep != vtep || s.index.loadValue(underlayPos(vtep)) != slot {
			return fmt.Errorf("vtep %v: slot %d is not its", addrFromBe32(vtep), slot)
		}
		f(&v)
	}
	var k uint32
	it := s.hash.Iterate()
	for it.Next(&k, &v) {
		f(&v)
	}
	return it.Err()
}
