package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// table returns vrf's LPM trie, creating an empty one on first use.
// Called with d.mu held.
func (d *Dataplane) table(vrf VRFID) (*ebpf.Map, error) {
	if t := d.tables[vrf]; t != nil {
		return t, nil
	}
	t, err := d.newTable(vrf, d.opts.RoutesPerVRF)
	if err != nil {
		return nil, err
	}
	if err := d.compile(vrf, nil, nil); err != nil {
		t.Close()
		return nil, err
	}
	if err := d.objs.VrfTables.Put(uint32(vrf), t); err != nil {
		t.Close()
		d.fib.remove(vrf)
		return nil, fmt.Errorf("vrf %d: install table: %w", vrf, err)
	}
	d.tables[vrf] = t
	return t, nil
}

// compile builds vrf's FIB from its routes and puts it in place of the
// one it has, in one step. Called with d.mu held.
func (d *Dataplane) compile(vrf VRFID, keys []xleafLpmKey, vals []xleafRoute) error {
	t, err := d.build(vrf, keys, vals)
	if err != nil {
		return err
	}
	if err := d.fib.install(vrf, t); err != nil {
		d.fib.releaseAll(t)
		return err
	}
	return nil
}

// build makes a FIB of the routes, not yet in use.
func (d *Dataplane) build(vrf VRFID, keys []xleafLpmKey, vals []xleafRoute) (*fibVRF, error) {
	t, err := d.fib.newVRF(vrf)
	if err != nil {
		return nil, err
	}
	ps := make([]netip.Prefix, len(keys))
	es := make([]uint32, len(keys))
	for i := range keys {
		ps[i], es[i] = prefixOfKey(keys[i]), fibEntry(vals[i])
	}
	if err := d.fib.setAll(t, ps, es); err != nil {
		d.fib.releaseAll(t)
		return nil, fmt.Errorf("vrf %d: fib: %w", vrf, err)
	}
	return t, nil
}

func prefixOfKey(k xleafLpmKey) netip.Prefix {
	return netip.PrefixFrom(addrFromBe32(k.Addr), int(k.Prefixlen))
}

// cover is what the FIB holds for p's addresses once p is gone: the
// longest route of t shorter than p (its LPM match at p's length less
// one), entry 0 if none.
func cover(t *ebpf.Map, p netip.Prefix) (uint32, uint8) {
	if p.Bits() == 0 {
		return 0, 0
	}
	var v xleafRoute
	if err := t.Lookup(xleafLpmKey{Prefixlen: uint32(p.Bits() - 1), Addr: be32(p.Addr())}, &v); err != nil {
		return 0, 0
	}
	return fibEntry(v), v.Prefixlen
}

func (d *Dataplane) newTable(vrf VRFID, size uint32) (*ebpf.Map, error) {
	ts := d.tableSpec.Copy()
	ts.Name = fmt.Sprintf("vrf%d", vrf)
	ts.MaxEntries = size
	t, err := ebpf.NewMap(ts)
	if err != nil {
		return nil, fmt.Errorf("vrf %d: create table: %w", vrf, err)
	}
	return t, nil
}

func lpmKey(p netip.Prefix) xleafLpmKey {
	return xleafLpmKey{Prefixlen: uint32(p.Bits()), Addr: be32(p.Addr())}
}

// encode validates r, an IPv4 route, and turns it into a map key and
// value (encodeValue).
func (d *Dataplane) encode(r Route) (xleafLpmKey, xleafRoute, error) {
	if !r.Prefix.IsValid() || !r.Prefix.Addr().Is4() {
		return xleafLpmKey{}, xleafRoute{}, fmt.Errorf("route %v: not an IPv4 prefix", r.Prefix)
	}
	v, err := d.encodeValue(r)
	return lpmKey(r.Prefix), v, err
}

