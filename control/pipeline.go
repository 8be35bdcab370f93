package control

import (
	"context"
	"encoding/binary"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/rib"
)

// The route pipeline: a route's way from BGP into the data path, and what
// the leaf advertises in return.
//
//	speaker.Watch (GoBGP's watcher: native best paths, decoded)
//	  -> queue (bounded: a full one holds the watcher back)
//	  -> worker: received -> RIB (select, leak, aggregate) -> data path maps
//	  -> exports: the VRFs' Type-5 routes, advertised and withdrawn
//
// IPv4 unicast routes of the fabric leave the pipeline at the queue for
// the underlay part.

// exportSpeaker is what the pipeline needs of BGP.
type exportSpeaker interface {
	Watch(ctx context.Context, fn func(bgp.Event), bad func(error)) error
	Advertise(context.Context, bgp.Type5) error
	Withdraw(context.Context, bgp.Type5) error
}

// exportKey names an export: a prefix of a VRF.
type exportKey struct {
	vrf    string
	prefix string
}

// pipeline owns the RIB and the exports.
type pipeline struct {
	log      *slog.Logger
	rib      *rib.RIB
	dp       RouteTable
	speaker  exportSpeaker
	metrics  *metrics
	leaf     leaf
	underlay func(bgp.Event) // where fabric (IPv4 unicast) routes go
	eor      func(*bgp.EOR)  // a peer's End-of-RIB, after its routes; set before run
	vrfs     atomic.Pointer[vrfSet]

	// sync serialises syncExports (held over its BGP calls); readers of
	// exports take only mu.
	sync    sync.Mutex
	mu      sync.Mutex
	exports map[exportKey]bgp.Type5 // what we originate

	// attrs interns the received paths' attribute sets: a million routes
	// share a handful. Touched by the run loop alone.
	attrs interned
}

// queueLen bounds the routes decoded but not yet in the RIB.
const queueLen = 4096

func newPipeline(log *slog.Logger, dp RouteTable, speaker exportSpeaker, m *metrics, leaf leaf, underlay func(bgp.Event)) *pipeline {
	return &pipeline{log: log, rib: rib.New(dp), dp: dp, speaker: speaker, metrics: m, leaf: leaf, underlay: underlay,
		exports: map[exportKey]bgp.Type5{}}
}

// run starts the pipeline: GoBGP's watcher converts and decodes each best
// path; one worker, in arrival order, selects and programs it. The stages
// overlap on a table load.
func (p *pipeline) run(ctx context.Context) error {
	queue := make(chan bgp.Event, queueLen)
	go func() {
		for {
			select {
			case e := <-queue:
				p.received(ctx, e)
			case <-ctx.Done():
				return
			}
		}
	}()
	enqueue := func(e bgp.Event) {
		if ctx.Err() != nil {
			// Stopping: GoBGP's StopBgp hands its watchers a withdrawal
			// of every received route. The data path and the kernel keep
			// what they have: a graceful restart's peers still send here.
			return
		}
		if e.Underlay != nil {
			p.underlay(e)
			return
		}
		select {
		case queue <- e:
		case <-ctx.Done():
		}
	}
	return p.speaker.Watch(ctx, enqueue, func(error) { p.metrics.bad.Inc() })
}

// received feeds the RIB, which programs the data path, then re-syncs the
// exports (an aggregate may have gained or lost its last contributor).
func (p *pipeline) received(ctx context.Context, e bgp.Event) {
	if ctx.Err() != nil {
		return // stopping: the data path keeps what it has
	}
	if e.EOR != nil {
		if p.eor != nil {
			p.eor(e.EOR)
		}
		return
	}
	start := time.Now()
	if e.Withdraw {
		p.metrics.updates.WithLabelValues("withdraw").Inc()
		p.rib.Withdraw(rib.KeyOf(e.Route.RD, e.Route.Prefix, e.Route.Type2, e.Route.HostMAC))
	} else {
		p.metrics.updates.WithLabelValues("update").Inc()
		p.rib.Update(p.attrs.path(e.Route))
	}
	p.metrics.programNs.Observe(time.Since(start).Seconds())
	p.logErrors()
	p.syncExports(ctx)
}

// interned holds one copy of each attribute set the RIB's paths share (a
// million routes from a few leafs have a few). Emptied when it grows past
// maxInternedAttrs (sets of paths long gone stay until then): paths keep
// what they have.
type interned struct {
	sets map[string]*rib.Attrs
	key  []byte
}

// maxInternedAttrs is far above the sets a fabric has live (one per
// leaf, VRF, session and route type: 500 leafs of 20 VRFs over two
// sessions, with Type-2 routes, make 40k), so that the map is not emptied
// over and over; a set and its key are about 300 bytes, 75 MiB at most.
const maxInternedAttrs = 1 << 18

