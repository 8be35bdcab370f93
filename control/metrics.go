package control

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xleaf/xleaf/control/show"
)

// metrics are what the agent counts as it goes; the data path's own
// counters and the BGP sessions are read at scrape time (Collect).
type metrics struct {
	updates   *prometheus.CounterVec // received EVPN routes by kind
	bad       prometheus.Counter     // received routes that could not be used
	programNs prometheus.Histogram   // route receipt to data path
}

func newMetrics() *metrics {
	return &metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xleaf_bgp_evpn_updates_total",
			Help: "EVPN routes received from peers, by kind (update, withdraw)."}, []string{"kind"}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{Name: "xleaf_bgp_evpn_bad_routes_total",
			Help: "EVPN routes received that could not be used (no router MAC, no VNI, no route target...)."}),
		programNs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "xleaf_route_programming_seconds",
			Help: "Time from receiving a route to the data path holding it.", Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}),
	}
}

var (
	descPackets     = prometheus.NewDesc("xleaf_packets_total", "Packets by VRF and verdict reason.", []string{"vrf", "reason"}, nil)
	descBytes       = prometheus.NewDesc("xleaf_bytes_total", "Bytes by VRF and verdict reason.", []string{"vrf", "reason"}, nil)
	descLeakPackets = prometheus.NewDesc("xleaf_leaked_packets_total",
		"Packets forwarded from VRF from to VRF to (to = from: stayed in its VRF; to = \"vni N\": a VNI no VRF here has, a VRF of another site).", []string{"from", "to"}, nil)
	descLeakBytes = prometheus.NewDesc("xleaf_leaked_bytes_total", "Bytes of xleaf_leaked_packets_total.", []string{"from", "to"}, nil)
	descRoutes    = prometheus.NewDesc("xleaf_vrf_routes", "Routes selected per VRF.", []string{"vrf"}, nil)
	descPeerUp    = prometheus.NewDesc("xleaf_bgp_peer_up", "1 if the BGP session is established.", []string{"neighbor"}, nil)
	descPeerRx    = prometheus.NewDesc("xleaf_bgp_peer_received_routes", "Routes received from a peer.", []string{"neighbor"}, nil)
	descMissSup   = prometheus.NewDesc("xleaf_miss_events_suppressed_total",
		"Miss events the data path did not send to the agent (rate limit per CPU: 64 at once, 1000 a second).", nil, nil)
	descFIB = prometheus.NewDesc("xleaf_fib_chunks",
		"The compiled FIB's chunks by size in bytes (1024: --fib-chunks, 64: --fib-small-chunks) and state: used, or total (the pool; a full pool refuses routes).",
		[]string{"bytes", "state"}, nil)
	descHops  = prometheus.NewDesc("xleaf_underlay_hops", "Remote VTEPs whose underlay next hops the data path holds (resolved from the kernel's routes and neighbours).", nil, nil)
	descDiffs = prometheus.NewDesc("xleaf_dataplane_differences",
		"Routes the data path holds otherwise than the RIB selected them (missing, extra or different), at the last audit (every minute; xleafctl verify lists them).", nil, nil)
	descFallback = prometheus.NewDesc("xleaf_underlay_fallback_packets_total",
		"Packets whose remote VTEP had no resolved underlay next hop: looked up in the kernel's FIB per packet instead.", nil, nil)
	descICMP = prometheus.NewDesc("xleaf_icmp_errors_total",
		"ICMP errors the data path answered dropped packets with, by VRF and result: sent, suppressed (rate limit), unroutable (no way back to the source in the VRF).",
		[]string{"vrf", "result"}, nil)
)

// Collector returns the agent's Prometheus collector.
func (a *Agent) Collector() prometheus.Collector { return agentCollector{a} }

