package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The compiled FIB: what the XDP program looks routes up in. Per VRF a
// first level of 2^16 entries indexed by the address's top 16 bits, then
// 256-entry chunks for bits 16-23, then for the last 8 bits either a
// 256-entry chunk again or, when the /24 holds at most 12 runs of one
// route, a 64-byte range chunk: the runs' first addresses and their
// routes, searched by counting starts (DXR's idea, in one cache line).
// Three dependent array loads at most, where the kernel's LPM trie walks up
// to 32 nodes. Host routes are sparse, so most /24s that hold longer routes
// cost 64 bytes, not 1 KiB, and their lookups touch one small line. The
// LPM tries stay the record of routes (what Routes lists and a restarted
// agent reads); the FIB is built from them at Open and kept in step by
// every route change.
//
// An entry is 0 (no route), fibChunk|index (a 256-entry chunk),
// fibChunk|fibRanges|index (a range chunk), or a route: kind<<24 | target.
// Go writes entries straight into the maps' memory (mmapped), each as one
// aligned 32-bit store; a chunk is filled before the entry that points to
// it, and a range chunk is changed in place only where its runs stay
// (their routes are single words), otherwise replaced by a new one: a
// packet sees each entry old or new, so it finds the old route for its
// address or the new one, never a half-built level. A freed chunk is
// reused only after an RCU grace period (any update of an array of maps
// waits for every running program), so no packet still walking it sees it
// change.
//
// A range chunk: bytes 0-11 are the runs' first addresses (the first is
// 0), in order, the last repeated to fill; words 4-15 their routes, the
// last likewise repeated. The run of address b is the number of starts
// 1-11 at or below b.
const (
	fibL1Size    = 1 << 16
	fibChunkLen  = 256
	fibSmallLen  = 16
	fibChunk     = uint32(0x80000000)
	fibRanges    = uint32(0x40000000)
	fibKindBits  = 24
	fibMaxRanges = 12
	fibRangeBase = 4 // the word of the first run's route
)

// ErrFIBFull is returned when one of the FIB's chunk pools is spent
// (Options.FIBChunks, Options.FIBSmallChunks).
var ErrFIBFull = errors.New("fib chunk pool full")

// fibEntry is a route's entry.
func fibEntry(v xleafRoute) uint32 { return uint32(v.Kind)<<fibKindBits | v.Target }

// words is mmapped map memory as 32-bit words, read and written
// atomically (the program reads them concurrently).
type words []byte

func (w words) load(i int) uint32 { return atomic.LoadUint32((*uint32)(unsafe.Pointer(&w[i*4]))) }
func (w words) store(i int, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&w[i*4])), v)
}

// A 4-byte value of an mmapped array is word 2*i: the kernel spaces an
// array's values 8 bytes apart.
func (w words) loadValue(i int) uint32     { return w.load(2 * i) }
func (w words) storeValue(i int, v uint32) { w.store(2*i, v) }

func mmapMap(m *ebpf.Map, size int) (words, error) {
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", m, err)
	}
	return words(b), nil
}

// fibVRF is one VRF's first level, and the prefix length of the route in
// each of its route entries (a chunk entry's is unused). live: installed,
// so packets may be reading it.
type fibVRF struct {
	m    *ebpf.Map
	mem  words
	plen [fibL1Size]uint8
	live bool
}

// fibPool is a map of fixed-size chunks and which of them are free.
type fibPool struct {
	m       *ebpf.Map
	mem     words
	size    int      // entries per chunk
	plen    []uint8  // per entry (a range chunk's: per run, at its route's word)
	free    []uint32 // reusable now
	pending []uint32 // freed, reusable after the next grace period
}

func newPool(m *ebpf.Map, size int) (*fibPool, error) {
	n := int(m.MaxEntries())
	mem, err := mmapMap(m, n*size*4)
	if err != nil {
		return nil, err
	}
	p := &fibPool{m: m, mem: mem, size: size, plen: make([]uint8, n*size), free: make([]uint32, 0, n)}
	for i := n - 1; i >= 0; i-- { // lower indexes first
		p.free = append(p.free, uint32(i))
	}
	return p, nil
}

