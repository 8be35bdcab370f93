// Package control is xleaf's control agent: it turns the configuration
// into VRFs, ports and BGP sessions, feeds the per-VRF RIB from EVPN, and
// advertises what the leaf owns. The agent validates and applies the
// configuration and wires its parts, each in its own file with its own
// state: the route pipeline, peers, hosts, ports and the underlay.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
	"github.com/xleaf/xleaf/dataplane"
)

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

// leaf is the switch's identity in the overlay; it never changes while
// xleafd runs.
type leaf struct {
	vtep netip.Addr       // the loopback's /32: our VXLAN tunnels' source
	rmac net.HardwareAddr // the router MAC of our routed VXLAN
}

// Agent runs one leaf.
type Agent struct {
	opts    Options
	log     *slog.Logger
	dp      Dataplane
	leaf    leaf
	speaker *bgp.Speaker
	metrics *metrics

	pipeline *pipeline
	peers    *peers
	hosts    *hosts
	ports    *ports
	underlay *underlay

	applyMu sync.Mutex // one apply at a time
	ids     vrfIDs     // guarded by applyMu

	cfg     atomic.Pointer[config.Config] // applied
	vrfs    atomic.Pointer[vrfSet]        // applied
	started atomic.Pointer[time.Time]
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
	vtep, err := vtepOf(cfg)
	if err != nil {
		return nil, err
	}
	rmac := opts.RouterMAC
	if rmac == nil {
		if rmac, err = systemMAC(cfg); err != nil {
			return nil, err
		}
	}
	a := &Agent{opts: opts, log: opts.Log, dp: dp, leaf: leaf{vtep, rmac}, metrics: newMetrics(), ids: vrfIDs{}}
	existing, err := dp.VRFs()
	if err != nil {
		return nil, fmt.Errorf("read data path vrfs: %w", err)
	}
	for _, v := range a.ids.adopt(cfg, existing) {
		// A VRF a previous run had and this configuration does not: it
		// must not keep decapsulating its VNI.
		if err := dp.DeleteVRF(v.ID); err != nil {
			return nil, fmt.Errorf("remove stale vrf %d (vni %d): %w", v.ID, v.VNI, err)
		}
	}
	a.cfg.Store(cfg)
	a.speaker = bgp.New(a.log.With("component", "bgp"), opts.GRPC)
	a.peers = newPeers(a.log, a.speaker)
	a.underlay = newUnderlay(a.log, a.speaker, a.peers.portOf)
	a.pipeline = newPipeline(a.log, dp, a.speaker, a.metrics, a.leaf, a.underlay.received)
	a.ports = newPorts(a.log, dp)
	a.hosts = newHosts(a.log, dp, a.pipeline.rib, a.speaker, a.ports, a.leaf)
	return a, nil
}

// vtepOf is the local VTEP: the loopback's /32.
func vtepOf(cfg *config.Config) (netip.Addr, error) {
	for _, ifc := range cfg.Interfaces {
		if ifc.IsLoopback() {
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

// Run applies the configuration and serves until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return a.speaker.Stop()
}

func (a *Agent) start(ctx context.Context) error {
	now := time.Now()
	a.started.Store(&now)
	a.peers.ctx = ctx
	if err := a.dp.AddVTEP(a.leaf.vtep); err != nil {
		return err
	}
	cfg := a.cfg.Load()
	if err := a.speaker.Start(ctx, bgp.Global{ASN: cfg.ASN, RouterID: cfg.RouterID, ListenPort: a.opts.BGPPort}); err != nil {
		return err
	}
	// Ports an earlier run left attached: apply re-attaches those still
	// configured in their configured role, and detaches the rest, so no
	// port keeps forwarding for a VRF or role it no longer has.
	if err := a.ports.adopt(); err != nil {
		return err
	}
	a.applyMu.Lock()
	err := a.apply(ctx, cfg)
	a.applyMu.Unlock()
	if err != nil {
		return err
	}
	a.pipeline.adopt(ctx, a.opts.Grace)
	if err := a.hosts.watch(ctx); err != nil {
		return fmt.Errorf("watch neighbours: %w", err)
	}
	go a.watchKernel(ctx)
	if err := a.hosts.resolveMisses(ctx); err != nil {
		return fmt.Errorf("read data path misses: %w", err)
	}
	return a.pipeline.run(ctx)
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
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	old := a.cfg.Load()
	if vtep, err := vtepOf(cfg); err != nil {
		return err
	} else if vtep != a.leaf.vtep {
		return fmt.Errorf("the local VTEP changed from %v to %v: restart xleafd to apply", a.leaf.vtep, vtep)
	}
	if cfg.ASN != old.ASN || cfg.RouterID != old.RouterID {
		return errors.New("the BGP autonomous-system or router-id changed: restart xleafd to apply")
	}
	return a.apply(ctx, cfg)
}

// apply takes cfg to every part. Called with applyMu held.
func (a *Agent) apply(ctx context.Context, cfg *config.Config) error {
	// New VRFs get ids no VRF holds now, removed ones included, so nothing
	// of a removed VRF (its routes, its neighbours) lands in a new one.
	if err := a.ids.allocate(cfg); err != nil {
		return err
	}
	old := a.cfg.Load()
	var removed []string
	for name, id := range a.ids {
		if cfg.VRFs[name] != nil {
			continue
		}
		removed = append(removed, name)
		if old.VRFs[name] != nil {
			// Before the new VRFs are set: its VNI may move to one of them.
			if err := a.dp.DeleteVRF(id); err != nil && !errors.Is(err, dataplane.ErrUnknownVRF) {
				a.log.Warn("remove vrf", "vrf", name, "err", err)
			}
		}
	}
	vs := newVRFSet(cfg, a.ids)
	for _, name := range vs.names() {
		v := vs.byName[name]
		if err := a.dp.SetVRF(dataplane.VRF{ID: v.ID, VNI: v.VNI, RouterMAC: a.leaf.rmac, VTEP: a.leaf.vtep}); err != nil {
			return fmt.Errorf("vrf %s: %w", name, err)
		}
	}
	a.vrfs.Store(vs)
	a.pipeline.setVRFs(vs, connected(cfg))
	a.hosts.vrfs.Store(vs)
	ended, err := a.ports.apply(wantedRoles(cfg, vs), cfg.Interfaces)
	a.hosts.forgetPorts(ended)
	for _, name := range removed {
		delete(a.ids, name)
	}
	if err != nil {
		return err
	}
	if err := a.peers.apply(ctx, cfg); err != nil {
		return err
	}
	a.underlay.apply(ctx, cfg)
	a.cfg.Store(cfg)
	a.pipeline.syncExports(ctx)
	return nil
}
