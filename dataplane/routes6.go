package dataplane

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
)

// A VRF's IPv6 routes live in an LPM trie of their own (vrf_tables6), the
// record, and in fib6, the hash the program probes at each of the VRF's
// prefix lengths (fib6_lens, one word per VRF: bpf/types.h). A change
// goes to both, in an order that shows a packet the old route or the new
// one: a route is in fib6 before its length is in the VRF's word, and a
// length leaves the word before its last route leaves fib6; a VRF whose
// table is swapped whole is looked up in its trie (word 0) meanwhile.
// Nexthop groups are shared with IPv4 routes; table6Groups counts the IPv6
// tables' references apart from tableGroups, since the two tables of a VRF
// are replaced and released apart.

// defaultFIB6MinRoutes is where the hash starts to beat the trie
// (BenchmarkXDP6, lookup=trie and lookup=hash on one table).
const defaultFIB6MinRoutes = 4096

// fib6Lens is FIB6_LENS: the most prefix lengths a VRF's word holds; a
// VRF with more is looked up in its trie.
const fib6Lens = 8

func fib6Key(vrf VRFID, p netip.Prefix) xleafFib6Key {
	return xleafFib6Key{Vrf: uint32(vrf), Len: uint32(p.Bits()), Addr: p.Masked().Addr().As16()}
}

// lens6Word is vrf's word: its lengths, longest first, each + 1 in a byte;
// 0 (none, too many, or fewer routes than FIB6MinRoutes) for its trie.
func (d *Dataplane) lens6Word(vrf VRFID) uint64 {
	ls := slices.Sorted(maps.Keys(d.lens6[vrf]))
	if len(ls) == 0 || len(ls) > fib6Lens {
		return 0
	}
	routes := 0
	for _, n := range d.lens6[vrf] {
		routes += n
	}
	if routes < int(d.opts.FIB6MinRoutes) {
		return 0
	}
	var w uint64
	for i, l := range slices.Backward(ls) {
		w |= uint64(l+1) << (8 * (len(ls) - 1 - i))
	}
	return w
}

// setLens6 publishes vrf's word, in one store.
func (d *Dataplane) setLens6(vrf VRFID, w uint64) {
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&d.fib6Lens[8*int(vrf)])), w)
}

// countLen6 counts a route of length bits in or out of vrf and publishes
// its word (a length comes or goes, or the route count crosses
// FIB6MinRoutes).
func (d *Dataplane) countLen6(vrf VRFID, bits int, n int) {
	m := d.lens6[vrf]
	if m == nil {
		m = map[uint8]int{}
		d.lens6[vrf] = m
	}
	l := uint8(bits)
	if m[l] += n; m[l] <= 0 {
		delete(m, l)
	}
	d.setLens6(vrf, d.lens6Word(vrf))
}