// inUse is how many chunks the pool has given out.
func (p *fibPool) inUse() int { return int(p.m.MaxEntries()) - len(p.free) - len(p.pending) }

// fib is every VRF's first level and the chunk pools.
type fib struct {
	vrfs   *ebpf.Map // fib_vrfs: VRF id -> first level
	l1Spec *ebpf.MapSpec
	tables map[VRFID]*fibVRF
	big    *fibPool // 256-entry chunks
	small  *fibPool // range chunks
	// graceMap is an empty first level that grace periods put under VRF 0
	// (no VRF's id); graceGen counts the grace periods that freed chunks.
	graceMap *ebpf.Map
	graceGen uint64

	runs, oldRuns []run // update24's, reused
	// x is update24's expanded /24, reused: on its stack it went to the
	// heap (mutate takes its address), 2 KiB for every route set.
	x [fibChunkLen]slot
}

func newFIB(vrfs, chunks, small *ebpf.Map, l1Spec *ebpf.MapSpec) (*fib, error) {
	big, err := newPool(chunks, fibChunkLen)
	if err != nil {
		return nil, err
	}
	sm, err := newPool(small, fibSmallLen)
	if err != nil {
		unix.Munmap(big.mem)
		return nil, err
	}
	spec := l1Spec.Copy()
	spec.Name = "fib_grace"
	gm, err := ebpf.NewMap(spec)
	if err != nil {
		unix.Munmap(big.mem)
		unix.Munmap(sm.mem)
		return nil, fmt.Errorf("create fib grace map: %w", err)
	}
	return &fib{vrfs: vrfs, l1Spec: l1Spec, tables: map[VRFID]*fibVRF{}, big: big, small: sm, graceMap: gm}, nil
}

func (f *fib) close() {
	for _, t := range f.tables {
		unix.Munmap(t.mem)
		t.m.Close()
	}
	unix.Munmap(f.big.mem)
	unix.Munmap(f.small.mem)
	f.graceMap.Close()
}

// newVRF makes an empty first level.
func (f *fib) newVRF(vrf VRFID) (*fibVRF, error) {
	spec := f.l1Spec.Copy()
	spec.Name = fmt.Sprintf("fib%d", vrf)
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("vrf %d: create fib: %w", vrf, err)
	}
	mem, err := mmapMap(m, fibL1Size*4)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("vrf %d: %w", vrf, err)
	}
	return &fibVRF{m: m, mem: mem}, nil
}

// install makes t vrf's FIB (the outer update waits for running programs:
// the old one is unreachable once it returns), and frees the old one's
// chunks.
func (f *fib) install(vrf VRFID, t *fibVRF) error {
	if err := f.vrfs.Put(uint32(vrf), t.m); err != nil {
		return fmt.Errorf("vrf %d: install fib: %w", vrf, err)
	}
	t.live = true
	if old := f.tables[vrf]; old != nil {
		f.releaseAll(old)
		f.graceDone() // the Put was a grace period
	}
	f.tables[vrf] = t
	return nil
}

// remove takes vrf's FIB out.
func (f *fib) remove(vrf VRFID) {
	t := f.tables[vrf]
	if t == nil {
		return
	}
	f.vrfs.Delete(uint32(vrf))
	f.releaseAll(t)
	f.graceDone()
	delete(f.tables, vrf)
}

// releaseAll returns every chunk under t to the pending lists and closes t.
func (f *fib) releaseAll(t *fibVRF) {
	for i := range fibL1Size {
		if e := t.mem.load(i); e&fibChunk != 0 {
			c := f.chunk(e, true)
			for j := range fibChunkLen {
				if e := c.mem.load(c.base + j); e&fibChunk != 0 {
					f.release(e, true)
				}
			}
			f.release(e, true)
		}
	}
	unix.Munmap(t.mem)
	t.m.Close()
}

// release frees the chunk entry e points to: reusable at once if no
// packet can have seen it (live false), else after a grace period.
func (f *fib) release(e uint32, live bool) {
	p := f.big
	if e&fibRanges != 0 {
		p = f.small
	}
	c := e &^ (fibChunk | fibRanges)
	if live {
		p.pending = append(p.pending, c)
	} else {
		p.free = append(p.free, c)
	}
}

