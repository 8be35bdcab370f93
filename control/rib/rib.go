// Package rib keeps a routing table per VRF: EVPN paths imported by route
// target (leaking when a path's targets match several VRFs), connected
// subnets, aggregates, best path and ECMP; it programs the data path with
// the difference after every change.
package rib

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"iter"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xleaf/xleaf/dataplane"
)

// Dataplane is what the RIB programs; *dataplane.Dataplane implements it.
type Dataplane interface {
	SetRoute(vrf dataplane.VRFID, r dataplane.Route) error
	DeleteRoute(vrf dataplane.VRFID, p netip.Prefix) error
}

// RT is a route target: ASN:Value (two- or four-octet AS), Addr:Value
// (IPv4-address-specific), or with Any, *:Value.
type RT struct {
	Any   bool
	Addr  netip.Addr // the IPv4-address form's administrator; ASN is 0
	ASN   uint32
	Value uint32
}

func (rt RT) String() string {
	switch {
	case rt.Any:
		return fmt.Sprintf("0:%d", rt.Value) // as NVUE shows ANY
	case rt.Addr.IsValid():
		return fmt.Sprintf("%s:%d", rt.Addr, rt.Value)
	}
	return fmt.Sprintf("%d:%d", rt.ASN, rt.Value)
}

// Matches says whether an import target accepts a route's target. ANY:N
// accepts N under any administrator, the IPv4-address form's too, as FRR
// does.
func (imp RT) Matches(route RT) bool {
	return imp.Value == route.Value && (imp.Any || imp.ASN == route.ASN && imp.Addr == route.Addr)
}

// VRF is what the RIB needs of a tenant VRF.
type VRF struct {
	Name       string
	ID         dataplane.VRFID
	VNI        uint32
	ASN        uint32
	Imports    []RT // empty: auto, ANY:VNI
	Exports    []RT // empty: auto, ASN:VNI
	Aggregates []netip.Prefix
}

// ExportRTs are the VRF's route targets: the configured ones, or ASN:VNI
// as the guide shows it (auto).
func (v *VRF) ExportRTs() []RT {
	if len(v.Exports) == 0 {
		return []RT{{ASN: v.ASN, Value: v.VNI}}
	}
	return v.Exports
}

// ImportRTs are the explicit targets, or ANY:VNI when none are set.
func (v *VRF) ImportRTs() []RT {
	if len(v.Imports) == 0 {
		return []RT{{Any: true, Value: v.VNI}}
	}
	return v.Imports
}

func (v *VRF) imports(rts []RT) bool {
	for _, imp := range v.ImportRTs() {
		for _, rt := range rts {
			if imp.Matches(rt) {
				return true
			}
		}
	}
	return false
}

// Origin is BGP's ORIGIN attribute.
type Origin uint8

const (
	OriginIGP        Origin = 0
	OriginEGP        Origin = 1
	OriginIncomplete Origin = 2
)

// Path is one EVPN route from a peer (Type-5, or a Type-2 MAC/IP route
// with an L3VNI, which is a /32 host route here). Its attributes are
// shared with every path that has the same (a million routes from a few
// leafs have a few sets): a path is its prefix, a Type-2 route's MAC, and
// its set.
type Path struct {
	Prefix  netip.Prefix
	HostMAC net.HardwareAddr // Type-2: the host's MAC
	*Attrs
}

// Attrs are what paths share: the peer, the route distinguisher (of the
// NLRI, but one per VRF of a leaf) and the path attributes. Shared: never
// changed once a path holds them.
type Attrs struct {
	Peer      string // who sent it
	RD        string
	VTEP      netip.Addr
	VNI       uint32 // the label: the L3VNI to encapsulate with
	RouterMAC net.HardwareAddr
	RTs       []RT
	ASPath    []uint32
	Origin    Origin
	LocalPref uint32 // 0 = default 100
	Type2     bool
}

// Key identifies a route for replacement and withdrawal: its NLRI. The
// speaker hands over one best path per NLRI; a new one replaces the last,
// whichever session it came over (two sessions to one spine carry the
// same route, and the best may move between them before both withdraw).
type Key struct {
	RD     string
	Prefix netip.Prefix
	Type2  bool
	MAC    string // Type-2: the host's MAC is part of the NLRI
}

