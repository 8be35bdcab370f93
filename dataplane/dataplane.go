package dataplane

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// DefaultPinPath is where the maps (and interface links) live, so that a
// restarted agent finds the tables it left and forwarding never stops.
const DefaultPinPath = "/sys/fs/bpf/xleaf"

// Options configure Open. The zero value is the production default.
type Options struct {
	PinPath      string // default DefaultPinPath; must be on a bpf filesystem
	RoutesPerVRF uint32 // capacity of each VRF's table; default 1<<20
	// Routes6PerVRF is the capacity of each VRF's IPv6 table; default
	// 1<<18.
	Routes6PerVRF uint32
	// FIB6Routes is the capacity of the IPv6 lookup of all VRFs together
	// (fib6; allocated as used); default 1<<20.
	FIB6Routes uint32
	// FIB6MinRoutes: a VRF with fewer IPv6 routes is looked up in its trie,
	// which is faster than the hash's probes while it is small
	// (BenchmarkXDP6). 0: the default; 1: every VRF in the hash.
	FIB6MinRoutes uint32
	// FIBChunks sizes the compiled FIB's pool of 256-entry chunks (1 KiB
	// each, shared by every VRF): one per /16 holding longer routes, one
	// per /24 whose routes make more than 12 runs (which takes 6 routes or more
	// inside it). Default 4096 (4 MiB).
	FIBChunks uint32
	// FIBSmallChunks sizes its pool of range chunks (64 bytes each): one
	// per other /24 holding routes longer than /24. Default 262144
	// (16 MiB).
	FIBSmallChunks uint32
}

// xleafCore is what Open loads: the forwarding program, the maps and the
// program that renews the underlay next hops (the object's lookup programs
// load only when asked for: LookupPrograms).
type xleafCore struct {
	xleafMaps
	Xleaf     *ebpf.Program `ebpf:"xleaf"`
	HopsRenew *ebpf.Program `ebpf:"xleaf_hops_renew"`
}

func (o *xleafCore) Close() error {
	o.Xleaf.Close()
	o.HopsRenew.Close()
	return o.xleafMaps.Close()
}

// Dataplane is the loaded XDP program and its maps. It is safe for
// concurrent use; nothing else in xleaf touches the maps.
type Dataplane struct {
	opts       Options
	objs       xleafCore
	tableSpec  *ebpf.MapSpec // template of a VRF's LPM trie
	table6Spec *ebpf.MapSpec // and of its IPv6 one

	mu           sync.Mutex
	tables       map[VRFID]*ebpf.Map // each VRF's LPM trie (inner map): the record of its routes
	fib          *fib                // what the program looks them up in
	groups       *groups
	leaks        *leakCols
	tableGroups  tableGroups
	tables6      map[VRFID]*ebpf.Map     // each VRF's IPv6 trie: the record (routes6.go)
	lens6        map[VRFID]map[uint8]int // each VRF's IPv6 prefix lengths: routes of each
	fib6Lens     []byte                  // fib6_lens, mmapped
	table6Groups tableGroups
	links        map[string]link.Link
	stopReclaim  chan struct{} // ends reclaim, which closes reclaimDone
	reclaimDone  chan struct{}
	ifindex      map[string]uint32 // attached port -> the index its Ifaces entry is under
	vniIndex     words             // vni_index, mmapped
	hops         *underlayStore
	trace        *tracer // Explain's program, loaded on its first call
	closed       bool    // Close ran: the mmapped maps are gone
}

// ErrClosed is what a change asked of a closed Dataplane returns.
var ErrClosed = errors.New("data path closed")