// grace waits for every program run that may still read a chunk freed so
// far: an update of the array of maps waits for them all.
func (f *fib) grace() error {
	if err := f.waitGrace(); err != nil {
		return err
	}
	f.graceDone()
	return nil
}

// waitGrace is a grace period: it touches no VRF's entry, so it may run
// without the caller's lock (reclaim).
func (f *fib) waitGrace() error {
	if err := f.vrfs.Put(uint32(0), f.graceMap); err != nil {
		return fmt.Errorf("fib grace period: %w", err)
	}
	return nil
}

// graceDone makes the chunks freed before a grace period reusable.
func (f *fib) graceDone() {
	for _, p := range []*fibPool{f.big, f.small} {
		p.free = append(p.free, p.pending...)
		p.pending = p.pending[:0]
	}
	f.graceGen++
}

// pendingNow is how many chunks await a grace period, per pool, and which
// grace period came last.
func (f *fib) pendingNow() (big, small int, gen uint64) {
	return len(f.big.pending), len(f.small.pending), f.graceGen
}

// reclaimed makes the first big and small pending chunks reusable after a
// grace period that started when they were all there, unless a grace
// period since (gen moved on) already did.
func (f *fib) reclaimed(big, small int, gen uint64) {
	if gen != f.graceGen {
		return
	}
	for _, x := range []struct {
		p *fibPool
		n int
	}{{f.big, big}, {f.small, small}} {
		x.p.free = append(x.p.free, x.p.pending[:x.n]...)
		x.p.pending = append(x.p.pending[:0], x.p.pending[x.n:]...)
	}
}

// alloc takes a chunk of p, waiting out a grace period if only freed
// chunks are left.
func (f *fib) alloc(p *fibPool) (uint32, error) {
	if len(p.free) == 0 && len(p.pending) > 0 {
		if err := f.grace(); err != nil {
			return 0, err
		}
	}
	if len(p.free) == 0 {
		return 0, fmt.Errorf("%w (%d chunks of %d bytes)", ErrFIBFull, p.m.MaxEntries(), 4*p.size)
	}
	c := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return c, nil
}

// level is an array of route and chunk entries: a VRF's first level or a
// 256-entry chunk.
type level struct {
	mem   words
	plen  []uint8
	base  int // index of entry 0 in mem and plen
	size  int
	depth int
	live  bool
}

func (f *fib) first(t *fibVRF) level {
	return level{mem: t.mem, plen: t.plen[:], size: fibL1Size, live: t.live}
}

// chunk is the 256-entry chunk entry e points to.
func (f *fib) chunk(e uint32, live bool) level {
	c := int(e &^ fibChunk)
	return level{mem: f.big.mem, plen: f.big.plen, base: c * fibChunkLen, size: fibChunkLen, depth: 1, live: live}
}

// descend returns the chunk below entry i of the first level l, making
// one from the route entry there when there is none.
func (f *fib) descend(l level, i int) (level, error) {
	e := l.mem.load(l.base + i)
	if e&fibChunk != 0 {
		return f.chunk(e, l.live), nil
	}
	c, err := f.alloc(f.big)
	if err != nil {
		return level{}, err
	}
	plen := l.plen[l.base+i]
	for j := range fibChunkLen {
		f.big.mem.store(int(c)*fibChunkLen+j, e)
		f.big.plen[int(c)*fibChunkLen+j] = plen
	}
	l.mem.store(l.base+i, fibChunk|c) // published filled
	return f.chunk(fibChunk|c, l.live), nil
}

// slot is one address's route in a /24 being rewritten.
type slot struct {
	e    uint32
	plen uint8
}

// run is a range of a /24's addresses with one route, from start on.
type run struct {
	start int
	slot
}

// runsOf appends a range chunk's runs (repeats dropped) to rs.
func (f *fib) runsOf(rs []run, c uint32) []run {
	base := int(c) * fibSmallLen
	b := f.small.mem[base*4:]
	rs = append(rs, run{0, slot{f.small.mem.load(base + fibRangeBase), f.small.plen[base+fibRangeBase]}})
	for i := 1; i < fibMaxRanges; i++ {
		if int(b[i]) == rs[len(rs)-1].start {
			break
		}
		w := base + fibRangeBase + i
		rs = append(rs, run{int(b[i]), slot{f.small.mem.load(w), f.small.plen[w]}})
	}
	return rs
}