// SetFIB6MinRoutes changes Options.FIB6MinRoutes (0: the default), for
// benchmarks and tests that run both lookups on one table.
func (d *Dataplane) SetFIB6MinRoutes(n uint32) error {
	if n == 0 {
		n = defaultFIB6MinRoutes
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	d.opts.FIB6MinRoutes = n
	for vrf := range d.lens6 {
		d.setLens6(vrf, d.lens6Word(vrf))
	}
	return nil
}

// clearFast6 sends vrf's lookups to its trie and takes its routes (those
// of t) out of fib6.
func (d *Dataplane) clearFast6(vrf VRFID, t *ebpf.Map) {
	d.setLens6(vrf, 0)
	delete(d.lens6, vrf)
	if t == nil {
		return
	}
	var keys []xleafFib6Key
	eachEntry(t, func(k xleafLpm6Key, _ xleafRoute) error {
		keys = append(keys, fib6Key(vrf, netip.PrefixFrom(netip.AddrFrom16(k.Addr), int(k.Prefixlen))))
		return nil
	})
	for _, k := range keys {
		d.objs.Fib6.Delete(k)
	}
}

// fillFast6 puts the routes of t, vrf's trie, in fib6 and publishes its
// word. On failure (fib6 full) the VRF stays looked up in its trie.
func (d *Dataplane) fillFast6(vrf VRFID, t *ebpf.Map) error {
	lens := map[uint8]int{}
	if err := eachEntry(t, func(k xleafLpm6Key, v xleafRoute) error {
		p := netip.PrefixFrom(netip.AddrFrom16(k.Addr), int(k.Prefixlen))
		if err := d.objs.Fib6.Update(fib6Key(vrf, p), v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("ipv6 lookup table (--fib6-routes %d): %w; the vrf is looked up in its trie", d.objs.Fib6.MaxEntries(), err)
		}
		lens[uint8(p.Bits())]++
		return nil
	}); err != nil {
		return err
	}
	d.lens6[vrf] = lens
	d.setLens6(vrf, d.lens6Word(vrf))
	return nil
}

func lpm6Key(p netip.Prefix) xleafLpm6Key {
	return xleafLpm6Key{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As16()}
}

func (d *Dataplane) newTable6(vrf VRFID, size uint32) (*ebpf.Map, error) {
	ts := d.table6Spec.Copy()
	ts.Name = fmt.Sprintf("vrf%d_v6", vrf)
	ts.MaxEntries = size
	t, err := ebpf.NewMap(ts)
	if err != nil {
		return nil, fmt.Errorf("vrf %d: create ipv6 table: %w", vrf, err)
	}
	return t, nil
}

// table6 returns vrf's IPv6 trie, creating and installing an empty one on
// first use. Called with d.mu held.
func (d *Dataplane) table6(vrf VRFID) (*ebpf.Map, error) {
	if t := d.tables6[vrf]; t != nil {
		return t, nil
	}
	t, err := d.newTable6(vrf, d.opts.Routes6PerVRF)
	if err != nil {
		return nil, err
	}
	if err := d.objs.VrfTables6.Put(uint32(vrf), t); err != nil {
		t.Close()
		return nil, fmt.Errorf("vrf %d: install ipv6 table: %w", vrf, err)
	}
	d.tables6[vrf] = t
	return t, nil
}

// encode6 validates r, an IPv6 route, and turns it into a map key and
// value (encodeValue).
func (d *Dataplane) encode6(r Route) (xleafLpm6Key, xleafRoute, error) {
	if !r.Prefix.IsValid() || !r.Prefix.Addr().Is6() || r.Prefix.Addr().Is4In6() || r.Prefix.Addr().Zone() != "" {
		return xleafLpm6Key{}, xleafRoute{}, fmt.Errorf("route %v: not an IPv6 prefix", r.Prefix)
	}
	v, err := d.encodeValue(r)
	return lpm6Key(r.Prefix), v, err
}

// setRoute6 is SetRoute of an IPv6 route. Called with d.mu held.
func (d *Dataplane) setRoute6(vrf VRFID, r Route) error {
	t, err := d.table6(vrf)
	if err != nil {
		return err
	}
	key, val, err := d.encode6(r)
	if err != nil {
		return fmt.Errorf("vrf %d: %w", vrf, err)
	}
	old, hadOld := lookupExact(t, key, key.Prefixlen)
	k6 := fib6Key(vrf, r.Prefix)
	if err := d.objs.Fib6.Update(k6, val, ebpf.UpdateAny); err != nil {
		d.releaseValue(val)
		return fmt.Errorf("vrf %d: route %v: ipv6 lookup table (%d routes): %w", vrf, r.Prefix, d.objs.Fib6.MaxEntries(), err)
	}
	if err := t.Update(key, val, ebpf.UpdateAny); err != nil {
		if hadOld {
			d.objs.Fib6.Update(k6, old, ebpf.UpdateAny)
		} else {
			d.objs.Fib6.Delete(k6)
		}
		d.releaseValue(val)
		return fmt.Errorf("vrf %d: route %v: %w", vrf, r.Prefix, err)
	}
	if !hadOld {
		d.countLen6(vrf, r.Prefix.Bits(), 1)
	}
	d.table6Groups.add(vrf, val, 1)
	if hadOld {
		d.table6Groups.add(vrf, old, -1)
		d.releaseValue(old)
	}
	return nil
}

// deleteRoute6 is DeleteRoute of an IPv6 prefix. Called with d.mu held.
func (d *Dataplane) deleteRoute6(vrf VRFID, p netip.Prefix) error {
	t := d.tables6[vrf]
	if t == nil || !p.IsValid() || p.Masked() != p {
		return fmt.Errorf("vrf %d: route %v: %w", vrf, p, ebpf.ErrKeyNotExist)
	}
	key := lpm6Key(p)
	old, ok := lookupExact(t, key, key.Prefixlen)
	if !ok {
		return fmt.Errorf("vrf %d: route %v: %w", vrf, p, ebpf.ErrKeyNotExist)
	}
	if err := t.Delete(key); err != nil {
		return fmt.Errorf("vrf %d: route %v: %w", vrf, p, err)
	}
	d.countLen6(vrf, p.Bits(), -1)
	d.objs.Fib6.Delete(fib6Key(vrf, p))
	d.table6Groups.add(vrf, old, -1)
	d.releaseValue(old)
	return nil
}

// prepareTable6 builds an IPv6 table of routes, not yet in use (nil for no
// routes). Called with d.mu held.
func (d *Dataplane) prepareTable6(vrf VRFID, routes []Route) (*ebpf.Map, []xleafRoute, error) {
	if len(routes) == 0 {
		return nil, nil, nil
	}
	keys := make([]xleafLpm6Key, 0, len(routes))
	vals := make([]xleafRoute, 0, len(routes))
	for _, r := range routes {
		k, v, err := d.encode6(r)
		if err != nil {
			d.abandonTable6(nil, vals)
			return nil, nil, err
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	t, err := d.newTable6(vrf, max(d.opts.Routes6PerVRF, uint32(len(routes)+len(routes)/2)))
	if err != nil {
		d.abandonTable6(nil, vals)
		return nil, nil, err
	}
	if err := fill(t, keys, vals); err != nil {
		d.abandonTable6(t, vals)
		return nil, nil, fmt.Errorf("fill ipv6 table: %w", err)
	}
	return t, vals, nil
}

// abandonTable6 drops a prepared table that is not to be used.
func (d *Dataplane) abandonTable6(t *ebpf.Map, vals []xleafRoute) {
	for _, v := range vals {
		d.releaseValue(v)
	}
	if t != nil {
		t.Close()
	}
}

// installTable6 puts a prepared table (nil: none) in place of vrf's IPv6
// table, in one step. Called with d.mu held.
func (d *Dataplane) installTable6(vrf VRFID, t *ebpf.Map, vals []xleafRoute) error {
	if t == nil {
		d.removeTable6(vrf)
		return nil
	}
	old := d.tables6[vrf]
	d.clearFast6(vrf, old) // the trie meanwhile: swapped in one step
	if err := d.objs.VrfTables6.Put(uint32(vrf), t); err != nil {
		d.abandonTable6(t, vals)
		if old != nil {
			d.fillFast6(vrf, old)
		}
		return fmt.Errorf("install ipv6 table: %w", err)
	}
	if old != nil {
		d.releaseTable(d.table6Groups, vrf, old)
	}
	d.tables6[vrf] = t
	for _, v := range vals {
		d.table6Groups.add(vrf, v, 1)
	}
	return d.fillFast6(vrf, t)
}

// removeTable6 takes vrf's IPv6 table out of the program's sight and
// releases it. Called with d.mu held.
func (d *Dataplane) removeTable6(vrf VRFID) {
	t := d.tables6[vrf]
	if t == nil {
		return
	}
	d.clearFast6(vrf, t)
	if err := d.objs.VrfTables6.Delete(uint32(vrf)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return // still in use: keep it, and its references
	}
	d.releaseTable(d.table6Groups, vrf, t)
	delete(d.tables6, vrf)
}

// adoptTables6 reads the IPv6 tables a previous run left, for their
// groups' references.
func (d *Dataplane) adoptTables6() error {
	for id := VRFID(1); id < MaxVRFs; id++ {
		var inner ebpf.MapID
		if err := d.objs.VrfTables6.Lookup(uint32(id), &inner); err != nil {
			continue // no table
		}
		m, err := ebpf.NewMapFromID(inner)
		if err != nil {
			return fmt.Errorf("vrf %d ipv6 table: %w", id, err)
		}
		d.tables6[id] = m
		if err := eachEntry(m, func(_ xleafLpm6Key, r xleafRoute) error {
			if RouteKind(r.Kind) == RouteRemote {
				d.groups.refs[r.Target]++
				d.table6Groups.add(id, r, 1)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("vrf %d ipv6 table: %w", id, err)
		}
		if err := d.fillFast6(id, m); err != nil {
			return fmt.Errorf("vrf %d: %w", id, err)
		}
	}
	return nil
}

// checkHost is an address a host on an access port may have: IPv4, or an
// IPv6 address that is routed (not link-local, multicast or unspecified:
// the program never looks those up).
func checkHost(a netip.Addr) error {
	if a.Is4() {
		return nil
	}
	if !a.Is6() || a.Is4In6() || a.Zone() != "" || !a.IsGlobalUnicast() {
		return fmt.Errorf("neighbor %v: not an IPv4 or routed IPv6 address", a)
	}
	return nil
}

func neigh6Key(vrf VRFID, a netip.Addr) xleafNeigh6Key {
	return xleafNeigh6Key{Vrf: uint32(vrf), Addr: a.As16()}
}