func (p *Path) Key() Key { return KeyOf(p.RD, p.Prefix, p.Type2, p.HostMAC) }

// KeyOf is the key of a route with these NLRI fields (a withdrawal names
// a route by them alone).
func KeyOf(rd string, prefix netip.Prefix, type2 bool, hostMAC net.HardwareAddr) Key {
	return Key{RD: rd, Prefix: prefix, Type2: type2, MAC: hostMAC.String()}
}

func (p *Path) localPref() uint32 {
	if p.LocalPref == 0 {
		return 100
	}
	return p.LocalPref
}

// Source says where a candidate route of a VRF comes from; the order is
// the preference, as zebra's administrative distance orders them.
type Source uint8

const (
	SourceLocal     Source = iota // the router's own address on a port: to the kernel
	SourceConnected               // an access port's subnet (this VRF or leaked)
	SourceAggregate               // blackhole while more-specifics exist
	SourceBGP                     // EVPN paths, best and multipath
)

// Entry is a VRF's selected route for one prefix, as installed.
type Entry struct {
	Prefix  netip.Prefix
	Source  Source
	HostVRF string  // SourceConnected: whose port
	Paths   []*Path // SourceBGP: the multipath set, best first
	All     []*Path // SourceBGP: every candidate path, for show bgp

	Installed bool      // the data path holds it (FIB)
	Since     time.Time // when it was installed
}

// table is one VRF's state.
type table struct {
	vrf *VRF
	// routes holds by prefix both the BGP candidates and what the data
	// path holds: a route is one lookup of one map. (Two maps were two
	// cache misses a route and VRF in a table of a million, far bigger
	// than any cache.) A prefix with neither has no entry.
	routes    map[netip.Prefix]prefixState
	held      int                     // installed routes
	connected map[netip.Prefix]string // prefix -> VRF owning the port
	local     map[netip.Prefix]bool   // our own addresses (/32) on this VRF's ports
	aggActive map[netip.Prefix]bool
	stale     map[netip.Prefix]bool // adopted from a previous run, not confirmed yet
}

// prefixState is what a VRF holds for one prefix.
type prefixState struct {
	paths candidates // BGP candidates, one per NLRI (Key)
	in    installed  // what the data path holds, if in.held
}

// candidates are a prefix's BGP paths. Nearly always there is one (two
// where a route is learned twice), so the first is held in place and the
// rest, if any, beside: a slice was 8 bytes more in every entry of a
// table and an allocation of its own.
type candidates struct {
	first *Path
	rest  *[]*Path // beyond the first; nil if none
}

func (c candidates) len() int {
	switch {
	case c.first == nil:
		return 0
	case c.rest == nil:
		return 1
	}
	return 1 + len(*c.rest)
}

// all lists the candidates, the first first.
func (c candidates) all() iter.Seq[*Path] {
	return func(yield func(*Path) bool) {
		if c.first == nil || !yield(c.first) || c.rest == nil {
			return
		}
		for _, p := range *c.rest {
			if !yield(p) {
				return
			}
		}
	}
}

// add adds p, which has no key of the candidates (callers remove it
// first).
func (c *candidates) add(p *Path) {
	switch {
	case c.first == nil:
		c.first = p
	case c.rest == nil:
		c.rest = &[]*Path{p}
	default:
		rest := append(slices.Clip(*c.rest), p) // a copy: states are values
		c.rest = &rest
	}
}

// remove drops the candidate with key k; it reports whether there was
// one.
func (c *candidates) remove(k Key) bool {
	if c.first == nil {
		return false
	}
	if c.first.Key() == k {
		c.first = nil
		if c.rest != nil {
			c.first = (*c.rest)[0]
			c.dropRest(0)
		}
		return true
	}
	if c.rest == nil {
		return false
	}
	i := slices.IndexFunc(*c.rest, func(p *Path) bool { return p.Key() == k })
	if i < 0 {
		return false
	}
	c.dropRest(i)
	return true
}