// encodeValue validates r and turns it into a map value, taking a
// reference on its nexthop group (written to the map if new). Called with
// d.mu held.
func (d *Dataplane) encodeValue(r Route) (xleafRoute, error) {
	var v xleafRoute
	if r.Prefix.Masked() != r.Prefix {
		return v, fmt.Errorf("route %v: host bits set (want %v)", r.Prefix, r.Prefix.Masked())
	}
	v.Kind, v.Prefixlen = uint8(r.Kind), uint8(r.Prefix.Bits())
	switch r.Kind {
	case RouteBlackhole, RouteReceive:
	case RouteLocal:
		if err := checkVRF(r.HostVRF); err != nil {
			return v, fmt.Errorf("route %v: host %w", r.Prefix, err)
		}
		v.Target = uint32(r.HostVRF)
	case RouteRemote:
		nhs, gkey, err := canonical(r.Remotes)
		if err != nil {
			return v, fmt.Errorf("route %v: %w", r.Prefix, err)
		}
		id, isNew, err := d.groups.acquire(gkey)
		if err != nil {
			return v, fmt.Errorf("route %v: %w", r.Prefix, err)
		}
		if isNew {
			g := buildGroup(nhs)
			d.setCols(&g)
			if err := d.objs.Nhgs.Put(id, &g); err != nil {
				d.groups.release(id, 1)
				return v, fmt.Errorf("route %v: write nexthop group: %w", r.Prefix, err)
			}
		}
		v.Target = id
	default:
		return v, fmt.Errorf("route %v: unknown kind %d", r.Prefix, r.Kind)
	}
	return v, nil
}

// releaseGroup drops n references; an unused group is cleared so a stale
// route can never use it. Called with d.mu held.
func (d *Dataplane) releaseGroup(id uint32, n int) {
	if d.groups.release(id, n) {
		d.objs.Nhgs.Put(id, &xleafNhg{})
	}
}

// releaseValue drops the reference of a route value that encode took but
// no table holds.
func (d *Dataplane) releaseValue(v xleafRoute) {
	if RouteKind(v.Kind) == RouteRemote {
		d.releaseGroup(v.Target, 1)
	}
}

// dropRoute accounts for a route leaving vrf's table.
func (d *Dataplane) dropRoute(vrf VRFID, v xleafRoute) {
	d.tableGroups.add(vrf, v, -1)
	d.releaseValue(v)
}

// releaseTable drops the references tg counts for every route of vrf's
// table t (tableGroups for its IPv4 table, table6Groups for its IPv6 one)
// and closes it.
func (d *Dataplane) releaseTable(tg tableGroups, vrf VRFID, t *ebpf.Map) {
	for id, n := range tg[vrf] {
		d.releaseGroup(id, n)
	}
	delete(tg, vrf)
	t.Close()
}

// lookupExact finds the route stored for exactly the prefix of key (an
// lpm_key or lpm6_key of length plen); an LPM lookup alone would also
// return a shorter route covering it.
func lookupExact[K any](t *ebpf.Map, key K, plen uint32) (xleafRoute, bool) {
	var v xleafRoute
	if err := t.Lookup(key, &v); err != nil || uint32(v.Prefixlen) != plen {
		return xleafRoute{}, false
	}
	return v, true
}

// SetRoute inserts or replaces one route. The packet path sees either the
// old route or the new one, never a mix.
func (d *Dataplane) SetRoute(vrf VRFID, r Route) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if r.Prefix.Addr().Is6() {
		return d.setRoute6(vrf, r)
	}
	t, err := d.table(vrf)
	if err != nil {
		return err
	}
	key, val, err := d.encode(r)
	if err != nil {
		return fmt.Errorf("vrf %d: %w", vrf, err)
	}
	// A new prefix takes one syscall; a replaced one reads the old value
	// first, to release its nexthop group.
	var old xleafRoute
	hadOld := false
	err = t.Update(key, val, ebpf.UpdateNoExist)
	if errors.Is(err, ebpf.ErrKeyExist) {
		old, hadOld = lookupExact(t, key, key.Prefixlen)
		err = t.Update(key, val, ebpf.UpdateAny)
	}
	if err != nil {
		d.releaseValue(val)
		return fmt.Errorf("vrf %d: route %v: %w", vrf, r.Prefix, err)
	}
	if err := d.fib.set(d.fib.tables[vrf], r.Prefix, fibEntry(val)); err != nil {
		// The record goes back to what the FIB still forwards.
		if hadOld {
			t.Update(key, old, ebpf.UpdateAny)
		} else {
			t.Delete(key)
		}
		d.releaseValue(val)
		return fmt.Errorf("vrf %d: route %v: %w", vrf, r.Prefix, err)
	}
	d.tableGroups.add(vrf, val, 1)
	if hadOld {
		d.dropRoute(vrf, old)
	}
	return nil
}

