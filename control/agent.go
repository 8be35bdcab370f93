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
	"maps"
	"net"
	"net/netip"
	"slices"
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
	// Grace bounds the wait, after a start, for every neighbour's
	// End-of-RIB: then routes found in the data path and the kernel that
	// BGP did not re-learn go. It also bounds how long a restarting
	// speaker holds back its updates (GR selection deferral).
	Grace time.Duration // default 60s
	GRPC  string        // GoBGP's gRPC API on this address (e.g. 127.0.0.1:50051); "" = off
	// ICMPErrorsPerSecond is each VRF's rate of ICMP errors per CPU, after
	// a burst of icmpBurst; 0: 1000 (Linux's icmp_msgs_per_sec); < 0: none.
	ICMPErrorsPerSecond int
	Log                 *slog.Logger
	Version             string // what show version says xleafd is
	// VerifyEvery is how often the agent audits the data path against the
	// RIB (xleafctl verify); 0: every minute; < 0: never by itself.
	VerifyEvery time.Duration
}

// leaf is the switch's identity in the overlay; it never changes while
// xleafd runs.
type leaf struct {
	vtep netip.Addr       // the loopback's /32: our VXLAN tunnels' source
	rmac net.HardwareAddr // the router MAC of our routed VXLAN
}

// Agent runs one leaf.
type Agent struct {
	sessions sessionCache // the sessions as the metrics report them
	born     time.Time    // for show version
	opts     Options
	log      *slog.Logger
	dp       Dataplane
	leaf     leaf
	speaker  *bgp.Speaker
	metrics  *metrics

	pipeline *pipeline
	peers    *peers
	hosts    *hosts
	ports    *ports
	hops     *hops
	underlay *underlay
	// stopHosts ends the hosts part's watchers and waits for them (set by
	// start).
	stopHosts func()
	// stopVerify ends the periodic audit (set by start).
	stopVerify func()
	verified   atomic.Pointer[VerifyReport] // the last audit
	restart    *restart                     // set by start

	quit     chan struct{} // Shutdown: stop now
	withdraw atomic.Bool   // Shutdown: stop with a NOTIFICATION, not gracefully

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
	if opts.ICMPErrorsPerSecond == 0 {
		opts.ICMPErrorsPerSecond = 1000
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
	a := &Agent{born: time.Now(), opts: opts, log: opts.Log, dp: dp, leaf: leaf{vtep, rmac}, metrics: newMetrics(), ids: vrfIDs{},
		quit: make(chan struct{})}
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
	a.hops = newHops(a.log, dp)
	a.hosts = newHosts(a.log, dp, a.pipeline.rib, a.speaker, a.ports, a.leaf)
	a.peers.deferral = uint32(opts.Grace / time.Second)
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
		// Whatever start began must not touch the data path once the
		// caller closes it.
		a.hops.stop()
		if a.stopHosts != nil {
			a.stopHosts()
		}
		if a.stopVerify != nil {
			a.stopVerify()
		}
		return err
	}
	select {
	case <-ctx.Done():
	case <-a.quit:
	}
	// Gracefully unless told otherwise: with graceful restart on, peers
	// get no NOTIFICATION and keep our routes while the data path, which
	// outlives us, keeps forwarding.
	graceful := !a.withdraw.Load() && a.cfg.Load().GR.Mode != config.GROff
	a.log.Info("stopping", "graceful-restart", graceful)
	// The data path is closed after Run: nothing may write it then. The
	// next hops stay in use until their watchdog runs out, correct as of
	// now; the next run resolves its own.
	a.hops.stop()
	a.stopHosts()
	a.stopVerify()
	return a.speaker.Stop(graceful)
}