// expand writes the route of each of a /24's addresses, as entry e (of
// prefix length plen) of a level above gives them, into x.
func (f *fib) expand(e uint32, plen uint8, x *[fibChunkLen]slot) {
	switch {
	case e&fibChunk == 0:
		for i := range x {
			x[i] = slot{e, plen}
		}
	case e&fibRanges != 0:
		rs := f.runsOf(f.oldRuns[:0], e&^(fibChunk|fibRanges))
		for k, r := range rs {
			end := fibChunkLen
			if k+1 < len(rs) {
				end = rs[k+1].start
			}
			for i := r.start; i < end; i++ {
				x[i] = r.slot
			}
		}
	default:
		c := f.chunk(e, false)
		for i := range x {
			x[i] = slot{c.mem.load(c.base + i), c.plen[c.base+i]}
		}
	}
}

// runs appends x's runs to rs.
func runs(rs []run, x *[fibChunkLen]slot) []run {
	rs = append(rs, run{0, x[0]})
	for i := 1; i < fibChunkLen; i++ {
		if x[i] != x[i-1] {
			rs = append(rs, run{i, x[i]})
		}
	}
	return rs
}

// update24 rewrites the /24 under entry i of l (a 256-entry chunk): mutate
// changes its addresses' routes, and the /24 then takes the smallest form
// that holds them (one route entry, a range chunk, or a 256-entry chunk).
// It fails only when that needs a chunk and the pool has none, and then
// changes nothing; a change that keeps every run of a range chunk (what
// deletes and shorter routes do) never fails, since it can be made in
// place.
func (f *fib) update24(l level, i int, mutate func(x *[fibChunkLen]slot)) error {
	at := l.base + i
	old := l.mem.load(at)
	x := &f.x
	f.expand(old, l.plen[at], x) // writes every slot
	mutate(x)
	rs := runs(f.runs[:0], x)
	f.runs = rs
	if len(rs) == 1 && int(rs[0].plen) <= 24 { // one route no longer than the /24
		l.plen[at] = rs[0].plen
		l.mem.store(at, rs[0].e)
		if old&fibChunk != 0 {
			f.release(old, l.live)
		}
		return nil
	}
	// In place: a 256-entry chunk entry by entry; a range chunk run by run,
	// if each of its runs still has one route.
	direct := old&fibChunk != 0 && old&fibRanges == 0
	var oldRuns []run
	inPlace := direct
	if old&fibRanges != 0 {
		oldRuns = f.runsOf(f.oldRuns[:0], old&^(fibChunk|fibRanges))
		f.oldRuns = oldRuns
		inPlace = true
		for k, r := range oldRuns {
			end := fibChunkLen
			if k+1 < len(oldRuns) {
				end = oldRuns[k+1].start
			}
			for j := r.start; j < end; j++ {
				if x[j] != x[r.start] {
					inPlace = false
				}
			}
		}
	}
	compact := len(rs) <= fibMaxRanges
	if !(inPlace && (direct && !compact || len(oldRuns) == len(rs))) {
		// A new chunk in the best form, filled before it is linked.
		var c uint32
		var err error
		if compact {
			if c, err = f.alloc(f.small); err == nil {
				f.writeRuns(c, rs)
				l.mem.store(at, fibChunk|fibRanges|c)
			}
		} else if c, err = f.alloc(f.big); err == nil {
			n := f.chunk(fibChunk|c, l.live)
			for j := range x {
				n.mem.store(n.base+j, x[j].e)
				n.plen[n.base+j] = x[j].plen
			}
			l.mem.store(at, fibChunk|c)
		}
		if err == nil {
			if old&fibChunk != 0 {
				f.release(old, l.live)
			}
			return nil
		}
		if !inPlace {
			return err
		}
	}
	if direct {
		n := f.chunk(old, l.live)
		for j := range x {
			if n.mem.load(n.base+j) != x[j].e {
				n.mem.store(n.base+j, x[j].e)
			}
			n.plen[n.base+j] = x[j].plen
		}
		return nil
	}
	base := int(old&^(fibChunk|fibRanges)) * fibSmallLen
	for k := range fibMaxRanges {
		r := oldRuns[min(k, len(oldRuns)-1)]
		w := base + fibRangeBase + k
		f.small.mem.store(w, x[r.start].e)
		f.small.plen[w] = x[r.start].plen
	}
	return nil
}