// DeleteRoute removes one prefix from a VRF.
func (d *Dataplane) DeleteRoute(vrf VRFID, p netip.Prefix) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if p.Addr().Is6() {
		return d.deleteRoute6(vrf, p)
	}
	t := d.tables[vrf]
	if t == nil || !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("vrf %d: route %v: %w", vrf, p, ebpf.ErrKeyNotExist)
	}
	key := lpmKey(p.Masked())
	// The route is the FIB's at its first address when that has its
	// length (the usual case: no longer route over that address); else
	// the trie says.
	var old xleafRoute
	ok := false
	if ft := d.fib.tables[vrf]; ft != nil && p.IsValid() {
		if sl := d.fib.at(ft, p.Addr()); sl.e != 0 && int(sl.plen) == p.Bits() {
			old, ok = xleafRoute{Kind: uint8(FIBEntryKind(sl.e)), Prefixlen: sl.plen, Target: sl.e & (1<<fibKindBits - 1)}, true
		}
	}
	if !ok {
		old, ok = lookupExact(t, key, key.Prefixlen)
	}
	if !ok || p.Masked() != p {
		return fmt.Errorf("vrf %d: route %v: %w", vrf, p, ebpf.ErrKeyNotExist)
	}
	if err := t.Delete(key); err != nil {
		return fmt.Errorf("vrf %d: route %v: %w", vrf, p, err)
	}
	e, l := cover(t, p)
	d.fib.del(d.fib.tables[vrf], p, e, l)
	d.dropRoute(vrf, old)
	return nil
}