// Shutdown stops the agent for good: every session ends with a
// NOTIFICATION, so peers drop this leaf's routes at once and send its
// traffic elsewhere; the data path stays pinned. For a planned removal;
// a stop by signal is graceful.
func (a *Agent) Shutdown() {
	if a.withdraw.CompareAndSwap(false, true) {
		close(a.quit)
	}
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
	restarting, err := a.ports.adopt()
	if err != nil {
		return err
	}
	a.restart = newRestart(a.log, restarting, func(why string) { a.restarted(ctx, why) })
	a.peers.restarting.Store(restarting)
	a.pipeline.eor = func(e *bgp.EOR) { a.restart.eor(a.peers.nameOf(e.Peer), e.EVPN) }
	a.applyMu.Lock()
	err = a.apply(ctx, cfg)
	a.applyMu.Unlock()
	if err != nil {
		return err
	}
	a.restart.expect(cfg)
	a.pipeline.adopt(ctx)
	hctx, cancelHosts := context.WithCancel(ctx)
	a.stopHosts = func() { cancelHosts(); a.hosts.wg.Wait() }
	if err := a.hosts.watch(hctx); err != nil {
		return fmt.Errorf("watch neighbours: %w", err)
	}
	if err := a.hops.run(ctx); err != nil {
		return fmt.Errorf("resolve underlay next hops: %w", err)
	}
	go a.watchKernel(ctx)
	a.stopVerify = a.verifyEvery(ctx)
	if err := a.hosts.resolveMisses(hctx); err != nil {
		return fmt.Errorf("read data path misses: %w", err)
	}
	if err := a.pipeline.run(ctx); err != nil {
		return err
	}
	a.restart.wait(ctx, a.opts.Grace)
	return nil
}

// restarted ends the restart: what the earlier run left and nothing
// re-learned goes (data-path routes, kernel underlay routes), and new
// sessions no longer claim a restart.
func (a *Agent) restarted(ctx context.Context, why string) {
	a.peers.restarting.Store(false)
	a.speaker.Restarted()
	n := a.pipeline.sweep(ctx)
	a.reconcile(ctx) // the underlay's stale kernel routes
	a.log.Info("convergence after start complete", "restart", a.restart.restarting, "why", why, "stale-routes-removed", n,
		"after", time.Since(*a.started.Load()).Round(time.Millisecond))
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

// icmpBurst is the ICMP errors a VRF may send at once per CPU (Linux's
// icmp_msgs_burst).
const icmpBurst = 50

// icmpErrors is how VRF name answers packets it cannot forward: from its
// first address of the family on a port (ports in name order), as Linux
// picks the address of an interface in the VRF; a VRF without IPv4 on its
// ports (a border leaf's) answers IPv4 from the leaf's loopback, the
// router's own address, and IPv6 from the loopback's IPv6 address, if it
// has one (else it sends no ICMPv6 errors: the underlay is IPv4).
func (a *Agent) icmpErrors(cfg *config.Config, name string) dataplane.ICMPErrors {
	if a.opts.ICMPErrorsPerSecond < 0 {
		return dataplane.ICMPErrors{}
	}
	e := dataplane.ICMPErrors{Source: a.leaf.vtep, PerSecond: uint32(a.opts.ICMPErrorsPerSecond), Burst: icmpBurst}
	first := func(family func(netip.Addr) bool) (netip.Addr, bool) {
		for _, port := range slices.Sorted(maps.Keys(cfg.Interfaces)) {
			ifc := cfg.Interfaces[port]
			if i := slices.IndexFunc(ifc.Addresses, func(p netip.Prefix) bool { return family(p.Addr()) }); ifc.VRF == name && i >= 0 {
				return ifc.Addresses[i].Addr(), true
			}
		}
		return netip.Addr{}, false
	}
	if src, ok := first(netip.Addr.Is4); ok {
		e.Source = src
	}
	e.Source6, _ = first(netip.Addr.Is6)
	if !e.Source6.IsValid() {
		for _, ifc := range cfg.Interfaces {
			if i := slices.IndexFunc(ifc.Addresses, func(p netip.Prefix) bool { return p.Addr().Is6() }); ifc.IsLoopback() && i >= 0 {
				e.Source6 = ifc.Addresses[i].Addr()
			}
		}
	}
	return e
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
		dv := dataplane.VRF{ID: v.ID, VNI: v.VNI, RouterMAC: a.leaf.rmac, VTEP: a.leaf.vtep, ICMP: a.icmpErrors(cfg, name)}
		if err := a.dp.SetVRF(dv); err != nil {
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
