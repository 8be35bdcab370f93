package dataplane

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

// Fake is a data path in memory: the tables the Model forwards over, kept
// the way the real one keeps its maps, with the same checks and errors on
// what it is given. The agent's logic is tested against it without root
// and in parallel; the real program, loaded and attached, stays the proof
// (dataplane and test/).
type Fake struct {
	mu        sync.Mutex
	vteps     map[netip.Addr]bool
	vrfs      map[VRFID]VRF
	routes    map[VRFID]map[netip.Prefix]Route
	neigh     map[ModelNeighborKey]Neighbor
	attached  map[string]FakePort
	counters  map[CounterKey]Counter
	events    chan Event
	hops      map[netip.Addr]UnderlayHop
	hopsUntil time.Time     // RenewUnderlayHops
	changed   chan struct{} // RemoteVTEPsChanged
	// RouteLimit makes SetRoute fail as a full table does (0: no limit).
	RouteLimit int
}

// FakePort is how a port is attached to a Fake.
type FakePort struct {
	Uplink bool
	VRF    VRFID // access ports
}

// NewFake returns an empty data path.
func NewFake() *Fake {
	return &Fake{vteps: map[netip.Addr]bool{}, vrfs: map[VRFID]VRF{}, routes: map[VRFID]map[netip.Prefix]Route{},
		neigh: map[ModelNeighborKey]Neighbor{}, attached: map[string]FakePort{}, counters: map[CounterKey]Counter{},
		events: make(chan Event, 64), hops: map[netip.Addr]UnderlayHop{}, changed: make(chan struct{}, 1)}
}