// lock takes d.mu for a change, unless d is closed (its mmapped maps are
// unmapped: writing them would fault).
func (d *Dataplane) lock() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Open loads the program and opens the pinned maps, creating them on first
// use. State left by an earlier run is kept: tables, groups, neighbours.
func Open(opts Options) (*Dataplane, error) {
	if opts.PinPath == "" {
		opts.PinPath = DefaultPinPath
	}
	if opts.RoutesPerVRF == 0 {
		opts.RoutesPerVRF = 1 << 20
	}
	if opts.Routes6PerVRF == 0 {
		opts.Routes6PerVRF = 1 << 18
	}
	if opts.FIB6Routes == 0 {
		opts.FIB6Routes = 1 << 20
	}
	if opts.FIB6MinRoutes == 0 {
		opts.FIB6MinRoutes = defaultFIB6MinRoutes
	}
	if opts.FIBChunks == 0 {
		opts.FIBChunks = 4096
	}
	if opts.FIBSmallChunks == 0 {
		opts.FIBSmallChunks = 262144
	}
	if err := ensureBPFFS(filepath.Dir(opts.PinPath)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.PinPath, 0o700); err != nil {
		return nil, fmt.Errorf("create pin path: %w", err)
	}
	spec, err := loadXleaf()
	if err != nil {
		return nil, err
	}
	if err := renewCounters(opts.PinPath, spec.Maps[xleafMapStats]); err != nil {
		return nil, err
	}
	spec.Maps[xleafMapFibChunks].MaxEntries = opts.FIBChunks
	spec.Maps[xleafMapFibSmall].MaxEntries = opts.FIBSmallChunks
	spec.Maps[xleafMapFib6].MaxEntries = opts.FIB6Routes
	d := &Dataplane{opts: opts, tableSpec: spec.Maps[xleafMapVrfTableTmpl], table6Spec: spec.Maps[xleafMapVrfTable6Tmpl],
		tables: map[VRFID]*ebpf.Map{}, tables6: map[VRFID]*ebpf.Map{}, lens6: map[VRFID]map[uint8]int{}, groups: newGroups(), tableGroups: tableGroups{},
		table6Groups: tableGroups{}, links: map[string]link.Link{}, ifindex: map[string]uint32{}}
	err = spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}})
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		return nil, fmt.Errorf("load xdp program: maps pinned under %s are from an incompatible xleaf build "+
			"(remove them with 'xleafd --reset-dataplane' to start empty): %w", opts.PinPath, err)
	}
	if err != nil {
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	if d.fib, err = newFIB(d.objs.FibVrfs, d.objs.FibChunks, d.objs.FibSmall, spec.Maps[xleafMapFibL1Tmpl]); err != nil {
		d.objs.Close()
		return nil, err
	}
	if d.vniIndex, err = mmapMap(d.objs.VniIndex, vniIndexSize*8); err != nil {
		d.fib.close()
		d.objs.Close()
		return nil, err
	}
	if d.hops, err = newUnderlayStore(d.objs.UnderlayIndex, d.objs.UnderlaySlots, d.objs.UnderlayHops, d.fib.waitGrace); err != nil {
		unix.Munmap(d.vniIndex)
		d.fib.close()
		d.objs.Close()
		return nil, err
	}
	if d.leaks, err = newLeakCols(d.objs.LeakVnis, d.objs.Stats); err != nil {
		d.hops.close()
		unix.Munmap(d.vniIndex)
		d.fib.close()
		d.objs.Close()
		return nil, err
	}
	if d.fib6Lens, err = mmapMap(d.objs.Fib6Lens, MaxVRFs*8); err != nil {
		d.hops.close()
		unix.Munmap(d.vniIndex)
		d.fib.close()
		d.objs.Close()
		return nil, err
	}
	d.stopReclaim, d.reclaimDone = make(chan struct{}), make(chan struct{})
	go d.reclaim()
	if err := d.adopt(); err != nil {
		d.Close()
		return nil, fmt.Errorf("read pinned state: %w", err)
	}
	return d, nil
}

// reclaim makes freed FIB chunks reusable in the background, a grace
// period (about 9 ms) every reclaimInterval while there are any, so that a
// route change seldom has to wait for one itself.
func (d *Dataplane) reclaim() {
	defer close(d.reclaimDone)
	tick := time.NewTicker(reclaimInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.stopReclaim:
			return
		case <-tick.C:
		}
		d.mu.Lock()
		big, small, gen := d.fib.pendingNow()
		d.mu.Unlock()
		if big+small == 0 || d.fib.waitGrace() != nil {
			continue
		}
		d.mu.Lock()
		d.fib.reclaimed(big, small, gen)
		d.mu.Unlock()
	}
}

const reclaimInterval = 100 * time.Millisecond

// renewCounters unpins counters an earlier build left with another
// layout (fewer counter slots): the only map whose layout changed across
// builds, and one that forwarding does not need. The program still
// attached keeps counting into the old map until the new one is swapped
// in; the counters start again from zero. Any other incompatible map
// still stops Open (ErrMapIncompatible).
func renewCounters(pinPath string, spec *ebpf.MapSpec) error {
	pin := filepath.Join(pinPath, xleafMapStats)
	old, err := ebpf.LoadPinnedMap(pin, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil // none yet, or unreadable: LoadAndAssign decides
	}
	defer old.Close()
	info, err := old.Info()
	if err != nil || info.MaxEntries == spec.MaxEntries {
		return nil
	}
	if err := os.Remove(pin); err != nil {
		return fmt.Errorf("renew counters of an earlier build (%d entries, now %d): %w", info.MaxEntries, spec.MaxEntries, err)
	}
	return nil
}

// ErrPinsWouldDie is Open's answer when the pins would live on a bpf
// filesystem that goes when xleafd does.
var ErrPinsWouldDie = errors.New("pinned state would not outlive xleafd")

// ensureBPFFS mounts a bpf filesystem on dir if it has none, as a leaf's
// boot would, but only in the host's mount namespace. In a mount
// namespace of its own (ip netns exec, unshare -m) a bpffs it mounted
// would go with the process, and the pinned tables and XDP links with it:
// a restart would stop forwarding. There it refuses and says what to do.
func ensureBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if lasting, why := mountOutlivesUs(dir); !lasting {
		return fmt.Errorf("%s is not on a bpf filesystem, and %s: one mounted there would go with xleafd, "+
			"and its pinned tables and XDP links with it. Mount one that outlives xleafd from the host "+
			"(mkdir -p %s && mount -t bpf bpf %s) and keep --pin-path under it, or start xleafd with "+
			"'nsenter --net=/run/netns/NAME' (the host's mounts) instead of 'ip netns exec': %w",
			dir, why, dir, dir, ErrPinsWouldDie)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpf filesystem on %s: %w", dir, err)
	}
	return nil
}