// ReplaceTable swaps vrf's whole table, both families, for routes: packets
// see the old table of a family or the new one. Nothing changes if any
// route is invalid.
func (d *Dataplane) ReplaceTable(vrf VRFID, routes []Route) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	var routes6 []Route
	routes = slices.DeleteFunc(slices.Clone(routes), func(r Route) bool {
		if r.Prefix.Addr().Is6() {
			routes6 = append(routes6, r)
			return true
		}
		return false
	})
	t6, vals6, err := d.prepareTable6(vrf, routes6)
	if err != nil {
		return fmt.Errorf("vrf %d: %w", vrf, err)
	}
	keys := make([]xleafLpmKey, 0, len(routes))
	vals := make([]xleafRoute, 0, len(routes))
	undo := func() {
		for _, v := range vals {
			d.releaseValue(v)
		}
		d.abandonTable6(t6, vals6)
	}
	for _, r := range routes {
		k, v, err := d.encode(r)
		if err != nil {
			undo()
			return fmt.Errorf("vrf %d: %w", vrf, err)
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	// Room for the routes and half as many again: a table sized to its
	// routes exactly would refuse the next SetRoute (the trie is not
	// preallocated, so the room costs nothing until used).
	t, err := d.newTable(vrf, max(d.opts.RoutesPerVRF, uint32(len(routes)+len(routes)/2)))
	if err != nil {
		undo()
		return err
	}
	if err := fill(t, keys, vals); err != nil {
		t.Close()
		undo()
		return fmt.Errorf("vrf %d: fill table: %w", vrf, err)
	}
	ft, err := d.build(vrf, keys, vals)
	if err != nil {
		t.Close()
		undo()
		return err
	}
	if err := d.objs.VrfTables.Put(uint32(vrf), t); err != nil {
		t.Close()
		d.fib.releaseAll(ft)
		undo()
		return fmt.Errorf("vrf %d: install table: %w", vrf, err)
	}
	if err := d.fib.install(vrf, ft); err != nil {
		d.fib.releaseAll(ft)
		d.abandonTable6(t6, vals6)
		// The record is the new table; the FIB the old one: say so.
		return fmt.Errorf("vrf %d: %w (the data path still forwards by the table before)", vrf, err)
	}
	if old := d.tables[vrf]; old != nil {
		d.releaseTable(d.tableGroups, vrf, old)
	}
	d.tables[vrf] = t
	for _, v := range vals {
		d.tableGroups.add(vrf, v, 1)
	}
	if err := d.installTable6(vrf, t6, vals6); err != nil {
		return fmt.Errorf("vrf %d: %w (its IPv4 table is the new one, its IPv6 table the one before)", vrf, err)
	}
	return nil
}

// fill writes keys/vals in batches where the kernel supports it.
func fill[K any](t *ebpf.Map, keys []K, vals []xleafRoute) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := t.BatchUpdate(keys, vals, nil)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return err
	}
	for i := range keys {
		if err := t.Put(keys[i], vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Routes lists vrf's table as the data path holds it: IPv4, then IPv6.
func (d *Dataplane) Routes(vrf VRFID) ([]Route, error) {
	var out []Route
	err := d.EachRoute(vrf, func(r Route) error {
		r.Remotes = slices.Clone(r.Remotes)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EachRoute calls fn with each route of vrf's table as the data path holds
// it, IPv4 then IPv6, and stops at fn's first error. It keeps nothing but
// one batch read (eachEntry) and the nexthop groups it read: a
// million-route table is read in the memory of 4096 routes. A route's
// Remotes are shared with every route of its group in this reading: fn
// must not change them.
func (d *Dataplane) EachRoute(vrf VRFID, fn func(Route) error) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	// A handle of its own on each table, and no lock while reading it: a
	// big table takes a while, and changes must not wait for a reader.
	// What it reads is then the table as it is being changed, a route at
	// a time (each route whole).
	if err := d.lock(); err != nil {
		return err
	}
	var t4, t6 *ebpf.Map
	var err error
	if live := d.tables[vrf]; live != nil {
		t4, err = live.Clone()
	}
	if live := d.tables6[vrf]; live != nil && err == nil {
		t6, err = live.Clone()
	}
	d.mu.Unlock()
	for _, t := range []*ebpf.Map{t4, t6} {
		if t != nil {
			defer t.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("vrf %d: %w", vrf, err)
	}
	groups := map[uint32][]Remote{} // read once each: routes share a few
	add := func(p netip.Prefix, v xleafRoute) error {
		r := Route{Prefix: p, Kind: RouteKind(v.Kind)}
		switch r.Kind {
		case RouteLocal:
			r.HostVRF = VRFID(v.Target)
		case RouteRemote:
			remotes, ok := groups[v.Target]
			if !ok {
				var g xleafNhg
				if err := d.objs.Nhgs.Lookup(v.Target, &g); err != nil {
					return fmt.Errorf("vrf %d: route %v: group %d: %w", vrf, r.Prefix, v.Target, err)
				}
				for _, nh := range g.Member[:min(int(g.Members), MaxECMP)] {
					remotes = append(remotes, Remote{VTEP: addrFromBe32(nh.Vtep), VNI: nh.Vni,
						RouterMAC: net.HardwareAddr(nh.Rmac[:])})
				}
				groups[v.Target] = remotes
			}
			r.Remotes = remotes
		}
		return fn(r)
	}
	if t4 != nil {
		if err := eachEntry(t4, func(k xleafLpmKey, v xleafRoute) error {
			return add(netip.PrefixFrom(addrFromBe32(k.Addr), int(k.Prefixlen)), v)
		}); err != nil {
			return fmt.Errorf("vrf %d: list routes: %w", vrf, err)
		}
	}
	if t6 != nil {
		if err := eachEntry(t6, func(k xleafLpm6Key, v xleafRoute) error {
			return add(netip.PrefixFrom(netip.AddrFrom16(k.Addr), int(k.Prefixlen)), v)
		}); err != nil {
			return fmt.Errorf("vrf %d: list ipv6 routes: %w", vrf, err)
		}
	}
	return nil
}

// readBatch is how many entries eachEntry reads in one system call.
const readBatch = 4096

// eachEntry calls fn with each entry of t, a route table (an LPM trie),
// and stops at fn's first error. It reads readBatch entries a system call
// (an entry at a time, two calls each, where the kernel has no batch
// reads for the map). A table changed while it is read is read as the
// kernel's next-key walk sees it: an entry may be read twice when the
// last one read is deleted before the next batch (the walk starts again
// from the first), and a read that finds twice the table's capacity
// gives up.
func eachEntry[K any](t *ebpf.Map, fn func(K, xleafRoute) error) error {
	keys := make([]K, readBatch)
	vals := make([]xleafRoute, readBatch)
	var cursor ebpf.MapBatchCursor
	read := 0
	for retries := 0; ; {
		n, err := t.BatchLookup(&cursor, keys, vals, nil)
		if errors.Is(err, ebpf.ErrNotSupported) && read == 0 {
			return eachEntryIterate(t, fn)
		}
		// The kernel gives up a batch (EINTR) when entries keep vanishing
		// under it, having moved the cursor past what it read, which
		// the library does not return: the walk starts over (entries
		// read twice, as when the walk restarts by itself).
		if errors.Is(err, unix.EINTR) && retries < 3 {
			retries++
			cursor = ebpf.MapBatchCursor{}
			continue
		}
		for i := range n {
			if err := fn(keys[i], vals[i]); err != nil {
				return err
			}
		}
		if read += n; errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil // the end
		} else if err != nil {
			return err
		}
		if read > 2*int(t.MaxEntries()) {
			return fmt.Errorf("read %d entries of a table of %d: it changed faster than it was read", read, t.MaxEntries())
		}
	}
}

func eachEntryIterate[K any](t *ebpf.Map, fn func(K, xleafRoute) error) error {
	var k K
	var v xleafRoute
	it := t.Iterate()
	for it.Next(&k, &v) {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return it.Err()
}