func (c *candidates) dropRest(i int) {
	if len(*c.rest) == 1 {
		c.rest = nil
		return
	}
	rest := slices.Delete(slices.Clone(*c.rest), i, i+1) // a copy: states are values
	c.rest = &rest
}

// paths are the BGP candidates for p.
func (t *table) paths(p netip.Prefix) candidates { return t.routes[p].paths }

// installedAt is what the data path holds for p.
func (t *table) installedAt(p netip.Prefix) (installed, bool) {
	in := t.routes[p].in
	return in, in.held
}

// put stores s as p's state (none when it holds nothing).
func (t *table) put(p netip.Prefix, s prefixState) {
	if s.paths.first == nil && !s.in.held {
		delete(t.routes, p)
	} else {
		t.routes[p] = s
	}
}

// installed is what the data path holds for a prefix, compactly (a table
// of a million routes keeps a million): the route without its prefix (the
// map's key), its remotes shared with every route of the same set, and
// when it last changed.
type installed struct {
	since   uint32 // unix seconds
	remotes uint32 // its remote set, in the RIB's sets
	hostVRF dataplane.VRFID
	kind    dataplane.RouteKind
	held    bool
}

// route is the data path's route that in records for p.
func (r *RIB) route(in installed, p netip.Prefix) dataplane.Route {
	return dataplane.Route{Prefix: p, Kind: in.kind, HostVRF: in.hostVRF, Remotes: r.sets[in.remotes].rs}
}

func (in installed) sinceTime() time.Time { return time.Unix(int64(in.since), 0) }

// unixSeconds is now as installed records it: to the second, as show
// route's age is, in 4 bytes (until 2106), not 8.
func unixSeconds() uint32 { return uint32(time.Now().Unix()) }

// holds are the ways t can hold a route for a prefix, in the order
// allPrefixes lists them: learned by BGP, connected, local, an active
// aggregate, a previous run's not swept yet.
func (t *table) holds() [5]func(netip.Prefix) bool {
	return [5]func(netip.Prefix) bool{
		func(p netip.Prefix) bool { return t.paths(p).first != nil },
		func(p netip.Prefix) bool { _, ok := t.connected[p]; return ok },
		func(p netip.Prefix) bool { return t.local[p] },
		func(p netip.Prefix) bool { return t.aggActive[p] },
		func(p netip.Prefix) bool { return t.stale[p] },
	}
}

// allPrefixes is every prefix t holds a route for, each once (where it is
// first held), without building a set of them.
func (t *table) allPrefixes() iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		holds := t.holds()
		keys := [5]iter.Seq[netip.Prefix]{maps.Keys(t.routes), maps.Keys(t.connected), maps.Keys(t.local), maps.Keys(t.aggActive), maps.Keys(t.stale)}
		for i, ps := range keys {
			for p := range ps {
				if !holds[i](p) || slices.ContainsFunc(holds[:i], func(h func(netip.Prefix) bool) bool { return h(p) }) {
					continue // an inactive aggregate, or listed already
				}
				if !yield(p) {
					return
				}
			}
		}
	}
}

// RIB is the per-VRF routing state. Safe for concurrent use.
type RIB struct {
	mu   sync.Mutex
	dp   Dataplane
	vrfs map[string]*table
	// A received path is held by the candidates of the VRFs that import
	// it, or, if none does, here (a map of a million paths less).
	unimported map[Key]*Path
	connected  map[string][]netip.Prefix        // VRF -> its ports' addresses (192.168.2.1/24)
	hosts      map[string]map[netip.Prefix]bool // VRF -> hosts attached to its ports (/32)
	errs       []error                          // data path errors since the last Err
	// sets interns installed routes' remote sets (a million routes over
	// a few VTEP pairs share a few), an installed route naming its set by
	// index: 0 is the empty set. A set goes when no route uses it.
	sets     []remoteSet
	setIndex map[string]uint32 // by remotesKey
	freeSets []uint32
}

// remoteSet is an interned set of remotes and how many installed routes
// use it.
type remoteSet struct {
	rs   []dataplane.Remote
	refs int
}