// initMountNSIno is the inode of the initial mount namespace's nsfs
// file (PROC_MNT_INIT_INO; Linux 6.x).
const initMountNSIno = 0xEFFFFFF8

// mountOutlivesUs says whether a filesystem mounted on dir would stay
// after this process ends: it does in the host's mount namespace (the
// initial one, or PID 1's), or where the mount under dir propagates to
// another namespace (shared). Otherwise why says what is wrong.
func mountOutlivesUs(dir string) (bool, string) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &self); err != nil {
		return false, fmt.Sprintf("its mount namespace cannot be read (%v)", err)
	}
	if self.Ino == initMountNSIno {
		return true, ""
	}
	var init unix.Stat_t
	if err := unix.Stat("/proc/1/ns/mnt", &init); err == nil && init.Ino == self.Ino && init.Dev == self.Dev {
		return true, ""
	}
	if shared, err := mountShared(dir); err == nil && shared {
		return true, ""
	}
	return false, "this process has a mount namespace of its own (ip netns exec, unshare -m) whose mounts do not propagate"
}

// mountShared says whether the mount holding dir is in a shared peer
// group (/proc/self/mountinfo's optional "shared:N"), so that a mount
// made on dir is seen by the other namespaces in that group.
func mountShared(dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	best, shared := "", false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		mp := f[4]
		if !(dir == mp || mp == "/" || strings.HasPrefix(dir, mp+"/")) || len(mp) < len(best) {
			continue
		}
		best, shared = mp, false
		for _, opt := range f[6:] {
			if opt == "-" {
				break
			}
			shared = shared || strings.HasPrefix(opt, "shared:")
		}
	}
	return shared, nil
}

