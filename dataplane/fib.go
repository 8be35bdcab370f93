package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The compiled FIB: what the XDP program looks routes up in. Per VRF a
// first level of 2^16 entries indexed by the address's top 16 bits, then
// chunks: 256 entries for bits 16-23, then 16 entries for bits 24-27 and
// 16 for bits 28-31 (DIR-16-8-4-4), from two pools shared by every VRF.
// Four dependent array loads at most, where the kernel's LPM trie walks
// up to 32 nodes. The last two levels are small because routes longer
// than /24 are sparse (host routes): a /32 costs two 64-byte chunks, not
// a 1 KiB one. The LPM tries stay the record of routes (what Routes lists
// and a restarted agent reads); the FIB is built from them at Open and
// kept in step by every route change.
//
// An entry is 0 (no route), fibChunk|index (a chunk of the next level's
// pool), or a route: kind<<24 | target. Go writes entries straight into
// the maps' memory (mmapped), each as one aligned 32-bit store, and a
// chunk is filled before the entry that points to it: a packet sees each
// entry old or new, so it finds the old route for its address or the new
// one, never a half-built level. A freed chunk is reused only after an RCU
// grace period (any update of an array of maps waits for every running
// program), so no packet still walking it sees it change.
const (
	fibL1Size   = 1 << 16
	fibChunk    = uint32(0x80000000)
	fibKindBits = 24
	fibDepths   = 4
)

// fibEnd[d] is the prefix length an entry of a level at depth d covers
// (depth 0 is the first level), and fibStride[d] the bits it indexes.
var (
	fibEnd    = [fibDepths]int{16, 24, 28, 32}
	fibStride = [fibDepths]int{16, 8, 4, 4}
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

func mmapMap(m *ebpf.Map, size int) (words, error) {
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", m, err)
	}
	return words(b), nil
}

// fibVRF is one VRF's first level, and the prefix length of the route in
// each of its route entries (a chunk entry's is unused).
type fibVRF struct {
	m    *ebpf.Map
	mem  words
	plen [fibL1Size]uint8
}

// fibPool is a map of fixed-size chunks and which of them are free.
type fibPool struct {
	m       *ebpf.Map
	mem     words
	size    int      // entries per chunk
	plen    []uint8  // per entry
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
	pools  [fibDepths]*fibPool // the pool of each depth's chunks (none for 0)
}

// newFIB takes the pools of 256-entry chunks (depth 1) and of 16-entry
// ones (depths 2 and 3).
func newFIB(vrfs, chunks, small *ebpf.Map, l1Spec *ebpf.MapSpec) (*fib, error) {
	big, err := newPool(chunks, 1<<fibStride[1])
	if err != nil {
		return nil, err
	}
	sm, err := newPool(small, 1<<fibStride[2])
	if err != nil {
		unix.Munmap(big.mem)
		return nil, err
	}
	return &fib{vrfs: vrfs, l1Spec: l1Spec, tables: map[VRFID]*fibVRF{}, pools: [fibDepths]*fibPool{nil, big, sm, sm}}, nil
}

func (f *fib) close() {
	for _, t := range f.tables {
		unix.Munmap(t.mem)
		t.m.Close()
	}
	unix.Munmap(f.pools[1].mem)
	unix.Munmap(f.pools[2].mem)
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
			f.release(1, e&^fibChunk)
		}
	}
	unix.Munmap(t.mem)
	t.m.Close()
}

// release frees chunk c of depth d and every chunk below it.
func (f *fib) release(d int, c uint32) {
	p := f.pools[d]
	if d+1 < fibDepths {
		for i := range p.size {
			if e := p.mem.load(int(c)*p.size + i); e&fibChunk != 0 {
				f.release(d+1, e&^fibChunk)
			}
		}
	}
	p.pending = append(p.pending, c)
}

// grace waits for every program run that may still read a chunk freed so
// far: an update of the array of maps waits for them all.
func (f *fib) grace() error {
	for vrf, t := range f.tables {
		if err := f.vrfs.Put(uint32(vrf), t.m); err != nil {
			return fmt.Errorf("fib grace period: %w", err)
		}
		break
	}
	f.graceDone()
	return nil
}

// graceDone makes the chunks freed before a grace period reusable.
func (f *fib) graceDone() {
	for _, p := range f.pools[1:3] {
		p.free = append(p.free, p.pending...)
		p.pending = p.pending[:0]
	}
}

// alloc takes a chunk of depth d and fills it with entry e of prefix
// length plen.
func (f *fib) alloc(d int, e uint32, plen uint8) (uint32, error) {
	p := f.pools[d]
	if len(p.free) == 0 && len(p.pending) > 0 {
		if err := f.grace(); err != nil {
			return 0, err
		}
	}
	if len(p.free) == 0 {
		return 0, fmt.Errorf("%w (%d chunks of %d entries)", ErrFIBFull, p.m.MaxEntries(), p.size)
	}
	c := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	base := int(c) * p.size
	for i := range p.size {
		p.mem.store(base+i, e)
		p.plen[base+i] = plen
	}
	return c, nil
}