// path is a received route as the RIB keeps it, its attributes shared
// with every path that has the same.
func (in *interned) path(r *bgp.Route) *rib.Path {
	if in.sets == nil || len(in.sets) > maxInternedAttrs {
		in.sets = map[string]*rib.Attrs{}
	}
	key := in.key[:0]
	key = append(append(key, r.Peer...), 0)
	key = append(append(key, r.RD...), 0)
	a := r.VTEP.As16()
	key = append(key, a[:]...)
	key = binary.LittleEndian.AppendUint32(key, r.VNI)
	key = append(append(key, byte(len(r.RouterMAC))), r.RouterMAC...)
	key = binary.LittleEndian.AppendUint32(key, r.LocalPref)
	key = append(key, byte(r.Origin), boolByte(r.Type2))
	key = binary.LittleEndian.AppendUint32(key, uint32(len(r.RTs)))
	for _, rt := range r.RTs {
		a := rt.Addr.As16()
		key = append(key, a[:]...)
		key = binary.LittleEndian.AppendUint32(key, rt.ASN)
		key = binary.LittleEndian.AppendUint32(key, rt.Value)
	}
	for _, as := range r.ASPath {
		key = binary.LittleEndian.AppendUint32(key, as)
	}
	in.key = key
	attrs, ok := in.sets[string(key)]
	if !ok {
		rts := make([]rib.RT, len(r.RTs))
		for i, rt := range r.RTs {
			rts[i] = rib.RT{Addr: rt.Addr, ASN: rt.ASN, Value: rt.Value}
		}
		attrs = &rib.Attrs{Peer: r.Peer, RD: r.RD, VTEP: r.VTEP, VNI: r.VNI, RouterMAC: r.RouterMAC, RTs: rts,
			ASPath: r.ASPath, Origin: rib.Origin(r.Origin), LocalPref: r.LocalPref, Type2: r.Type2}
		in.sets[string(key)] = attrs
	}
	return &rib.Path{Prefix: r.Prefix, HostMAC: r.HostMAC, Attrs: attrs}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (p *pipeline) logErrors() {
	for _, err := range p.rib.Err() {
		p.log.Error("program data path", "err", err)
	}
}

// setVRFs gives the pipeline the applied VRFs and their subnets.
func (p *pipeline) setVRFs(vs *vrfSet, subnets map[string][]netip.Prefix) {
	p.vrfs.Store(vs)
	p.rib.SetVRFs(vs.rib())
	for _, name := range vs.names() {
		p.rib.SetConnected(name, subnets[name])
	}
	p.logErrors()
}

// adopt takes over the routes the pinned data path still holds from a
// previous run: they keep forwarding, and keep the aggregates over them
// advertised, until sweep.
func (p *pipeline) adopt(ctx context.Context) {
	vs := p.vrfs.Load()
	for _, name := range vs.names() {
		routes, err := p.dp.Routes(vs.byName[name].ID)
		if err != nil {
			p.log.Warn("read data path routes", "vrf", name, "err", err)
			continue
		}
		p.rib.Adopt(name, routes)
	}
	p.logErrors()
	p.syncExports(ctx)
}

// sweep removes the adopted routes nothing re-selected; it returns how
// many.
func (p *pipeline) sweep(ctx context.Context) int {
	n := p.rib.Sweep()
	p.logErrors()
	p.syncExports(ctx)
	return n
}

// syncExports advertises each VRF's exports as Type-5 routes and
// withdraws what is no longer exported.
func (p *pipeline) syncExports(ctx context.Context) {
	p.sync.Lock()
	defer p.sync.Unlock()
	vs := p.vrfs.Load()
	want := map[exportKey]bgp.Type5{}
	for _, e := range p.rib.Exports() {
		v := vs.get(e.VRF)
		if v == nil || e.Prefix.Addr().Is4() && !v.ExportToEVPN || e.Prefix.Addr().Is6() && !v.ExportToEVPN6 {
			continue // that family's route-export to-evpn is off
		}
		want[exportKey{e.VRF, e.Prefix.String()}] = bgp.Type5{RD: v.RD, Prefix: e.Prefix, VTEP: p.leaf.vtep, VNI: v.VNI,
			RouterMAC: p.leaf.rmac, RTs: v.exportRTs(), Incomplete: !e.Aggregate}
	}
	p.mu.Lock()
	have := maps.Clone(p.exports)
	p.mu.Unlock()
	for k, t := range have {
		// A new RD or VNI is a new NLRI: the old one goes. New attributes
		// (targets, origin) replace the route in place, below.
		if w, ok := want[k]; !ok || w.RD != t.RD || w.VNI != t.VNI {
			if err := p.speaker.Withdraw(ctx, t); err != nil {
				p.log.Warn("withdraw", "vrf", k.vrf, "prefix", k.prefix, "err", err)
			}
			p.setExport(k, nil)
		}
	}
	for k, t := range want {
		if h, ok := have[k]; ok && h.RD == t.RD && h.VNI == t.VNI && h.Incomplete == t.Incomplete && slices.Equal(h.RTs, t.RTs) {
			continue
		}
		if err := p.speaker.Advertise(ctx, t); err != nil {
			p.log.Error("advertise", "vrf", k.vrf, "prefix", k.prefix, "err", err)
			continue
		}
		p.setExport(k, &t)
	}
}

func (p *pipeline) setExport(k exportKey, t *bgp.Type5) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t == nil {
		delete(p.exports, k)
	} else {
		p.exports[k] = *t
	}
}

// exported is what vrf originates, by prefix.
func (p *pipeline) exported(vrf string) map[string]bgp.Type5 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bgp.Type5{}
	for k, t := range p.exports {
		if k.vrf == vrf {
			out[k.prefix] = t
		}
	}
	return out
}