func (f *Fake) SetVRF(v VRF) error {
	if err := checkVRF(v.ID); err != nil {
		return err
	}
	if v.VNI == 0 || v.VNI >= 1<<24 {
		return fmt.Errorf("vrf %d: vni %d out of range 1..16777215", v.ID, v.VNI)
	}
	if err := checkIPv4(v.VTEP, "vrf local vtep"); err != nil {
		return fmt.Errorf("vrf %d: %w", v.ID, err)
	}
	if _, err := mac6(v.RouterMAC); err != nil {
		return fmt.Errorf("vrf %d: router %w", v.ID, err)
	}
	if _, _, err := vrfICMP(v.ICMP); err != nil {
		return fmt.Errorf("vrf %d: %w", v.ID, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, o := range f.vrfs {
		if o.VNI == v.VNI && id != v.ID {
			return fmt.Errorf("vrf %d: vni %d already belongs to vrf %d", v.ID, v.VNI, id)
		}
	}
	f.vrfs[v.ID] = v
	if f.routes[v.ID] == nil {
		f.routes[v.ID] = map[netip.Prefix]Route{}
	}
	return nil
}

func (f *Fake) DeleteVRF(id VRFID) error {
	if err := checkVRF(id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vrfs[id]; !ok {
		return fmt.Errorf("vrf %d: %w", id, ErrUnknownVRF)
	}
	delete(f.vrfs, id)
	delete(f.routes, id)
	for k := range f.neigh {
		if k.VRF == id {
			delete(f.neigh, k)
		}
	}
	f.routesChanged() // its routes' VTEPs may go, as in the real one
	return nil
}

func (f *Fake) VRFs() ([]VRF, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []VRF
	for _, id := range slices.Sorted(maps.Keys(f.vrfs)) {
		out = append(out, f.vrfs[id])
	}
	return out, nil
}

func (f *Fake) AddVTEP(addr netip.Addr) error {
	if err := checkIPv4(addr, "vtep"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vteps[addr] = true
	return nil
}

// LocalVTEPs is the VTEPs AddVTEP kept, in order.
func (f *Fake) LocalVTEPs() ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.SortedFunc(maps.Keys(f.vteps), netip.Addr.Compare), nil
}

func (f *Fake) SetRoute(vrf VRFID, r Route) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	if !r.Prefix.IsValid() || r.Prefix.Addr().Is4In6() || r.Prefix.Addr().Zone() != "" || r.Prefix.Masked() != r.Prefix {
		return fmt.Errorf("vrf %d: route %v: not a masked IPv4 or IPv6 prefix", vrf, r.Prefix)
	}
	if r.Kind == RouteRemote {
		if len(r.Remotes) == 0 || len(r.Remotes) > MaxECMP {
			return fmt.Errorf("vrf %d: route %v: %d members: %w", vrf, r.Prefix, len(r.Remotes), ErrTooManyPaths)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.routes[vrf]
	if t == nil {
		return fmt.Errorf("vrf %d: %w", vrf, ErrUnknownVRF)
	}
	if _, ok := t[r.Prefix]; !ok && f.RouteLimit > 0 && len(t) >= f.RouteLimit {
		return fmt.Errorf("vrf %d: route %v: table full (%d)", vrf, r.Prefix, f.RouteLimit)
	}
	r.Remotes = slices.Clone(r.Remotes)
	t[r.Prefix] = r
	f.routesChanged()
	return nil
}

func (f *Fake) DeleteRoute(vrf VRFID, p netip.Prefix) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.routes[vrf][p]; !ok {
		return fmt.Errorf("vrf %d: route %v: %w", vrf, p, ebpf.ErrKeyNotExist)
	}
	delete(f.routes[vrf], p)
	f.routesChanged()
	return nil
}

func (f *Fake) Routes(vrf VRFID) ([]Route, error) {
	var out []Route
	err := f.EachRoute(vrf, func(r Route) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// EachRoute calls fn with each of vrf's routes, in address order, as
// Dataplane.EachRoute does: without holding the Fake (fn may take locks
// that are held while the Fake is called, as the RIB's is).
func (f *Fake) EachRoute(vrf VRFID, fn func(Route) error) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	f.mu.Lock()
	routes := slices.SortedFunc(maps.Values(f.routes[vrf]), func(a, b Route) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	f.mu.Unlock()
	for _, r := range routes {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Route is vrf's entry for exactly p.
func (f *Fake) Route(vrf VRFID, p netip.Prefix) (Route, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.routes[vrf][p]
	return r, ok
}

func (f *Fake) AttachUplink(ifname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached[ifname] = FakePort{Uplink: true}
	return nil
}

func (f *Fake) AttachAccess(ifname string, vrf VRFID) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached[ifname] = FakePort{VRF: vrf}
	return nil
}

func (f *Fake) Detach(ifname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.attached[ifname]; !ok {
		return fmt.Errorf("detach %s: not attached", ifname)
	}
	delete(f.attached, ifname)
	return nil
}

func (f *Fake) Attached() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.attached)), nil
}

// Ports is every attached port and how.
func (f *Fake) Ports() map[string]FakePort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.attached)
}

func (f *Fake) SetNeighbor(vrf VRFID, addr netip.Addr, n Neighbor) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	if err := checkHost(addr); err != nil {
		return err
	}
	if _, err := mac6(n.MAC); err != nil {
		return fmt.Errorf("neighbor %v: %w", addr, err)
	}
	if _, err := mac6(n.SrcMAC); err != nil {
		return fmt.Errorf("neighbor %v: source %w", addr, err)
	}
	if n.Ifindex <= 0 {
		return fmt.Errorf("neighbor %v: bad ifindex %d", addr, n.Ifindex)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.neigh[ModelNeighborKey{vrf, addr}] = n
	return nil
}

func (f *Fake) DeleteNeighbor(vrf VRFID, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := ModelNeighborKey{vrf, addr}
	if _, ok := f.neigh[k]; !ok {
		return fmt.Errorf("delete neighbor %v in vrf %d: %w", addr, vrf, ebpf.ErrKeyNotExist)
	}
	delete(f.neigh, k)
	return nil
}

// Neighbor is vrf's host entry for addr.
func (f *Fake) Neighbor(vrf VRFID, addr netip.Addr) (Neighbor, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.neigh[ModelNeighborKey{vrf, addr}]
	return n, ok
}

// Neighbors is every host entry.
func (f *Fake) Neighbors() (map[ModelNeighborKey]Neighbor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.neigh), nil
}