// level is an array of entries: a VRF's first level or a chunk.
type level struct {
	mem   words
	plen  []uint8
	base  int // index of entry 0 in mem and plen
	size  int
	depth int
}

func (f *fib) first(t *fibVRF) level { return level{mem: t.mem, plen: t.plen[:], size: fibL1Size} }
func (f *fib) chunk(d int, c uint32) level {
	p := f.pools[d]
	return level{mem: p.mem, plen: p.plen, base: int(c) * p.size, size: p.size, depth: d}
}

// below is the chunk entry e of l points to.
func (f *fib) below(l level, e uint32) level { return f.chunk(l.depth+1, e&^fibChunk) }

// descend returns the chunk below entry i of l, making one from the route
// entry there when there is none.
func (f *fib) descend(l level, i int) (level, error) {
	e := l.mem.load(l.base + i)
	if e&fibChunk != 0 {
		return f.below(l, e), nil
	}
	c, err := f.alloc(l.depth+1, e, l.plen[l.base+i])
	if err != nil {
		return level{}, err
	}
	l.mem.store(l.base+i, fibChunk|c) // published filled
	return f.chunk(l.depth+1, c), nil
}

// paint sets entries [lo, hi) of l, and everything under them, to e of
// prefix length plen wherever the route there has a length match accepts.
func (f *fib) paint(l level, lo, hi int, e uint32, plen uint8, match func(uint8) bool) {
	for i := lo; i < hi; i++ {
		cur := l.mem.load(l.base + i)
		if cur&fibChunk != 0 {
			c := f.below(l, cur)
			f.paint(c, 0, c.size, e, plen, match)
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
	index  [fibDepths - 1]int // its entry in each level above the last
	depth  int                // the level its entries are in
	lo, hi int
}

// fibIndex is a's entry in a level of depth d.
func fibIndex(a uint32, d int) int {
	return int(a>>(32-fibEnd[d])) & (1<<fibStride[d] - 1)
}

func spanOf(p netip.Prefix) span {
	a := be32host(p.Addr())
	bits := p.Bits()
	var s span
	for bits > fibEnd[s.depth] {
		s.index[s.depth] = fibIndex(a, s.depth)
		s.depth++
	}
	s.lo = fibIndex(a, s.depth)
	s.hi = s.lo + 1<<(fibEnd[s.depth]-bits)
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
	l := f.first(t)
	for d := 0; d < s.depth; d++ {
		var err error
		if l, err = f.descend(l, s.index[d]); err != nil {
			return err
		}
	}
	plen := uint8(p.Bits())
	f.paint(l, s.lo, s.hi, e, plen, func(cur uint8) bool { return cur <= plen })
	return nil
}

// del takes p out of t: its addresses find cover (the longest route
// shorter than p, entry 0 if none) wherever they found p. Chunks left
// holding one route no longer than their parent's entry go.
func (f *fib) del(t *fibVRF, p netip.Prefix, cover uint32, coverLen uint8) {
	s := spanOf(p)
	path := []level{f.first(t)}
	for d := 0; d < s.depth; d++ {
		l := path[d]
		e := l.mem.load(l.base + s.index[d])
		if e&fibChunk == 0 {
			return // p was never below here
		}
		path = append(path, f.below(l, e))
	}
	plen := uint8(p.Bits())
	f.paint(path[s.depth], s.lo, s.hi, cover, coverLen, func(cur uint8) bool { return cur == plen })
	// Collapse from the bottom: a chunk whose entries are all one route
	// no longer than its parent entry's span goes back into that entry.
	for d := s.depth; d > 0; d-- {
		c, parent := path[d], path[d-1]
		e, l, ok := uniform(c)
		if !ok || int(l) > fibEnd[d-1] {
			return
		}
		i := parent.base + s.index[d-1]
		parent.plen[i] = l
		chunk := parent.mem.load(i) &^ fibChunk
		parent.mem.store(i, e)
		f.pools[d].pending = append(f.pools[d].pending, chunk)
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

// lookup is what the program finds for a: for tests and explain.
func (f *fib) lookup(vrf VRFID, a netip.Addr) uint32 {
	t := f.tables[vrf]
	if t == nil {
		return 0
	}
	h := be32host(a)
	l := f.first(t)
	for d := 0; ; d++ {
		e := l.mem.load(l.base + fibIndex(h, d))
		if e&fibChunk == 0 {
			return e
		}
		if d+1 == fibDepths {
			return 0
		}
		l = f.below(l, e)
	}
}

// chunksInUse is how many chunks of each size the FIB holds: 256-entry
// (1 KiB) ones and 16-entry (64-byte) ones.
func (f *fib) chunksInUse() (big, small int) { return f.pools[1].inUse(), f.pools[2].inUse() }