// remotesKey names a set of remotes in buf.
func remotesKey(buf []byte, rs []dataplane.Remote) []byte {
	for _, x := range rs {
		a := x.VTEP.As16()
		buf = append(buf, a[:]...)
		buf = binary.LittleEndian.AppendUint32(buf, x.VNI)
		buf = append(append(buf, x.RouterMAC...), byte(len(x.RouterMAC)))
	}
	return buf
}

// acquire returns the index of rs's set, interning a copy of it if new,
// and counts one more route using it.
func (r *RIB) acquire(rs []dataplane.Remote) uint32 {
	if len(rs) == 0 {
		return 0
	}
	var buf [128]byte
	key := remotesKey(buf[:0], rs)
	if i, ok := r.setIndex[string(key)]; ok {
		r.sets[i].refs++
		return i
	}
	rs = slices.Clone(rs)
	for i := range rs {
		rs[i].RouterMAC = slices.Clone(rs[i].RouterMAC)
	}
	var i uint32
	if n := len(r.freeSets); n > 0 {
		i, r.freeSets = r.freeSets[n-1], r.freeSets[:n-1]
	} else {
		i = uint32(len(r.sets))
		r.sets = append(r.sets, remoteSet{})
	}
	r.sets[i] = remoteSet{rs: rs, refs: 1}
	r.setIndex[string(key)] = i
	return i
}

// release counts one route less using set i.
func (r *RIB) release(i uint32) {
	if i == 0 {
		return
	}
	set := &r.sets[i]
	if set.refs--; set.refs == 0 {
		var buf [128]byte
		delete(r.setIndex, string(remotesKey(buf[:0], set.rs)))
		*set = remoteSet{}
		r.freeSets = append(r.freeSets, i)
	}
}

// New returns an empty RIB that programs dp.
func New(dp Dataplane) *RIB {
	return &RIB{dp: dp, vrfs: map[string]*table{}, unimported: map[Key]*Path{}, connected: map[string][]netip.Prefix{},
		hosts: map[string]map[netip.Prefix]bool{}, sets: make([]remoteSet, 1), setIndex: map[string]uint32{}}
}

// SetVRFs replaces the set of VRFs (a configuration apply): routes are
// re-imported and the data path gets only the difference.
func (r *RIB) SetVRFs(vrfs []VRF) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := slices.Collect(r.allPaths()) // as the VRFs imported them so far
	keep := map[string]bool{}
	for i := range vrfs {
		v := vrfs[i]
		keep[v.Name] = true
		t := r.vrfs[v.Name]
		if t == nil {
			t = &table{routes: map[netip.Prefix]prefixState{}, stale: map[netip.Prefix]bool{}}
			r.vrfs[v.Name] = t
		}
		t.vrf = &v
	}
	for name, t := range r.vrfs {
		if !keep[name] {
			// Best effort: the caller may already have removed the VRF,
			// and its table with it, from the data path.
			for p, s := range t.routes {
				if s.in.held {
					r.dp.DeleteRoute(t.vrf.ID, p)
					r.release(s.in.remotes)
				}
			}
			delete(r.vrfs, name)
		}
	}
	for _, t := range r.vrfs {
		r.rebuild(t, all)
	}
	clear(r.unimported)
	ts := slices.Collect(maps.Values(r.vrfs))
	for _, p := range all {
		if !importedBy(ts, p) {
			r.unimported[p.Key()] = p
		}
	}
}

// allPaths is every received path, each once: a path is listed by the
// first VRF (in one order for the walk) whose candidates hold it, or from
// unimported.
func (r *RIB) allPaths() iter.Seq[*Path] {
	return func(yield func(*Path) bool) {
		ts := slices.Collect(maps.Values(r.vrfs))
		for i, t := range ts {
			for _, s := range t.routes {
				for p := range s.paths.all() {
					if importedBy(ts[:i], p) {
						continue // listed with an earlier VRF
					}
					if !yield(p) {
						return
					}
				}
			}
		}
		for _, p := range r.unimported {
			if !yield(p) {
				return
			}
		}
	}
}

