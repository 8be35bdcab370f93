package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// The leak matrix counts forwarded packets per (ingress VRF, egress) in the
// counters map, after the per-reason counters and instead of them: a
// forwarded packet still costs one counter (bpf/types.h). A packet's egress
// is where it went: the VNI it was encapsulated with (a column Go gives
// each VNI the nexthop groups name, kept in the group's members), or the
// VRF of the host it was delivered to. Only Go reads the columns' VNIs
// (leak_vnis, pinned with the counters).

// Limits of the leak matrix, from bpf/types.h.
const (
	LeakRows = 64  // ingress VRF ids below this have a row
	LeakCols = 128 // columns: VNIs (1..127) encapsulated with; host VRF ids delivered to
	leakBase = MaxVRFs * ReasonSlots
	// StatsSlots is the size of the counters map: the reasons', then the
	// matrix's cells.
	StatsSlots = leakBase + LeakRows*LeakCols*2
)

// Leak is one cell of the leak matrix: packets forwarded from VRF From
// and encapsulated with VNI (Local false), or delivered to a host of VRF
// HostVRF (Local true).
type Leak struct {
	From    VRFID
	Local   bool
	VNI     uint32 // the VNI they left with, when encapsulated
	HostVRF VRFID  // the VRF of their host, when delivered
}

// leakCols gives each VNI a nexthop group names a column of the matrix.
// A column keeps its VNI while any group names it; one that none names is
// given to another VNI only when no column is free, its counters cleared
// first. Called with d.mu held.
type leakCols struct {
	m     *ebpf.Map // leak_vnis: column -> VNI
	stats *ebpf.Map
	col   map[uint32]uint16 // VNI -> column
	vni   [LeakCols]uint32  // column -> VNI (0: free)
	reuse uint16            // where the search for a column to give again starts: in turn, oldest first
}

func newLeakCols(m, stats *ebpf.Map) (*leakCols, error) {
	lc := &leakCols{m: m, stats: stats, col: map[uint32]uint16{}, reuse: 1}
	for c := uint32(1); c < LeakCols; c++ {
		var vni uint32
		if err := m.Lookup(c, &vni); err != nil {
			return nil, fmt.Errorf("leak matrix column %d: %w", c, err)
		}
		if vni != 0 {
			lc.vni[c], lc.col[vni] = vni, uint16(c)
		}
	}
	return lc, nil
}

// of returns vni's column, giving it one if it has none: 0 when every
// column is named by a group in use (its packets are then counted under
// their reason alone). inUse lists the VNIs the groups in use name.
func (lc *leakCols) of(vni uint32, inUse func() map[uint32]bool) uint16 {
	if c, ok := lc.col[vni]; ok {
		return c
	}
	c := lc.free(inUse)
	if c == 0 {
		return 0
	}
	if err := lc.m.Put(uint32(c), vni); err != nil {
		return 0
	}
	if old := lc.vni[c]; old != 0 {
		delete(lc.col, old)
	}
	lc.vni[c], lc.col[vni] = vni, c
	return c
}

// free finds a column never used, else one no group in use names, in
// turn, whose counters it clears (what they counted was another VNI's).
func (lc *leakCols) free(inUse func() map[uint32]bool) uint16 {
	for c := 1; c < LeakCols; c++ {
		if lc.vni[c] == 0 {
			return uint16(c)
		}
	}
	used := inUse()
	for range LeakCols - 1 {
		c := lc.reuse
		lc.reuse = lc.reuse%(LeakCols-1) + 1
		if used[lc.vni[c]] {
			continue
		}
		if err := lc.clear(c); err != nil {
			continue
		}
		return c
	}
	return 0
}

// clear zeroes column c's encapsulated cells in every row.
func (lc *leakCols) clear(c uint16) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	zero := make([]xleafCounter, ncpu)
	for from := uint32(0); from < LeakRows; from++ {
		if err := lc.stats.Put(leakKey(VRFID(from), uint32(c), false), zero); err != nil {
			return fmt.Errorf("clear leak matrix column %d: %w", c, err)
		}
	}
	return nil
}

// leakKey is a cell's key in the counters map.
func leakKey(from VRFID, col uint32, local bool) uint32 {
	k := leakBase + (uint32(from)*LeakCols+col)*2
	if local {
		k++
	}
	return k
}

// setCols gives the members of a group their VNIs' columns.
func (d *Dataplane) setCols(g *xleafNhg) {
	for i := range min(int(g.Members), MaxECMP) {
		g.Member[i].Col = d.leaks.of(g.Member[i].Vni, d.groups.vnis)
	}
}

// vnis lists the VNIs the groups in use name.
func (gs *groups) vnis() map[uint32]bool {
	out := map[uint32]bool{}
	for _, key := range gs.keys {
		for i := 0; i+nexthopKeyLen <= len(key); i += nexthopKeyLen {
			out[binary.LittleEndian.Uint32([]byte(key[i+4:i+8]))] = true
		}
	}
	return out
}

// adoptCols gives the members of adopted groups their columns, writing a
// group again where an earlier build left none (or another): only the
// column changes, so a packet reading it meanwhile forwards the same.
func (d *Dataplane) adoptCols(id uint32, g *xleafNhg) error {
	before := *g
	d.setCols(g)
	if *g == before {
		return nil
	}
	if err := d.objs.Nhgs.Put(id, g); err != nil {
		return fmt.Errorf("nexthop group %d: %w", id, err)
	}
	return nil
}

// readStats reads the counters map: every non-zero counter by (VRF,
// reason), the matrix's cells added to their reasons' counters, and the
// matrix's non-zero cells. vnis names the columns (leak_vnis).
func readStats(stats, vnis *ebpf.Map) (map[CounterKey]Counter, map[Leak]Counter, error) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, nil, fmt.Errorf("read counters: %w", err)
	}
	var cols [LeakCols]uint32
	if vnis != nil {
		for c := uint32(1); c < LeakCols; c++ {
			if err := vnis.Lookup(c, &cols[c]); err != nil {
				return nil, nil, fmt.Errorf("read leak matrix columns: %w", err)
			}
		}
	}
	const chunk = 4096
	keys := make([]uint32, chunk)
	vals := make([]xleafCounter, chunk*ncpu)
	out, leaks := map[CounterKey]Counter{}, map[Leak]Counter{}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := stats.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			var c Counter
			for _, pc := range vals[i*ncpu : (i+1)*ncpu] {
				c.Packets += pc.Packets
				c.Bytes += pc.Bytes
			}
			if c.Packets == 0 {
				continue
			}
			k := keys[i]
			if k < leakBase {
				key := CounterKey{VRF: VRFID(k / ReasonSlots), Reason: Reason(k % ReasonSlots)}
				out[key] = out[key].plus(c)
				continue
			}
			cell := k - leakBase
			l := Leak{From: VRFID(cell / 2 / LeakCols), Local: cell%2 == 1}
			col := cell / 2 % LeakCols
			reason := ReasonFwdRemote
			if l.Local {
				l.HostVRF, reason = VRFID(col), ReasonFwdLocal
			} else {
				l.VNI = cols[col]
			}
			key := CounterKey{VRF: l.From, Reason: reason}
			leaks[l], out[key] = leaks[l].plus(c), out[key].plus(c)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, leaks, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read counters: %w", err)
		}
	}
}