type agentCollector struct{ a *Agent }

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descBytes, descLeakPackets, descLeakBytes, descRoutes, descPeerUp, descPeerRx, descMissSup, descICMP, descFIB, descHops, descFallback, descDiffs} {
		ch <- d
	}
	c.a.metrics.updates.Describe(ch)
	c.a.metrics.bad.Describe(ch)
	c.a.metrics.programNs.Describe(ch)
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	a.metrics.updates.Collect(ch)
	a.metrics.bad.Collect(ch)
	a.metrics.programNs.Collect(ch)
	if cs, err := a.Counters(); err == nil {
		for _, k := range cs {
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(k.Packets), k.VRF, k.Reason)
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(k.Bytes), k.VRF, k.Reason)
		}
	}
	if m, err := a.LeakMatrix(); err == nil {
		for _, c := range m.Cells {
			ch <- prometheus.MustNewConstMetric(descLeakPackets, prometheus.CounterValue, float64(c.Packets), c.From, c.To)
			ch <- prometheus.MustNewConstMetric(descLeakBytes, prometheus.CounterValue, float64(c.Bytes), c.From, c.To)
		}
	}
	if n, err := a.dp.SuppressedEvents(); err == nil {
		ch <- prometheus.MustNewConstMetric(descMissSup, prometheus.CounterValue, float64(n))
	}
	ch <- prometheus.MustNewConstMetric(descHops, prometheus.GaugeValue, float64(a.hops.resolved()))
	if r := a.verified.Load(); r != nil {
		ch <- prometheus.MustNewConstMetric(descDiffs, prometheus.GaugeValue, float64(len(r.Differences)))
	}
	if n, err := a.dp.UnderlayFallbacks(); err == nil {
		ch <- prometheus.MustNewConstMetric(descFallback, prometheus.CounterValue, float64(n))
	}
	for _, p := range a.dp.FIBPools() {
		size := strconv.Itoa(p.ChunkBytes)
		ch <- prometheus.MustNewConstMetric(descFIB, prometheus.GaugeValue, float64(p.Used), size, "used")
		ch <- prometheus.MustNewConstMetric(descFIB, prometheus.GaugeValue, float64(p.Total), size, "total")
	}
	if st, err := a.dp.ICMPStats(); err == nil {
		if vs := a.vrfs.Load(); vs != nil {
			for id, s := range st {
				v := vs.byID[id]
				if v == nil {
					continue
				}
				ch <- prometheus.MustNewConstMetric(descICMP, prometheus.CounterValue, float64(s.Sent), v.Name, "sent")
				ch <- prometheus.MustNewConstMetric(descICMP, prometheus.CounterValue, float64(s.Suppressed), v.Name, "suppressed")
				ch <- prometheus.MustNewConstMetric(descICMP, prometheus.CounterValue, float64(s.Unroutable), v.Name, "unroutable")
			}
		}
	}
	for vrf, n := range a.pipeline.rib.Counts() {
		ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(n), vrf)
	}
	if s, err := a.sessions.get(a.readSessions); err == nil {
		for _, p := range s.Peers {
			up := 0.0
			if p.State == "established" {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, up, p.Neighbor)
			ch <- prometheus.MustNewConstMetric(descPeerRx, prometheus.GaugeValue, float64(p.Received), p.Neighbor)
		}
	}
}

// sessionCache holds the sessions for the metrics. Reading them from GoBGP
// counts each peer's received routes by walking its adj-RIB-in (a million
// entries in a big table, in GoBGP's main loop, which handles no UPDATE
// meanwhile), so a scrape takes the last read and, when that is older than
// sessionReadShare times what it took (at least a second), starts the next
// in the background: a scrape costs O(1), the walks take at most 1/50 of
// the time, and the figures lag by that much.
type sessionCache struct {
	mu      sync.Mutex
	summary show.Summary
	err     error
	at      time.Time
	took    time.Duration
	reading bool
}

// sessionReadShare: a tenth was 5% of xleafd's CPU in a 1M-route load,
// polled as often as the cache allows, and the 85 MB each walk allocates.
const sessionReadShare = 50

func (c *sessionCache) get(read func() (show.Summary, error)) (show.Summary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() { // the first: read now
		c.mu.Unlock()
		c.read(read)
		c.mu.Lock()
	} else if !c.reading && time.Since(c.at) > max(time.Second, sessionReadShare*c.took) {
		c.reading = true
		go c.read(read)
	}
	return c.summary, c.err
}

func (c *sessionCache) read(read func() (show.Summary, error)) {
	start := time.Now()
	s, err := read()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.summary, c.err, c.at, c.took, c.reading = s, err, time.Now(), time.Since(start), false
}

// readSessions is the sessions as show bgp summary has them.
func (a *Agent) readSessions() (show.Summary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.summary(ctx, false)
}