// importedBy says whether one of the VRFs of ts imports p.
func importedBy(ts []*table, p *Path) bool {
	return slices.ContainsFunc(ts, func(t *table) bool { return t.vrf.imports(p.RTs) })
}

// rebuild recomputes a whole VRF from all received paths and the ports.
func (r *RIB) rebuild(t *table, all []*Path) {
	// The candidates are imported again; what is installed stays, to be
	// compared with what is selected now.
	for p, s := range t.routes {
		s.paths = candidates{}
		t.put(p, s)
	}
	t.connected = map[netip.Prefix]string{}
	t.local = map[netip.Prefix]bool{}
	t.aggActive = map[netip.Prefix]bool{}
	for _, p := range all {
		if t.vrf.imports(p.RTs) {
			addPath(t, p)
		}
	}
	for owner, prefixes := range r.connected {
		if o := r.vrfs[owner]; o != nil && (owner == t.vrf.Name || t.vrf.imports(o.vrf.ExportRTs())) {
			for _, a := range prefixes {
				t.connected[a.Masked()] = owner
				if owner == t.vrf.Name {
					t.local[hostPrefix(a)] = true
				}
			}
		}
	}
	for owner, hosts := range r.hosts {
		if o := r.vrfs[owner]; o != nil && (owner == t.vrf.Name || t.vrf.imports(o.vrf.ExportRTs())) {
			for p := range hosts {
				t.connected[p] = owner
			}
		}
	}
	for _, agg := range t.vrf.Aggregates {
		t.aggActive[agg] = hasMoreSpecific(t, agg)
	}
	want := map[netip.Prefix]bool{}
	for p := range t.routes { // candidates, and what is installed
		want[p] = true
	}
	for p := range t.connected {
		want[p] = true
	}
	for p := range t.local {
		want[p] = true
	}
	for p, on := range t.aggActive {
		want[p] = want[p] || on
	}
	for p := range want {
		r.refresh(t, p)
	}
}

// addPath adds p to its prefix's candidates, which hold no path with its
// key (callers remove it first).
func addPath(t *table, p *Path) {
	s := t.routes[p.Prefix]
	s.paths.add(p)
	t.routes[p.Prefix] = s
}