// SuppressedEvents is always 0: the fake sends no events.
func (f *Fake) SuppressedEvents() (uint64, error) { return 0, nil }

// FIBPools are none: the fake compiles no FIB.
func (f *Fake) FIBPools() []FIBPool { return nil }

// ICMPStats are all zero: the fake forwards nothing.
func (f *Fake) ICMPStats() (map[VRFID]ICMPStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[VRFID]ICMPStats{}
	for id := range f.vrfs {
		out[id] = ICMPStats{}
	}
	return out, nil
}

func (f *Fake) Counters() (map[CounterKey]Counter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counters), nil
}

// Leaks is empty: the fake forwards nothing.
func (f *Fake) Leaks() (map[Leak]Counter, error) { return map[Leak]Counter{}, nil }

// Count adds to a counter, as the program does for each packet.
func (f *Fake) Count(k CounterKey, packets, bytes uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.counters[k]
	c.Packets, c.Bytes = c.Packets+packets, c.Bytes+bytes
	f.counters[k] = c
}

// Miss reports e to the reader Events returned, as the program does for
// a packet it could not resolve.
func (f *Fake) Miss(e Event) { f.events <- e }

func (f *Fake) Events() (EventReader, error) {
	return &fakeEvents{ch: f.events, done: make(chan struct{})}, nil
}

type fakeEvents struct {
	ch   chan Event
	once sync.Once
	done chan struct{}
}

func (e *fakeEvents) Read() (Event, error) {
	select {
	case ev := <-e.ch:
		return ev, nil
	case <-e.done:
		return Event{}, errors.New("events closed")
	}
}

func (e *fakeEvents) Close() error {
	e.once.Do(func() { close(e.done) })
	return nil
}

// Model is the fake's tables as the reference model forwards over them,
// for the VRFs, routes and hosts (ports and the underlay are the caller's).
func (f *Fake) Model() *Model {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := &Model{VTEPs: maps.Clone(f.vteps), VRFs: maps.Clone(f.vrfs), Routes: map[VRFID][]Route{},
		Neighbors: maps.Clone(f.neigh), Ifaces: map[int]ModelIface{}, Underlay: map[netip.Addr]ModelUnderlay{},
		Hops: maps.Clone(f.hops)}
	if !time.Now().Before(f.hopsUntil) {
		m.Hops = nil
	}
	for id, t := range f.routes {
		m.Routes[id] = slices.Collect(maps.Values(t))
	}
	return m
}

// SetUnderlayHop checks and keeps h as the real one does.
func (f *Fake) SetUnderlayHop(vtep netip.Addr, h UnderlayHop) error {
	if _, err := encodeHop(vtep, h); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hops[vtep] = h
	return nil
}

// RenewUnderlayHops keeps them live for valid.
func (f *Fake) RenewUnderlayHops(valid time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hopsUntil = time.Now().Add(valid)
	return nil
}

// UnderlayHopsLive says whether they were renewed in time.
func (f *Fake) UnderlayHopsLive() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Before(f.hopsUntil), nil
}

// DeleteUnderlayHop forgets vtep's paths.
func (f *Fake) DeleteUnderlayHop(vtep netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.hops, vtep)
	return nil
}

// UnderlayHops is what SetUnderlayHop kept.
func (f *Fake) UnderlayHops() (map[netip.Addr]UnderlayHop, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.hops), nil
}

// UnderlayFallbacks is always 0: the fake forwards nothing.
func (f *Fake) UnderlayFallbacks() (uint64, error) { return 0, nil }

// RemoteVTEPs is every VTEP the routes name.
func (f *Fake) RemoteVTEPs() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[netip.Addr]bool{}
	for _, t := range f.routes {
		for _, r := range t {
			for _, m := range r.Remotes {
				seen[m.VTEP] = true
			}
		}
	}
	out := slices.Collect(maps.Keys(seen))
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// RemoteVTEPsChanged is signalled on every route change.
func (f *Fake) RemoteVTEPsChanged() <-chan struct{} { return f.changed }

func (f *Fake) routesChanged() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}
