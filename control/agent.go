// Package control is xleaf's control agent: it turns the configuration
// into VRFs, ports and BGP sessions, feeds the per-VRF RIB from EVPN, and
// advertises what the leaf owns.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/dataplane"
)

// Dataplane is what the agent needs of the data path; *dataplane.Dataplane
// implements it.
type Dataplane interface {
	rib.Dataplane
	SetVRF(dataplane.VRF) error
	DeleteVRF(dataplane.VRFID) error
	VRFs() ([]dataplane.VRF, error)
	AddVTEP(netip.Addr) error
	AttachUplink(ifname string) error
	AttachAccess(ifname string, vrf dataplane.VRFID) error
	Detach(ifname string) error
	Attached() ([]string, error)
	SetNeighbor(dataplane.VRFID, netip.Addr, dataplane.Neighbor) error
	DeleteNeighbor(dataplane.VRFID, netip.Addr) error
	Counters() (map[dataplane.CounterKey]dataplane.Counter, error)
	Events() (*dataplane.Events, error)
	Routes(dataplane.VRFID) ([]dataplane.Route, error)
}

// Options tune the agent; the zero value is the production default.
type Options struct {
	RouterMAC net.HardwareAddr // default: the system MAC (eth0, else the first port)
	BGPPort   int32            // default 179; -1 to not listen
	// Grace is how long routes found in the data path at start keep
	// forwarding while BGP converges before those not re-learned go.
	Grace time.Duration // default 60s
	GRPC  string        // GoBGP's gRPC API on this address (e.g. 127.0.0.1:50051); "" = off
	Log   *slog.Logger
}

// Agent runs one leaf.
type Agent struct {
	opts Options
	log  *slog.Logger
	dp   Dataplane
	rib  *rib.RIB
	bgp  *bgp.Speaker

	mu         sync.Mutex
	cfg        *config.Config
	vtep       netip.Addr
	rmac       net.HardwareAddr
	ids        map[string]dataplane.VRFID // VRF name -> data path id, stable across restarts
	ports      map[string]string          // attached port -> VRF ("" = uplink)
	peers      map[string]bgp.Peer        // neighbour name -> session
	advertised map[string]bgp.Type5       // VRF/prefix -> what we originate
	hosts      map[string]bgp.Host        // VRF/IP -> attached hosts we advertise
	hostPorts  map[string]string          // VRF/IP -> the port the host is on
	underlay   map[netip.Prefix]bool      // underlay prefixes we advertise
	kernel     *kernelRoutes              // fabric routes we put in the kernel (own lock)
	started    time.Time
	metrics    *metrics
	done       <-chan struct{}               // closed when the agent stops: late BGP events are dropped
	ctx        context.Context               // the agent's lifetime, for what it runs in the background
	announced  map[string]context.CancelFunc // unnumbered ports sending router advertisements: stops them
}

// NewAgent prepares an agent for cfg on dp; Run starts it.
func NewAgent(cfg *config.Config, dp Dataplane, opts Options) (*Agent, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.BGPPort == 0 {
		opts.BGPPort = 179
	}
	if opts.Grace == 0 {
		opts.Grace = 60 * time.Second
	}
	a := &Agent{opts: opts, log: opts.Log, dp: dp, rib: rib.New(dp), ids: map[string]dataplane.VRFID{},
		ports: map[string]string{}, peers: map[string]bgp.Peer{}, advertised: map[string]bgp.Type5{}, hosts: map[string]bgp.Host{}, hostPorts: map[string]string{}, underlay: map[netip.Prefix]bool{}, metrics: newMetrics(),
		announced: map[string]context.CancelFunc{}, ctx: context.Background(), kernel: newKernelRoutes(opts.Log)}
	existing, err := dp.VRFs()
	if err != nil {
		return nil, fmt.Errorf("read data path vrfs: %w", err)
	}
	byVNI := map[uint32]dataplane.VRFID{}
	configured := map[uint32]bool{}
	for _, v := range cfg.VRFs {
		configured[v.VNI] = true
	}
	for _, v := range existing {
		if !configured[v.VNI] {
			// A VRF a previous run had and this configuration does not:
			// it must not keep decapsulating its VNI.
			if err := dp.DeleteVRF(v.ID); err != nil {
				return nil, fmt.Errorf("remove stale vrf %d (vni %d): %w", v.ID, v.VNI, err)
			}
			continue
		}
		byVNI[v.VNI] = v.ID
	}
	for _, name := range sortedVRFNames(cfg) {
		if id, ok := byVNI[cfg.VRFs[name].VNI]; ok {
			a.ids[name] = id
		}
	}
	a.cfg = cfg
	return a, nil
}

func sortedVRFNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.VRFs))
	for name := range cfg.VRFs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// vtepOf is the local VTEP: the loopback's /32.
func vtepOf(cfg *config.Config) (netip.Addr, error) {
	for _, ifc := range cfg.Interfaces {
		if ifc.Type == "loopback" || ifc.Name == "lo" {
			for _, p := range ifc.Addresses {
				if p.Addr().Is4() && p.Bits() == 32 {
					return p.Addr(), nil
				}
			}
		}
	}
	if cfg.RouterID.IsValid() {
		return cfg.RouterID, nil
	}
	return netip.Addr{}, errors.New("no local VTEP: give the loopback an IPv4 /32 (nv set interface lo ip address A/32)")
}

// allocate gives every configured VRF a data path id, keeping old ones.
func (a *Agent) allocate(cfg *config.Config) error {
	used := map[dataplane.VRFID]bool{}
	for _, id := range a.ids {
		used[id] = true
	}
	next := dataplane.VRFID(1)
	for _, name := range sortedVRFNames(cfg) {
		if _, ok := a.ids[name]; ok {
			continue
		}
		for used[next] {
			next++
		}
		if next >= dataplane.MaxVRFs {
			return fmt.Errorf("more than %d VRFs", dataplane.MaxVRFs-1)
		}
		a.ids[name], used[next] = next, true
	}
	return nil
}

// ribVRFs is the configuration as the RIB sees it.
func (a *Agent) ribVRFs(cfg *config.Config) []rib.VRF {
	var out []rib.VRF
	for _, name := range sortedVRFNames(cfg) {
		v := cfg.VRFs[name]
		rv := rib.VRF{Name: name, ID: a.ids[name], VNI: v.VNI, ASN: v.ASN, RouterMAC: a.rmac, VTEP: a.vtep,
			Aggregates: slices.Clone(v.Aggregates)}
		for _, rt := range v.ImportRTs {
			rv.Imports = append(rv.Imports, rib.RT{Any: rt.Any, ASN: rt.ASN, Value: rt.Value})
		}
		out = append(out, rv)
	}
	return out
}

// Run applies the configuration and serves until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	if err := a.start(ctx, cfg); err != nil {
		return err
	}
	<-ctx.Done()
	return a.bgp.Stop()
}

// staleAttachment marks, in Agent.ports, a port found attached at start:
// no configured role (uplink "" or a VRF name) equals it.
const staleAttachment = "\x00left by an earlier run"

func (a *Agent) start(ctx context.Context, cfg *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.started, a.done, a.ctx = time.Now(), ctx.Done(), ctx
	var err error
	if a.vtep, err = vtepOf(cfg); err != nil {
		return err
	}
	if a.rmac = a.opts.RouterMAC; a.rmac == nil {
		if a.rmac, err = systemMAC(cfg); err != nil {
			return err
		}
	}
	if err := a.dp.AddVTEP(a.vtep); err != nil {
		return err
	}
	a.bgp = bgp.New(a.log.With("component", "bgp"), a.opts.GRPC)
	if err := a.bgp.Start(ctx, bgp.Global{ASN: cfg.ASN, RouterID: cfg.RouterID, ListenPort: a.opts.BGPPort}); err != nil {
		return err
	}
	// Ports an earlier run left attached: apply re-attaches those still
	// configured in their configured role, and detaches the rest, so no
	// port keeps forwarding for a VRF or role it no longer has.
	attached, err := a.dp.Attached()
	if err != nil {
		return err
	}
	for _, port := range attached {
		if _, ok := a.ports[port]; !ok {
			a.ports[port] = staleAttachment
		}
	}
	if err := a.apply(ctx, cfg); err != nil {
		return err
	}
	a.adopt(ctx)
	if err := a.watchNeighbors(ctx); err != nil {
		return fmt.Errorf("watch neighbours: %w", err)
	}
	go a.watchKernel(ctx)
	if err := a.resolveMisses(ctx, a.dp); err != nil {
		return fmt.Errorf("read data path misses: %w", err)
	}
	// Two stages: GoBGP's watcher converts each best path and decodes it;
	// one worker, in arrival order, selects and programs it. The stages
	// overlap on a table load. A full queue holds the watcher back.
	events := make(chan bgp.Event, 4096)
	go func() {
		for {
			select {
			case e := <-events:
				a.received(e)
			case <-ctx.Done():
				return
			}
		}
	}()
	enqueue := func(e bgp.Event) {
		select {
		case events <- e:
		case <-ctx.Done():
		}
	}
	return a.bgp.Watch(ctx, enqueue, func(err error) { a.metrics.bad.Inc() })
}