func hasMoreSpecific(t *table, agg netip.Prefix) bool {
	for p, s := range t.routes {
		if s.paths.first != nil && p.Bits() > agg.Bits() && agg.Contains(p.Addr()) {
			return true
		}
	}
	for p := range t.connected {
		if p.Bits() > agg.Bits() && agg.Contains(p.Addr()) {
			return true
		}
	}
	// Adopted routes count until the sweep: after a restart the aggregate
	// is advertised again before BGP has re-learned what it covers.
	for p := range t.stale {
		if p.Bits() > agg.Bits() && agg.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// Update adds or replaces a path from a peer.
func (r *RIB) Update(p *Path) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.place(p.Key(), p)
}

// Withdraw removes a path.
func (r *RIB) Withdraw(k Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.place(k, nil)
}

// WithdrawPeer removes every path a peer sent (session down).
func (r *RIB) WithdrawPeer(peer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []Key
	for p := range r.allPaths() {
		if p.Peer == peer {
			ks = append(ks, p.Key())
		}
	}
	for _, k := range ks {
		r.place(k, nil)
	}
}

// place puts p (nil: nothing) where the path with key k was: among the
// candidates of each VRF that imports it, or, if none does, in
// unimported. Replaced in place and re-selected once: a
// re-advertisement that changes nothing programs nothing, and the
// prefix's state is read and written once per VRF.
func (r *RIB) place(k Key, p *Path) {
	delete(r.unimported, k)
	imported := false
	for _, t := range r.vrfs {
		s := t.routes[k.Prefix]
		had := s.paths.remove(k)
		imports := p != nil && t.vrf.imports(p.RTs)
		if imports {
			s.paths.add(p)
			imported = true
		}
		if had || imports {
			r.refreshState(t, k.Prefix, &s)
			t.put(k.Prefix, s)
			r.aggregates(t, k.Prefix)
		}
	}
	if p != nil && !imported {
		r.unimported[k] = p
	}
}

func hostPrefix(a netip.Prefix) netip.Prefix { return netip.PrefixFrom(a.Addr(), a.Addr().BitLen()) }

// SetConnected replaces the addresses of a VRF's access ports (as
// 192.168.2.1/24): their subnets are delivered locally, in this VRF and
// in every VRF that imports its route target, and the addresses
// themselves go to the kernel.
func (r *RIB) SetConnected(vrf string, prefixes []netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.connected[vrf]
	r.connected[vrf] = slices.Clone(prefixes)
	o := r.vrfs[vrf]
	for _, t := range r.localImporters(vrf) {
		for _, a := range old {
			if p := a.Masked(); t.connected[p] == vrf {
				delete(t.connected, p)
				r.changed(t, p)
			}
			if t == o {
				delete(t.local, hostPrefix(a))
				r.refresh(t, hostPrefix(a))
			}
		}
		for _, a := range prefixes {
			t.connected[a.Masked()] = vrf
			r.changed(t, a.Masked())
			if t == o {
				t.local[hostPrefix(a)] = true
				r.refresh(t, hostPrefix(a))
			}
		}
	}
}

// SetHost adds or removes a host attached to one of a VRF's ports. The
// host is delivered locally as a /32, in this VRF and the VRFs importing
// its route target, ahead of any BGP route for it: another leaf's Type-2
// route for a host we have ourselves must not send its traffic away.
func (r *RIB) SetHost(vrf string, addr netip.Addr, present bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := netip.PrefixFrom(addr, addr.BitLen())
	if r.hosts[vrf] == nil {
		r.hosts[vrf] = map[netip.Prefix]bool{}
	}
	if r.hosts[vrf][p] == present {
		return
	}
	if present {
		r.hosts[vrf][p] = true
	} else {
		delete(r.hosts[vrf], p)
	}
	for _, t := range r.localImporters(vrf) {
		if present {
			t.connected[p] = vrf
		} else if t.connected[p] == vrf && !r.isSubnet(vrf, p) {
			delete(t.connected, p)
		}
		r.changed(t, p)
	}
}

// localImporters are the tables that hold what is attached to owner's
// ports: owner's own, and those importing its route target.
func (r *RIB) localImporters(owner string) []*table {
	o := r.vrfs[owner]
	if o == nil {
		return nil
	}
	var out []*table
	for _, t := range r.vrfs {
		if t == o || t.vrf.imports(o.vrf.ExportRTs()) {
			out = append(out, t)
		}
	}
	return out
}

// isSubnet says whether p is also one of vrf's port subnets.
func (r *RIB) isSubnet(vrf string, p netip.Prefix) bool {
	for _, a := range r.connected[vrf] {
		if a.Masked() == p {
			return true
		}
	}
	return false
}

// changed re-selects prefix p in t and the aggregates that cover it.
func (r *RIB) changed(t *table, p netip.Prefix) {
	r.refresh(t, p)
	r.aggregates(t, p)
}

// aggregates re-selects the aggregates of t that cover p, whose
// candidates or connected subnet just changed.
func (r *RIB) aggregates(t *table, p netip.Prefix) {
	for _, agg := range t.vrf.Aggregates {
		if p.Bits() > agg.Bits() && agg.Contains(p.Addr()) {
			// p itself, when present, keeps the aggregate up without a
			// walk of the table.
			_, conn := t.connected[p]
			if on := t.paths(p).first != nil || conn || hasMoreSpecific(t, agg); on != t.aggActive[agg] {
				t.aggActive[agg] = on
				r.refresh(t, agg)
			}
		}
	}
}

// refresh selects p's route in t and programs the data path if it changed.
func (r *RIB) refresh(t *table, p netip.Prefix) {
	s := t.routes[p]
	r.refreshState(t, p, &s)
	t.put(p, s)
}

// refreshState is refresh on p's state s, which the caller stores.
func (r *RIB) refreshState(t *table, p netip.Prefix, s *prefixState) {
	e, ok := r.selectFrom(t, p, s.paths)
	if !ok {
		if t.stale[p] {
			return // a previous run's route: it waits for the sweep
		}
		r.program(t, p, s, nil)
		return
	}
	route := r.toDataplane(e)
	r.program(t, p, s, &route)
}

// program makes the data path hold route for p (nothing, if nil) and
// records it in s.
func (r *RIB) program(t *table, p netip.Prefix, s *prefixState, route *dataplane.Route) {
	if route != nil {
		delete(t.stale, p) // selected again: no longer stale
	}
	old, had := s.in, s.in.held
	switch {
	case route == nil && had:
		if err := r.dp.DeleteRoute(t.vrf.ID, p); err != nil {
			r.errs = append(r.errs, fmt.Errorf("vrf %s: delete %v: %w", t.vrf.Name, p, err))
		}
		r.release(old.remotes)
		s.in = installed{}
		t.held--
	case route != nil && (!had || !sameRoute(r.route(old, p), *route)):
		if err := r.dp.SetRoute(t.vrf.ID, *route); err != nil {
			r.errs = append(r.errs, fmt.Errorf("vrf %s: install %v: %w", t.vrf.Name, p, err))
			return
		}
		s.in = installed{held: true, kind: route.Kind, hostVRF: route.HostVRF, remotes: r.acquire(route.Remotes), since: unixSeconds()}
		if had {
			r.release(old.remotes)
		} else {
			t.held++
		}
	}
}

// Adopt takes the routes a VRF's table holds from a previous run as
// installed, so that routes selected again are not rewritten and traffic
// keeps flowing while BGP converges. Sweep removes the rest.
func (r *RIB) Adopt(vrf string, routes []dataplane.Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.vrfs[vrf]
	if t == nil {
		return
	}
	now := unixSeconds()
	for _, route := range routes {
		s := t.routes[route.Prefix]
		if s.in.held {
			continue
		}
		s.in = installed{held: true, kind: route.Kind, hostVRF: route.HostVRF, remotes: r.acquire(route.Remotes), since: now}
		t.held++
		t.routes[route.Prefix] = s
		t.stale[route.Prefix] = true
	}
	for _, agg := range t.vrf.Aggregates {
		if on := hasMoreSpecific(t, agg); on != t.aggActive[agg] {
			t.aggActive[agg] = on
			r.refresh(t, agg)
		}
	}
}

// Sweep deletes adopted routes that nothing selected since: what the
// previous run left and this one does not want. It returns how many.
func (r *RIB) Sweep() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.vrfs {
		for p := range t.stale {
			delete(t.stale, p)
			if _, ok := r.selectRoute(t, p); !ok {
				r.changed(t, p) // removes it, and an aggregate it alone kept up
				n++
			}
		}
	}
	return n
}