// writeRuns fills range chunk c with rs (at most fibMaxRanges of them).
func (f *fib) writeRuns(c uint32, rs []run) {
	base := int(c) * fibSmallLen
	for k := range fibMaxRanges {
		r := rs[min(k, len(rs)-1)]
		f.small.mem[base*4+k] = byte(r.start)
		f.small.mem.store(base+fibRangeBase+k, r.e)
		f.small.plen[base+fibRangeBase+k] = r.plen
	}
	for k := fibMaxRanges; k < fibRangeBase*4; k++ {
		f.small.mem[base*4+k] = 0
	}
}

// paint sets entries [lo, hi) of l, and everything under them, to e of
// prefix length plen wherever the route there has a length match accepts.
// (Below, a /24's runs each keep one route: no chunk is needed.)
func (f *fib) paint(l level, lo, hi int, e uint32, plen uint8, match func(uint8) bool) {
	for i := lo; i < hi; i++ {
		cur := l.mem.load(l.base + i)
		if cur&fibChunk != 0 {
			if l.depth == 0 {
				f.paint(f.chunk(cur, l.live), 0, fibChunkLen, e, plen, match)
				continue
			}
			f.update24(l, i, func(x *[fibChunkLen]slot) {
				for j := range x {
					if match(x[j].plen) {
						x[j] = slot{e, plen}
					}
				}
			})
			continue
		}
		if match(l.plen[l.base+i]) {
			l.plen[l.base+i] = plen
			l.mem.store(l.base+i, e)
		}
	}
}

// span is the levels a prefix reaches down to, and its entries in the last.
type span struct {
	index  [2]int // its entry in the first level, then in the second
	depth  int    // 0, 1 or 2: the level its entries are in
	lo, hi int
}

func spanOf(p netip.Prefix) span {
	a := be32host(p.Addr())
	bits := p.Bits()
	s := span{index: [2]int{int(a >> 16), int(a>>8) & 0xff}}
	switch {
	case bits <= 16:
		s.lo = int(a >> 16)
		s.hi = s.lo + 1<<(16-bits)
	case bits <= 24:
		s.depth, s.lo = 1, int(a>>8)&0xff
		s.hi = s.lo + 1<<(24-bits)
	default:
		s.depth, s.lo = 2, int(a)&0xff
		s.hi = s.lo + 1<<(32-bits)
	}
	return s
}