// adopt takes over the routes the pinned data path still holds from a
// previous run: they keep forwarding until the grace period ends, then
// those nothing re-selected are removed. Called with a.mu held.
func (a *Agent) adopt(ctx context.Context) {
	for name, id := range a.ids {
		routes, err := a.dp.Routes(id)
		if err != nil {
			a.log.Warn("read data path routes", "vrf", name, "err", err)
			continue
		}
		a.rib.Adopt(name, routes)
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(a.opts.Grace):
			n := a.rib.Sweep()
			a.log.Info("reconciled the data path with the RIB", "stale-routes-removed", n)
		}
	}()
}

// received feeds the RIB, then re-syncs what we advertise (an aggregate
// may have gained or lost its last contributor).
func (a *Agent) received(e bgp.Event) {
	select {
	case <-a.done:
		return // stopping: the data path keeps what it has
	default:
	}
	if e.Underlay != nil {
		a.installUnderlay(e)
		return
	}
	start := time.Now()
	if e.Withdraw {
		a.metrics.updates.WithLabelValues("withdraw").Inc()
		a.rib.Withdraw(e.Path.Key())
	} else {
		a.metrics.updates.WithLabelValues("update").Inc()
		a.rib.Update(e.Path)
	}
	a.metrics.programNs.Observe(time.Since(start).Seconds())
	for _, err := range a.rib.Err() {
		a.log.Error("program data path", "err", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.syncExports(context.Background())
}

// Reload reads the configuration file again and applies it. A file with
// any error is rejected whole: the running configuration stays.
func (a *Agent) Reload(ctx context.Context, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("configuration rejected, running configuration unchanged: %w", err)
	}
	return a.Apply(ctx, cfg)
}

// Apply replaces the running configuration with cfg, changing only what
// differs. A failure part-way leaves what was applied and says what failed.
func (a *Agent) Apply(ctx context.Context, cfg *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if vtep, err := vtepOf(cfg); err != nil {
		return err
	} else if vtep != a.vtep {
		return fmt.Errorf("the local VTEP changed from %v to %v: restart xleafd to apply", a.vtep, vtep)
	}
	if cfg.ASN != a.cfg.ASN || cfg.RouterID != a.cfg.RouterID {
		return errors.New("the BGP autonomous-system or router-id changed: restart xleafd to apply")
	}
	return a.apply(ctx, cfg)
}

func (a *Agent) apply(ctx context.Context, cfg *config.Config) error {
	// New VRFs get ids no VRF holds now, removed ones included, so nothing
	// of a removed VRF (its routes, its neighbours) lands in a new one.
	if err := a.allocate(cfg); err != nil {
		return err
	}
	removed := map[string]dataplane.VRFID{}
	for name, id := range a.ids {
		if _, ok := cfg.VRFs[name]; !ok {
			removed[name] = id
		}
	}
	for name := range removed {
		if v := a.cfg.VRFs[name]; v != nil {
			// Its VNI may move to another VRF in this same apply.
			if err := a.dp.DeleteVRF(a.ids[name]); err != nil && !errors.Is(err, dataplane.ErrUnknownVRF) {
				a.log.Warn("remove vrf", "vrf", name, "err", err)
			}
		}
	}
	for _, name := range sortedVRFNames(cfg) {
		v := cfg.VRFs[name]
		if err := a.dp.SetVRF(dataplane.VRF{ID: a.ids[name], VNI: v.VNI, RouterMAC: a.rmac, VTEP: a.vtep}); err != nil {
			return fmt.Errorf("vrf %s: %w", name, err)
		}
	}
	a.rib.SetVRFs(a.ribVRFs(cfg))
	err := a.applyPorts(cfg)
	for name := range removed {
		delete(a.ids, name)
	}
	if err != nil {
		return err
	}
	if err := a.applyPeers(ctx, cfg); err != nil {
		return err
	}
	a.applyUnderlay(ctx, cfg)
	a.cfg = cfg
	for _, err := range a.rib.Err() {
		a.log.Error("program data path", "err", err)
	}
	a.syncExports(ctx)
	return nil
}

// attach runs the data path on port: an uplink when vrf is "", else a
// tenant port of vrf. Attaching a port as it is changes nothing.
func (a *Agent) attach(port, vrf string) error {
	if vrf == "" {
		return a.dp.AttachUplink(port)
	}
	return a.dp.AttachAccess(port, a.ids[vrf])
}

// applyPorts attaches tenant ports to their VRFs and uplinks to the fabric,
// gives the ports their addresses, and tells the RIB the subnets.
func (a *Agent) applyPorts(cfg *config.Config) error {
	want := map[string]string{}
	connected := map[string][]netip.Prefix{}
	for name, ifc := range cfg.Interfaces {
		switch {
		case ifc.VRF != "" && ifc.VRF != "mgmt" && cfg.VRFs[ifc.VRF] != nil:
			want[name] = ifc.VRF
			connected[ifc.VRF] = append(connected[ifc.VRF], ifc.Addresses...)
		}
	}
	for _, n := range cfg.Default.Neighbors {
		if n.Type == "unnumbered" {
			want[n.Name] = "" // BGP unnumbered runs over a fabric port
		}
		if n.Type == "numbered" {
			if port := a.portTowards(n.Name); port != "" {
				want[port] = ""
			}
		}
	}
	for port, vrf := range a.ports {
		if w, ok := want[port]; !ok || w != vrf {
			if err := a.dp.Detach(port); err != nil {
				a.log.Warn("detach", "port", port, "err", err)
			}
			a.forgetHosts(port)
			delete(a.ports, port)
		}
	}
	for port, vrf := range want {
		if cur, ok := a.ports[port]; ok && cur == vrf {
			continue
		}
		if err := ensureAddresses(port, cfg.Interfaces[port]); err != nil {
			return err
		}
		if err := a.attach(port, vrf); err != nil {
			return err
		}
		a.ports[port] = vrf
	}
	if lo := cfg.Interfaces["lo"]; lo != nil {
		if err := ensureAddresses("lo", lo); err != nil {
			return err
		}
	}
	for _, name := range sortedVRFNames(cfg) {
		a.rib.SetConnected(name, connected[name])
	}
	return nil
}

// syncExports advertises each VRF's exports as Type-5 routes and
// withdraws what is no longer exported. Called with a.mu held.
func (a *Agent) syncExports(ctx context.Context) {
	want := map[string]bgp.Type5{}
	for _, e := range a.rib.Exports() {
		v := a.cfg.VRFs[e.VRF]
		if v == nil || !v.ExportToEVPN {
			continue
		}
		t := bgp.Type5{RD: a.rd(e.VRF), Prefix: e.Prefix, VTEP: a.vtep, VNI: v.VNI,
			RouterMAC: a.rmac, RTs: []rib.RT{{ASN: v.ASN, Value: v.VNI}}}
		want[e.VRF+"/"+e.Prefix.String()] = t
	}
	for k, t := range a.advertised {
		if w, ok := want[k]; !ok || w.RD != t.RD || w.VNI != t.VNI {
			if err := a.bgp.Withdraw(ctx, t); err != nil {
				a.log.Warn("withdraw", "route", k, "err", err)
			}
			delete(a.advertised, k)
		}
	}
	for k, t := range want {
		if _, ok := a.advertised[k]; ok {
			continue
		}
		if err := a.bgp.Advertise(ctx, t); err != nil {
			a.log.Error("advertise", "route", k, "err", err)
			continue
		}
		a.advertised[k] = t
	}
}