// Err returns (and forgets) the data path errors since the last call.
func (r *RIB) Err() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := r.errs
	r.errs = nil
	return errs
}

func sameRoute(a, b dataplane.Route) bool {
	return a.Prefix == b.Prefix && a.Kind == b.Kind && a.HostVRF == b.HostVRF &&
		slices.EqualFunc(a.Remotes, b.Remotes, sameRemote)
}

// sameRemote: the same VTEP, VNI and router MAC.
func sameRemote(x, y dataplane.Remote) bool {
	return x.VTEP == y.VTEP && x.VNI == y.VNI && string(x.RouterMAC) == string(y.RouterMAC)
}

func (r *RIB) selectRoute(t *table, p netip.Prefix) (Entry, bool) {
	return r.selectFrom(t, p, t.paths(p))
}

// selectFrom is selectRoute with p's BGP candidates, bgp, in hand.
func (r *RIB) selectFrom(t *table, p netip.Prefix, bgp candidates) (Entry, bool) {
	if t.local[p] {
		return Entry{Prefix: p, Source: SourceLocal, HostVRF: t.vrf.Name}, true
	}
	if owner, ok := t.connected[p]; ok {
		return Entry{Prefix: p, Source: SourceConnected, HostVRF: owner, All: sortedPaths(bgp)}, true
	}
	if t.aggActive[p] {
		return Entry{Prefix: p, Source: SourceAggregate, All: sortedPaths(bgp)}, true
	}
	all := sortedPaths(bgp)
	if len(all) == 0 {
		return Entry{}, false
	}
	multi := []*Path{all[0]}
	for _, q := range all[1:] {
		if len(multi) < dataplane.MaxECMP && equalCost(all[0], q) {
			multi = append(multi, q)
		}
	}
	return Entry{Prefix: p, Source: SourceBGP, Paths: multi, All: all}, true
}