// adopt rebuilds the Go-side bookkeeping from pinned maps after a restart:
// the VRF tables and the groups' reference counts. Groups that no route
// uses any more are cleared.
func (d *Dataplane) adopt() error {
	var index uint32
	var ifc xleafIface
	it := d.objs.Ifaces.Iterate()
	for it.Next(&index, &ifc) {
		if index < IfaceIndexMax {
			if err := d.objs.IfaceIndex.Put(index, ifc); err != nil {
				return fmt.Errorf("interface %d: %w", index, err)
			}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	if err := d.indexVNIs(nil); err != nil {
		return err
	}
	var nhg xleafNhg
	for id := uint32(1); id < MaxNHGs; id++ {
		if err := d.objs.Nhgs.Lookup(id, &nhg); err != nil {
			return fmt.Errorf("nexthop group %d: %w", id, err)
		}
		if nhg.Members > 0 {
			d.groups.adopt(id, groupKey(&nhg))
			if err := d.adoptCols(id, &nhg); err != nil {
				return err
			}
		}
	}
	for id := VRFID(1); id < MaxVRFs; id++ {
		var inner ebpf.MapID
		if err := d.objs.VrfTables.Lookup(uint32(id), &inner); err != nil {
			continue // no table
		}
		m, err := ebpf.NewMapFromID(inner)
		if err != nil {
			return fmt.Errorf("vrf %d table: %w", id, err)
		}
		d.tables[id] = m
		var keys []xleafLpmKey
		var vals []xleafRoute
		if err := eachEntry(m, func(k xleafLpmKey, r xleafRoute) error {
			if RouteKind(r.Kind) == RouteRemote {
				d.groups.refs[r.Target]++
				d.tableGroups.add(id, r, 1)
			}
			keys, vals = append(keys, k), append(vals, r)
			return nil
		}); err != nil {
			return fmt.Errorf("vrf %d table: %w", id, err)
		}
		if err := d.compile(id, keys, vals); err != nil {
			return err
		}
	}
	if err := d.adoptTables6(); err != nil {
		return err
	}
	for id := uint32(1); id < d.groups.next; id++ {
		if _, used := d.groups.keys[id]; !used {
			d.groups.free = append(d.groups.free, id)
		} else if d.groups.refs[id] == 0 {
			d.groups.refs[id] = 1
			d.releaseGroup(id, 1)
		}
	}
	return nil
}

// Close releases the program and map handles. Pinned maps and attached
// interfaces stay: packets keep flowing until the next Open takes over.
func (d *Dataplane) Close() error {
	if d.stopReclaim != nil {
		close(d.stopReclaim)
		<-d.reclaimDone
		d.stopReclaim = nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	for _, l := range d.links {
		l.Close()
	}
	for _, t := range d.tables {
		t.Close()
	}
	for _, t := range d.tables6 {
		t.Close()
	}
	if d.fib != nil {
		d.fib.close()
	}
	if d.vniIndex != nil {
		unix.Munmap(d.vniIndex)
	}
	if d.fib6Lens != nil {
		unix.Munmap(d.fib6Lens)
	}
	if d.hops != nil {
		d.hops.close()
	}
	if d.trace != nil {
		d.trace.mu.Lock() // after a running Explain
		d.trace.close()
		d.trace.mu.Unlock()
	}
	return d.objs.Close()
}

// Remove detaches every interface and deletes all pinned state under
// pinPath. The next Open starts empty.
func Remove(pinPath string) error {
	if pinPath == "" {
		pinPath = DefaultPinPath
	}
	if err := os.RemoveAll(pinPath); err != nil {
		return fmt.Errorf("remove %s: %w", pinPath, err)
	}
	return nil
}

// Program is the XDP program, for tests and benchmarks.
func (d *Dataplane) Program() *ebpf.Program { return d.objs.Xleaf }

// SetVRF adds or updates a VRF.
func (d *Dataplane) SetVRF(v VRF) error {
	if err := checkVRF(v.ID); err != nil {
		return err
	}
	if v.VNI == 0 || v.VNI >= 1<<24 {
		return fmt.Errorf("vrf %d: vni %d out of range 1..16777215", v.ID, v.VNI)
	}
	if err := checkIPv4(v.VTEP, "vrf local vtep"); err != nil {
		return fmt.Errorf("vrf %d: %w", v.ID, err)
	}
	rmac, err := mac6(v.RouterMAC)
	if err != nil {
		return fmt.Errorf("vrf %d: router %w", v.ID, err)
	}
	icmp, icmp6, err := vrfICMP(v.ICMP)
	if err != nil {
		return fmt.Errorf("vrf %d: %w", v.ID, err)
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	var owner uint32
	if err := d.objs.VniVrf.Lookup(v.VNI, &owner); err == nil && VRFID(owner) != v.ID {
		return fmt.Errorf("vrf %d: vni %d already belongs to vrf %d", v.ID, v.VNI, owner)
	}
	var old xleafVrf
	if err := d.objs.Vrfs.Lookup(uint32(v.ID), &old); err != nil {
		return fmt.Errorf("vrf %d: %w", v.ID, err)
	}
	if _, err := d.table(v.ID); err != nil {
		return err
	}
	if err := d.objs.VrfIcmp.Put(uint32(v.ID), icmp); err != nil {
		return fmt.Errorf("vrf %d: icmp errors: %w", v.ID, err)
	}
	if err := d.objs.VrfIcmp6.Put(uint32(v.ID), icmp6); err != nil {
		return fmt.Errorf("vrf %d: icmpv6 errors: %w", v.ID, err)
	}
	if err := d.objs.Vrfs.Put(uint32(v.ID), xleafVrf{Vni: v.VNI, Vtep: be32(v.VTEP), Rmac: rmac}); err != nil {
		return fmt.Errorf("vrf %d: %w", v.ID, err)
	}
	if err := d.objs.VniVrf.Put(v.VNI, uint32(v.ID)); err != nil {
		return fmt.Errorf("vrf %d: map vni %d: %w", v.ID, v.VNI, err)
	}
	if old.Vni != 0 && old.Vni != v.VNI {
		d.objs.VniVrf.Delete(old.Vni)
	}
	if err := d.indexVNIs([]uint32{v.VNI, old.Vni}); err != nil {
		return fmt.Errorf("vrf %d: %w", v.ID, err)
	}
	return nil
}

// DeleteVRF removes a VRF, its VNI and its table.
func (d *Dataplane) DeleteVRF(id VRFID) error {
	if err := checkVRF(id); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	var old xleafVrf
	if err := d.objs.Vrfs.Lookup(uint32(id), &old); err != nil || old.Vni == 0 {
		return fmt.Errorf("vrf %d: %w", id, ErrUnknownVRF)
	}
	d.objs.VniVrf.Delete(old.Vni)
	if err := d.objs.Vrfs.Put(uint32(id), xleafVrf{}); err != nil {
		return fmt.Errorf("vrf %d: %w", id, err)
	}
	if err := d.indexVNIs([]uint32{old.Vni}); err != nil {
		return fmt.Errorf("vrf %d: %w", id, err)
	}
	if err := d.objs.VrfIcmp.Put(uint32(id), xleafVrfIcmp{}); err != nil {
		return fmt.Errorf("vrf %d: icmp errors: %w", id, err)
	}
	if err := d.objs.VrfIcmp6.Put(uint32(id), xleafVrfIcmp6{}); err != nil {
		return fmt.Errorf("vrf %d: icmpv6 errors: %w", id, err)
	}
	if t := d.tables[id]; t != nil {
		if err := d.objs.VrfTables.Delete(uint32(id)); err != nil {
			return fmt.Errorf("vrf %d: remove table: %w", id, err)
		}
		d.releaseTable(d.tableGroups, id, t)
		delete(d.tables, id)
	}
	d.fib.remove(id)
	d.removeTable6(id)
	// Its hosts too: a later VRF with this id must not inherit them.
	var k xleafNeighKey
	var n xleafNeigh
	var stale []xleafNeighKey
	it := d.objs.Neighs.Iterate()
	for it.Next(&k, &n) {
		if VRFID(k.Vrf) == id {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		d.objs.Neighs.Delete(k)
	}
	var k6 xleafNeigh6Key
	var stale6 []xleafNeigh6Key
	it = d.objs.Neighs6.Iterate()
	for it.Next(&k6, &n) {
		if VRFID(k6.Vrf) == id {
			stale6 = append(stale6, k6)
		}
	}
	for _, k := range stale6 {
		d.objs.Neighs6.Delete(k)
	}
	return nil
}

// AddVTEP makes VXLAN to addr ours.
func (d *Dataplane) AddVTEP(addr netip.Addr) error {
	if err := checkIPv4(addr, "vtep"); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if err := d.objs.Vteps.Put(be32(addr), uint32(1)); err != nil {
		return fmt.Errorf("add vtep %v: %w", addr, err)
	}
	if err := d.indexVNIs(nil); err != nil {
		return fmt.Errorf("add vtep %v: %w", addr, err)
	}
	return nil
}

// LocalVTEPs is the addresses VXLAN is terminated at (AddVTEP), in order:
// the outer sources of what the data path encapsulates.
func (d *Dataplane) LocalVTEPs() ([]netip.Addr, error) {
	vteps, err := d.localVTEPs()
	if err != nil {
		return nil, fmt.Errorf("local vteps: %w", err)
	}
	out := make([]netip.Addr, 0, len(vteps))
	for v := range vteps {
		out = append(out, addrFromBe32(v))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// DeleteVTEP stops terminating VXLAN to addr.
func (d *Dataplane) DeleteVTEP(addr netip.Addr) error {
	if err := checkIPv4(addr, "vtep"); err != nil {
		return err
	}
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if err := d.objs.Vteps.Delete(be32(addr)); err != nil {
		return fmt.Errorf("delete vtep %v: %w", addr, err)
	}
	if err := d.indexVNIs(nil); err != nil {
		return fmt.Errorf("delete vtep %v: %w", addr, err)
	}
	return nil
}

// vni_index, the VXLAN packet's way to its VRF without hashing, kept by
// every change of vteps, vni_vrf and vrfs under d.mu, and built whole at
// Open. The program checks whatever a position names against the VRF's
// entry in vrfs, so a position only has to name the right VRF once its
// entry is written, and to stop naming it before the VRF is reused.

// vniIndexSize is vni_index's positions: a VNI's low 16 bits.
const vniIndexSize = 1 << 16

// localVTEPs is the vteps map's addresses.
func (d *Dataplane) localVTEPs() (map[uint32]bool, error) {
	out := map[uint32]bool{}
	var k, v uint32
	it := d.objs.Vteps.Iterate()
	for it.Next(&k, &v) {
		out[k] = true
	}
	return out, it.Err()
}

// indexVNIs sets the positions of vnis (nil: all of them) to the VRF that
// takes each: of the VNIs at a position, the lowest whose VRF terminates at
// a local VTEP (vrfs and vni_vrf agree on it). A position no VNI takes
// names no VRF.
func (d *Dataplane) indexVNIs(vnis []uint32) error {
	vteps, err := d.localVTEPs()
	if err != nil {
		return fmt.Errorf("index vnis: local vteps: %w", err)
	}
	touched := map[uint32]bool{}
	for _, vni := range vnis {
		touched[vni%vniIndexSize] = true
	}
	want := map[uint32][2]uint32{} // position -> VNI, VRF
	var vni, id uint32
	it := d.objs.VniVrf.Iterate()
	for it.Next(&vni, &id) {
		pos := vni % vniIndexSize
		if vnis != nil && !touched[pos] {
			continue
		}
		var v xleafVrf
		if err := d.objs.Vrfs.Lookup(id, &v); err != nil || v.Vni != vni || !vteps[v.Vtep] {
			continue
		}
		if cur, ok := want[pos]; !ok || vni < cur[0] {
			want[pos] = [2]uint32{vni, id}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("index vnis: %w", err)
	}
	if vnis == nil {
		for pos := range uint32(vniIndexSize) {
			touched[pos] = true
		}
	}
	for pos := range touched {
		d.vniIndex.storeValue(int(pos), want[pos][1])
	}
	return nil
}

// SetNeighbor installs or updates a host on an access interface.
func (d *Dataplane) SetNeighbor(vrf VRFID, addr netip.Addr, n Neighbor) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	if err := checkHost(addr); err != nil {
		return err
	}
	mac, err := mac6(n.MAC)
	if err != nil {
		return fmt.Errorf("neighbor %v: %w", addr, err)
	}
	smac, err := mac6(n.SrcMAC)
	if err != nil {
		return fmt.Errorf("neighbor %v: source %w", addr, err)
	}
	if n.Ifindex <= 0 {
		return fmt.Errorf("neighbor %v: bad ifindex %d", addr, n.Ifindex)
	}
	val := xleafNeigh{Ifindex: uint32(n.Ifindex), Mac: mac, Smac: smac}
	if addr.Is6() {
		err = d.objs.Neighs6.Put(neigh6Key(vrf, addr), val)
	} else {
		err = d.objs.Neighs.Put(xleafNeighKey{Vrf: uint32(vrf), Addr: be32(addr)}, val)
	}
	if err != nil {
		return fmt.Errorf("neighbor %v in vrf %d: %w", addr, vrf, err)
	}
	return nil
}

// DeleteNeighbor removes a host.
func (d *Dataplane) DeleteNeighbor(vrf VRFID, addr netip.Addr) error {
	if err := checkHost(addr); err != nil {
		return err
	}
	var err error
	if addr.Is6() {
		err = d.objs.Neighs6.Delete(neigh6Key(vrf, addr))
	} else {
		err = d.objs.Neighs.Delete(xleafNeighKey{Vrf: uint32(vrf), Addr: be32(addr)})
	}
	if err != nil {
		return fmt.Errorf("delete neighbor %v in vrf %d: %w", addr, vrf, err)
	}
	return nil
}

// Neighbors is every host the data path holds, both families.
func (d *Dataplane) Neighbors() (map[ModelNeighborKey]Neighbor, error) {
	out := map[ModelNeighborKey]Neighbor{}
	add := func(vrf uint32, addr netip.Addr, v xleafNeigh) {
		out[ModelNeighborKey{VRFID(vrf), addr}] = Neighbor{Ifindex: int(v.Ifindex),
			MAC: net.HardwareAddr(v.Mac[:]), SrcMAC: net.HardwareAddr(v.Smac[:])}
	}
	var k4 xleafNeighKey
	var v xleafNeigh
	it := d.objs.Neighs.Iterate()
	for it.Next(&k4, &v) {
		add(k4.Vrf, addrFromBe32(k4.Addr), v)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read neighbors: %w", err)
	}
	var k6 xleafNeigh6Key
	it = d.objs.Neighs6.Iterate()
	for it.Next(&k6, &v) {
		add(k6.Vrf, netip.AddrFrom16(k6.Addr), v)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read IPv6 neighbors: %w", err)
	}
	return out, nil
}

// AttachUplink makes ifname a fabric port: VXLAN to our VTEPs is routed.
func (d *Dataplane) AttachUplink(ifname string) error {
	return d.attach(ifname, xleafIface{Role: uint8(xleafIfaceRoleIFACE_UPLINK)})
}

// AttachAccess makes ifname a tenant port of vrf. The kernel's IPv4 and
// IPv6 forwarding are turned off on it: a tenant packet that XDP passes up
// (ARP, ND, IPv6) must never be routed in the default VRF.
func (d *Dataplane) AttachAccess(ifname string, vrf VRFID) error {
	if err := checkVRF(vrf); err != nil {
		return err
	}
	for _, family := range []string{"ipv4", "ipv6"} {
		path := fmt.Sprintf("/proc/sys/net/%s/conf/%s/forwarding", family, ifname)
		if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
			return fmt.Errorf("attach %s: disable kernel %s forwarding: %w", ifname, family, err)
		}
	}
	return d.attach(ifname, xleafIface{Role: uint8(xleafIfaceRoleIFACE_ACCESS), Vrf: uint32(vrf)})
}

// attach makes the data path see ifname as ifc says and runs the program
// on it. It is idempotent, and it heals: called again for a port that was
// deleted and created anew (a new index), or whose MAC changed, it moves
// the port's entry and attaches to the new interface; for a port as it
// was, it changes nothing.
func (d *Dataplane) attach(ifname string, ifc xleafIface) error {
	nif, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("attach %s: %w", ifname, err)
	}
	if ifc.Mac, err = mac6(nif.HardwareAddr); err != nil {
		return fmt.Errorf("attach %s: %w", ifname, err)
	}
	index := uint32(nif.Index)
	d.mu.Lock()
	defer d.mu.Unlock()
	var cur xleafIface
	if err := d.objs.Ifaces.Lookup(index, &cur); err != nil || cur != ifc {
		if err := d.putIface(index, ifc); err != nil {
			return fmt.Errorf("attach %s: %w", ifname, err)
		}
	}
	if old, ok := d.ifindex[ifname]; ok && old != index {
		d.deleteIface(old) // the port's former self
	}
	d.ifindex[ifname] = index
	pin := filepath.Join(d.opts.PinPath, "link_"+ifname)
	l, ours := d.links[ifname], true
	if l == nil {
		if l, err = link.LoadPinnedLink(pin, nil); err != nil {
			l = nil
		}
		ours = false
	}
	if l != nil {
		if info, err := l.Info(); err == nil && info.XDP() != nil && info.XDP().Ifindex == index {
			if ours {
				return nil
			}
			// Left by an earlier run: swap in this program without a gap.
			if err := l.Update(d.objs.Xleaf); err != nil {
				l.Close()
				return fmt.Errorf("attach %s: replace program: %w", ifname, err)
			}
			d.links[ifname] = l
			return nil
		}
		// The interface it ran on is gone (deleted, or created anew).
		l.Unpin()
		l.Close()
		delete(d.links, ifname)
	}
	l, err = link.AttachXDP(link.XDPOptions{Program: d.objs.Xleaf, Interface: nif.Index})
	if err != nil {
		d.deleteIface(index)
		return fmt.Errorf("attach xdp to %s: %w", ifname, err)
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		d.deleteIface(index)
		return fmt.Errorf("attach %s: pin link: %w", ifname, err)
	}
	d.links[ifname] = l
	return nil
}

// putIface writes an interface's entry in ifaces and, if its index is
// low enough, in iface_index. Called with d.mu held.
func (d *Dataplane) putIface(index uint32, ifc xleafIface) error {
	if err := d.objs.Ifaces.Put(index, ifc); err != nil {
		return err
	}
	if index < IfaceIndexMax {
		return d.objs.IfaceIndex.Put(index, ifc)
	}
	return nil
}

// deleteIface takes an interface's entries out, the array's first (a
// packet that misses it asks the hash). Called with d.mu held.
func (d *Dataplane) deleteIface(index uint32) {
	if index < IfaceIndexMax {
		d.objs.IfaceIndex.Put(index, xleafIface{})
	}
	d.objs.Ifaces.Delete(index)
}

// Detach removes the program from ifname; its packets go to the kernel.
func (d *Dataplane) Detach(ifname string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.links[ifname]
	if l == nil {
		var err error
		if l, err = link.LoadPinnedLink(filepath.Join(d.opts.PinPath, "link_"+ifname), nil); err != nil {
			return fmt.Errorf("detach %s: not attached: %w", ifname, err)
		}
	}
	delete(d.links, ifname)
	err := l.Unpin()
	l.Close()
	if index, ok := d.ifindex[ifname]; ok {
		d.deleteIface(index)
		delete(d.ifindex, ifname)
	}
	if nif, e := net.InterfaceByName(ifname); e == nil {
		d.deleteIface(uint32(nif.Index))
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", ifname, err)
	}
	return nil
}

// Attached lists the interfaces the program is attached to: this run's,
// and those an earlier run left pinned.
func (d *Dataplane) Attached() ([]string, error) {
	pins, err := filepath.Glob(filepath.Join(d.opts.PinPath, "link_*"))
	if err != nil {
		return nil, fmt.Errorf("attached: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for _, p := range pins {
		names = append(names, strings.TrimPrefix(filepath.Base(p), "link_"))
	}
	for name := range d.links {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Counters returns every non-zero counter, summed over CPUs.
func (d *Dataplane) Counters() (map[CounterKey]Counter, error) {
	cs, _, err := readStats(d.objs.Stats, nil)
	return cs, err
}

// Leaks returns the leak matrix's non-zero cells, summed over CPUs.
func (d *Dataplane) Leaks() (map[Leak]Counter, error) {
	_, ls, err := readStats(d.objs.Stats, d.objs.LeakVnis)
	return ls, err
}

// SuppressedEvents is how many miss events the program did not send
// because its CPU's budget (64 at once, 1000 a second) was spent; the
// packets themselves are counted under their drop reason.
func (d *Dataplane) SuppressedEvents() (uint64, error) {
	var per []xleafEventBudget
	if err := d.objs.EventBudget.Lookup(uint32(0), &per); err != nil {
		return 0, fmt.Errorf("read event budget: %w", err)
	}
	var n uint64
	for _, b := range per {
		n += b.Suppressed
	}
	return n, nil
}

// ReadCounters reads the counters of a running data path from its pinned
// map, without loading anything: for show commands and monitoring.
func ReadCounters(pinPath string) (map[CounterKey]Counter, error) {
	cs, _, err := ReadStats(pinPath)
	return cs, err
}

// ReadStats is ReadCounters, with the leak matrix.
func ReadStats(pinPath string) (map[CounterKey]Counter, map[Leak]Counter, error) {
	if pinPath == "" {
		pinPath = DefaultPinPath
	}
	ro := &ebpf.LoadPinOptions{ReadOnly: true}
	stats, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, xleafMapStats), ro)
	if err != nil {
		return nil, nil, fmt.Errorf("open counters under %s (is xleafd running?): %w", pinPath, err)
	}
	defer stats.Close()
	vnis, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, xleafMapLeakVnis), ro)
	if err != nil {
		return nil, nil, fmt.Errorf("open leak matrix columns under %s: %w", pinPath, err)
	}
	defer vnis.Close()
	return readStats(stats, vnis)
}

// VRFs lists the configured VRFs, so a restarted agent keeps their ids.
func (d *Dataplane) VRFs() ([]VRF, error) {
	var out []VRF
	var v xleafVrf
	var icmp xleafVrfIcmp
	var icmp6 xleafVrfIcmp6
	for id := uint32(1); id < MaxVRFs; id++ {
		if err := d.objs.Vrfs.Lookup(id, &v); err != nil {
			return nil, fmt.Errorf("vrf %d: %w", id, err)
		}
		if v.Vni == 0 {
			continue
		}
		if err := d.objs.VrfIcmp6.Lookup(id, &icmp6); err != nil {
			return nil, fmt.Errorf("vrf %d: icmpv6 errors: %w", id, err)
		}
		if err := d.objs.VrfIcmp.Lookup(id, &icmp); err != nil {
			return nil, fmt.Errorf("vrf %d: icmp errors: %w", id, err)
		}
		out = append(out, VRF{ID: VRFID(id), VNI: v.Vni, RouterMAC: net.HardwareAddr(bytes.Clone(v.Rmac[:])),
			VTEP: addrFromBe32(v.Vtep), ICMP: icmpErrors(icmp, icmp6)})
	}
	return out, nil
}

// vrfICMP is e as the data path keeps it: a rate becomes the nanoseconds
// a CPU waits for each token.
func vrfICMP(e ICMPErrors) (xleafVrfIcmp, xleafVrfIcmp6, error) {
	if !e.On() {
		return xleafVrfIcmp{}, xleafVrfIcmp6{}, nil
	}
	v := xleafVrfIcmp{Burst: e.Burst, NsPerToken: uint64(time.Second) / uint64(e.PerSecond)}
	var v6 xleafVrfIcmp6
	if e.Source.IsValid() {
		if err := checkIPv4(e.Source, "icmp error source"); err != nil {
			return v, v6, err
		}
		v.Src = be32(e.Source)
	}
	if e.Source6.IsValid() {
		if a := e.Source6; !a.Is6() || a.Is4In6() || a.Zone() != "" || !a.IsGlobalUnicast() {
			return v, v6, fmt.Errorf("icmpv6 error source %v: not a routed IPv6 address", a)
		}
		v6.Src = e.Source6.As16()
	}
	return v, v6, nil
}

func icmpErrors(v xleafVrfIcmp, v6 xleafVrfIcmp6) ICMPErrors {
	if v.NsPerToken == 0 {
		return ICMPErrors{}
	}
	e := ICMPErrors{PerSecond: uint32(uint64(time.Second) / v.NsPerToken), Burst: v.Burst}
	if v.Src != 0 {
		e.Source = addrFromBe32(v.Src)
	}
	if v6.Src != ([16]uint8{}) {
		e.Source6 = netip.AddrFrom16(v6.Src)
	}
	return e
}

// FIBPool is one of the compiled FIB's chunk pools: its chunks' size,
// how many are in use, and how many it has (--fib-chunks,
// --fib-small-chunks). A full pool refuses new routes.
type FIBPool struct {
	ChunkBytes  int
	Used, Total int
}

// FIBPools are the 1 KiB pool and the 64-byte one.
func (d *Dataplane) FIBPools() []FIBPool {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ps []FIBPool
	for _, p := range []*fibPool{d.fib.big, d.fib.small} {
		ps = append(ps, FIBPool{ChunkBytes: p.size * 4, Used: p.inUse(), Total: int(p.m.MaxEntries())})
	}
	return ps
}

// ICMPStats tallies each configured VRF's ICMP errors since the data path
// was created (the tallies are pinned with it).
func (d *Dataplane) ICMPStats() (map[VRFID]ICMPStats, error) {
	d.mu.Lock()
	ids := slices.Sorted(maps.Keys(d.tables))
	d.mu.Unlock()
	out := map[VRFID]ICMPStats{}
	var per []xleafIcmpBudget
	for _, id := range ids {
		if err := d.objs.IcmpBudget.Lookup(uint32(id), &per); err != nil {
			return nil, fmt.Errorf("read icmp tallies of vrf %d: %w", id, err)
		}
		var s ICMPStats
		for _, b := range per {
			s.Sent += b.Sent
			s.Suppressed += b.Suppressed
			s.Unroutable += b.Unroutable
		}
		out[id] = s
	}
	return out, nil
}

// LookupPrograms loads programs that do route lookups alone on vrf's live
// maps, for benchmarks and tests: fib looks addresses up in the compiled
// FIB, lpm in the LPM trie it is built from. A run's packet is the VRF id,
// then 64 IPv4 addresses (all as 32-bit words in network order); each
// address comes back replaced by the FIB entry found for it (0: none).
// The caller closes them.
func (d *Dataplane) LookupPrograms(vrf VRFID) (fib, lpm *ebpf.Program, err error) {
	spec, err := loadXleaf()
	if err != nil {
		return nil, nil, err
	}
	var progs struct {
		FIB *ebpf.Program `ebpf:"xleaf_lookup_fib"`
		LPM *ebpf.Program `ebpf:"xleaf_lookup_lpm"`
	}
	if err := d.lock(); err != nil {
		return nil, nil, err
	}
	defer d.mu.Unlock()
	table := d.tables[vrf]
	if table == nil {
		return nil, nil, fmt.Errorf("vrf %d: no table", vrf)
	}
	spec.Maps[xleafMapFibChunks].MaxEntries = d.opts.FIBChunks
	spec.Maps[xleafMapFibSmall].MaxEntries = d.opts.FIBSmallChunks
	spec.Maps[xleafMapVrfTableTmpl].MaxEntries = table.MaxEntries()
	err = spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		xleafMapFibVrfs: d.objs.FibVrfs, xleafMapFibChunks: d.objs.FibChunks, xleafMapFibSmall: d.objs.FibSmall,
		xleafMapVrfTableTmpl: table,
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("load lookup programs: %w", err)
	}
	return progs.FIB, progs.LPM, nil
}