func be32host(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// set puts route entry e for p in t: every address of p whose route is no
// longer than p now finds e.
func (f *fib) set(t *fibVRF, p netip.Prefix, e uint32) error {
	s := spanOf(p)
	plen := uint8(p.Bits())
	match := func(cur uint8) bool { return cur <= plen }
	l := f.first(t)
	if s.depth == 0 {
		f.paint(l, s.lo, s.hi, e, plen, match)
		return nil
	}
	l, err := f.descend(l, s.index[0])
	if err != nil {
		return err
	}
	if s.depth == 1 {
		f.paint(l, s.lo, s.hi, e, plen, match)
		return nil
	}
	return f.update24(l, s.index[1], func(x *[fibChunkLen]slot) {
		for j := s.lo; j < s.hi; j++ {
			if match(x[j].plen) {
				x[j] = slot{e, plen}
			}
		}
	})
}

// setAll puts routes into t, which no packet reads yet (a new VRF's FIB):
// the routes of /24 and shorter first, then the longer ones a /24 at a
// time, so each /24 takes its final form once.
func (f *fib) setAll(t *fibVRF, ps []netip.Prefix, es []uint32) error {
	var long []uint64 // the /24 << 32 | the route's index, to sort
	for i, p := range ps {
		if p.Bits() > 24 {
			long = append(long, uint64(be32host(p.Addr())>>8)<<32|uint64(i))
			continue
		}
		if err := f.set(t, p, es[i]); err != nil {
			return err
		}
	}
	slices.Sort(long)
	for len(long) > 0 {
		n := 1
		for n < len(long) && long[n]>>32 == long[0]>>32 {
			n++
		}
		group := long[:n]
		long = long[n:]
		s := spanOf(ps[uint32(group[0])])
		l, err := f.descend(f.first(t), s.index[0])
		if err != nil {
			return err
		}
		err = f.update24(l, s.index[1], func(x *[fibChunkLen]slot) {
			for _, g := range group {
				i := uint32(g)
				s, plen := spanOf(ps[i]), uint8(ps[i].Bits())
				for j := s.lo; j < s.hi; j++ {
					if x[j].plen <= plen {
						x[j] = slot{es[i], plen}
					}
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// del takes p out of t: its addresses find cover (the longest route
// shorter than p, entry 0 if none) wherever they found p. Chunks left
// holding one route no longer than their parent's entry go.
func (f *fib) del(t *fibVRF, p netip.Prefix, cover uint32, coverLen uint8) {
	s := spanOf(p)
	plen := uint8(p.Bits())
	match := func(cur uint8) bool { return cur == plen }
	l0 := f.first(t)
	if s.depth == 0 {
		f.paint(l0, s.lo, s.hi, cover, coverLen, match)
		return
	}
	e := l0.mem.load(s.index[0])
	if e&fibChunk == 0 {
		return // p was never below here
	}
	l1 := f.chunk(e, t.live)
	if s.depth == 1 {
		f.paint(l1, s.lo, s.hi, cover, coverLen, match)
	} else if l1.mem.load(l1.base+s.index[1])&fibChunk != 0 {
		f.update24(l1, s.index[1], func(x *[fibChunkLen]slot) {
			for j := s.lo; j < s.hi; j++ {
				if match(x[j].plen) {
					x[j] = slot{cover, coverLen}
				}
			}
		})
	}
	// A /16's chunk left holding one route of /16 or shorter goes back
	// into the first level.
	if e1, l, ok := uniform(l1); ok && l <= 16 {
		l0.plen[s.index[0]] = l
		l0.mem.store(s.index[0], e1)
		f.release(e, t.live)
	}
}

// uniform says whether every entry of chunk c is the same route (no chunk
// below), and which.
func uniform(c level) (uint32, uint8, bool) {
	e, l := c.mem.load(c.base), c.plen[c.base]
	if e&fibChunk != 0 {
		return 0, 0, false
	}
	for i := 1; i < c.size; i++ {
		if c.mem.load(c.base+i) != e || c.plen[c.base+i] != l {
			return 0, 0, false
		}
	}
	return e, l, true
}

// lookup is what the program finds for a: for tests.
func (f *fib) lookup(vrf VRFID, a netip.Addr) uint32 {
	t := f.tables[vrf]
	if t == nil {
		return 0
	}
	return f.at(t, a).e
}

// chunksInUse is how many chunks of each size the FIB holds: 256-entry
// (1 KiB) ones and range chunks (64 bytes).
func (f *fib) chunksInUse() (big, small int) { return f.big.inUse(), f.small.inUse() }

// at is the route t gives addr, as the program finds it: its entry and
// prefix length (0, 0: none). Go memory only, no syscall.
func (f *fib) at(t *fibVRF, addr netip.Addr) slot {
	h := be32host(addr)
	e, plen := t.mem.load(int(h>>16)), t.plen[int(h>>16)]
	if e&fibChunk == 0 {
		return slot{e, plen}
	}
	c := f.chunk(e, false)
	i := c.base + int(h>>8)&0xff
	e, plen = c.mem.load(i), c.plen[i]
	switch {
	case e&fibChunk == 0:
		return slot{e, plen}
	case e&fibRanges != 0:
		// As the program counts: the starts 1..11 at or below the
		// address (unused ones repeat the last run, route and length).
		base := int(e&^(fibChunk|fibRanges)) * fibSmallLen
		n := 0
		for i := 1; i < fibMaxRanges; i++ {
			if uint32(f.small.mem[base*4+i]) <= h&0xff {
				n++
			}
		}
		w := base + fibRangeBase + n
		return slot{f.small.mem.load(w), f.small.plen[w]}
	}
	c = f.chunk(e, false)
	i = c.base + int(h)&0xff
	return slot{c.mem.load(i), c.plen[i]}
}