// sortedPaths orders candidates best first: local preference, AS path
// length, origin, then a stable tie-break (VTEP, peer).
func sortedPaths(ps candidates) []*Path {
	out := slices.AppendSeq(make([]*Path, 0, ps.len()), ps.all())
	slices.SortFunc(out, func(a, b *Path) int {
		return cmp.Or(
			cmp.Compare(b.localPref(), a.localPref()),
			cmp.Compare(len(a.ASPath), len(b.ASPath)),
			cmp.Compare(a.Origin, b.Origin),
			a.VTEP.Compare(b.VTEP),
			strings.Compare(a.Peer, b.Peer),
			strings.Compare(a.RD, b.RD),
			cmpBool(a.Type2, b.Type2),
		)
	})
	return out
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// equalCost: BGP multipath with a relaxed AS path (as Cumulus enables):
// paths tie on preference, AS path length and origin.
func equalCost(a, b *Path) bool {
	return a.localPref() == b.localPref() && len(a.ASPath) == len(b.ASPath) && a.Origin == b.Origin
}

func (r *RIB) toDataplane(e Entry) dataplane.Route {
	switch e.Source {
	case SourceLocal:
		return dataplane.Route{Prefix: e.Prefix, Kind: dataplane.RouteReceive}
	case SourceConnected:
		return dataplane.Route{Prefix: e.Prefix, Kind: dataplane.RouteLocal, HostVRF: r.vrfs[e.HostVRF].vrf.ID}
	case SourceAggregate:
		return dataplane.Route{Prefix: e.Prefix, Kind: dataplane.RouteBlackhole}
	}
	rs := make([]dataplane.Remote, 0, len(e.Paths))
	for _, p := range e.Paths {
		if !slices.ContainsFunc(rs, func(x dataplane.Remote) bool {
			return x.VTEP == p.VTEP && x.VNI == p.VNI && string(x.RouterMAC) == string(p.RouterMAC)
		}) {
			rs = append(rs, dataplane.Remote{VTEP: p.VTEP, VNI: p.VNI, RouterMAC: p.RouterMAC})
		}
	}
	return dataplane.Route{Prefix: e.Prefix, Kind: dataplane.RouteRemote, Remotes: rs}
}

// Table returns a VRF's selected routes, sorted by prefix.
func (r *RIB) Table(vrf string) ([]Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.vrfs[vrf]
	if t == nil {
		return nil, fmt.Errorf("vrf %s not configured", vrf)
	}
	var out []Entry
	for p := range t.allPrefixes() {
		if e, ok := r.selectRoute(t, p); ok {
			inst, had := t.installedAt(p)
			e.Installed = had && sameRoute(r.route(inst, p), r.toDataplane(e))
			if had {
				e.Since = inst.sinceTime()
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return out, nil
}

// Counts is the number of installed routes per VRF.
func (r *RIB) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for name, t := range r.vrfs {
		out[name] = t.held
	}
	return out
}

// Export is a route this leaf advertises into EVPN for a VRF.
type Export struct {
	VRF       string
	Prefix    netip.Prefix
	Aggregate bool // else a connected subnet (redistributed: origin incomplete)
}

// Exports lists what each VRF advertises: its ports' subnets and the
// aggregates that have at least one more-specific route.
func (r *RIB) Exports() []Export {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Export
	for name, t := range r.vrfs {
		for _, a := range r.connected[name] {
			out = append(out, Export{VRF: name, Prefix: a.Masked()})
		}
		for agg, on := range t.aggActive {
			if on {
				out = append(out, Export{VRF: name, Prefix: agg, Aggregate: true})
			}
		}
	}
	slices.SortFunc(out, func(a, b Export) int {
		return cmp.Or(strings.Compare(a.VRF, b.VRF), a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return out
}
