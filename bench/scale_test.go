package bench_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/test/netns"
)

// The route-scale bed: xleafd, the real binary in its own process, peers
// with the fabric over loopback in a private namespace. The fabric
// originates N Type-5 routes carrying RED's target, which RED and GREEN
// both import, so each route is two entries in the data path. The clock
// runs from the session coming up (the fabric holds the whole table by
// then and sends it packed, as a fabric does to a leaf that joins) until
// xleafd's metrics count every route in both VRFs; then from withdrawing
// them all until both VRFs are back to their own routes. Both processes
// share this machine's cores.
//
// The fabric is rawFabric by default: the UPDATEs encoded before the
// clock starts and written as fast as xleafd reads them, so the figure is
// xleafd's receive path (BenchmarkBGPSender: GoBGP v4 as the sender alone
// takes 27 s for 1M routes). -scale-sender gobgp uses a GoBGP v4 speaker,
// as before. The session runs the guide's timers, hold 9 s and keepalive
// 3 s, both ways: xleafd drops the fabric after 9 s without a message, and
// the raw fabric records xleafd's longest silence (over 9 s, a fabric with
// the guide's timers would have dropped xleafd).
const scaleConfig = `
nv set interface lo ip address 10.10.10.10/32
nv set interface lo type loopback
nv set interface swp10 ip vrf RED
nv set interface swp10 ip address 192.168.100.1/24
nv set router bgp autonomous-system 65110
nv set router bgp router-id 10.10.10.10
nv set vrf GREEN evpn enable on
nv set vrf GREEN evpn vni 4002
nv set vrf GREEN router bgp route-import from-evpn route-target ANY:4001
nv set vrf RED evpn enable on
nv set vrf RED evpn vni 4001
nv set vrf RED router bgp address-family ipv4-unicast redistribute connected enable on
nv set vrf RED router bgp route-import from-evpn route-target ANY:4001
nv set vrf default router bgp address-family l2vpn-evpn enable on
nv set vrf default router bgp enable on
nv set vrf default router bgp neighbor 127.0.0.2 peer-group fabric
nv set vrf default router bgp peer-group fabric remote-as external
nv set vrf default router bgp peer-group fabric address-family l2vpn-evpn enable on
`

const scaleMetrics = "127.0.0.1:19180"

var scaleBinary = flag.String("xleafd", "", "BenchmarkBGPScale: this xleafd binary instead of building cmd/xleafd (to compare builds)")

var scaleSender = flag.String("scale-sender", "raw", "BenchmarkBGPScale: the fabric: raw (UPDATEs encoded ahead, written as fast as xleafd reads) or gobgp (a GoBGP v4 speaker)")

var scaleProfile = flag.String("scale-profile", "", "BenchmarkBGPScale: write xleafd's CPU profiles of the announce (its first 30 s) and the withdrawal (20 s) and its heap profile when loaded to this path prefix")

// BenchmarkBGPScale: N Type-5 routes from BGP into xleafd's data path and
// back out. Run it with -benchtime 1x: a run is one announce and one
// withdrawal (b.N is not a repeat count here).
func BenchmarkBGPScale(b *testing.B) {
	for _, n := range []int{100_000, 300_000, 1_000_000} {
		b.Run("routes="+count(n), func(b *testing.B) { scale(b, n, false) })
	}
}

// BenchmarkBGPScaleRelay: BenchmarkBGPScale's bed with a DCI peer, a
// border leaf of the other data center, which xleafd re-advertises the
// fabric's routes to (a DCI peer group without the guide's control_t5
// route-map, which would let only xleafd's own Type-5 routes through).
// The DCI peer is a raw speaker that counts the EVPN routes it hears; both
// sessions run the guide's timers, and the run fails if xleafd goes
// silent on either for the hold time. Besides the figures of
// BenchmarkBGPScale: s-relayed, session up until the DCI peer holds every
// route, and s-relay-withdrawn, withdrawal until it has heard every
// withdrawal.
func BenchmarkBGPScaleRelay(b *testing.B) {
	for _, n := range []int{100_000, 300_000, 1_000_000} {
		b.Run("routes="+count(n), func(b *testing.B) { scale(b, n, true) })
	}
}

// scaleDCIConfig adds the DCI peer (listening on 127.0.0.3) to
// scaleConfig.
const scaleDCIConfig = `
nv set vrf default router bgp neighbor 127.0.0.3 peer-group dci
nv set vrf default router bgp peer-group dci remote-as external
nv set vrf default router bgp peer-group dci address-family l2vpn-evpn enable on
`

func count(n int) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}

var buildOnce struct {
	sync.Once
	dir string
	err error
}

// xleafdBinary builds cmd/xleafd once per run.
func xleafdBinary(b *testing.B) string {
	if *scaleBinary != "" {
		return *scaleBinary
	}
	buildOnce.Do(func() {
		buildOnce.dir, buildOnce.err = os.MkdirTemp("", "xleaf-bench-bin")
		if buildOnce.err == nil {
			out, err := exec.Command("go", "build", "-o", buildOnce.dir, "../cmd/xleafd").CombinedOutput()
			if err != nil {
				buildOnce.err = fmt.Errorf("build xleafd: %v\n%s", err, out)
			}
		}
	})
	if buildOnce.err != nil {
		b.Fatal(buildOnce.err)
	}
	return filepath.Join(buildOnce.dir, "xleafd")
}

func scale(b *testing.B, n int, relay bool) {
	netns.Root(b)
	// The fabric holds the whole table, as a route server would; a lazier
	// collector keeps its GC from taking the cores xleafd is measured on.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	bin := xleafdBinary(b)
	netns.IP(b, "link", "set", "lo", "up")
	netns.Veth(b, netns.Dev{Name: "swp10"}, netns.Dev{Name: "swp10h"})
	// What xleafd adds to this namespace goes with it: the loopback address
	// the other benchmarks' fixture adds too.
	b.Cleanup(func() { exec.Command("ip", "addr", "del", "10.10.10.10/32", "dev", "lo").Run() })
	netns.IP(b, "link", "set", "swp10", "up")
	netns.IP(b, "link", "set", "swp10h", "up")
	ctx := context.Background()

	// The fabric: listening, without the leaf as a peer yet (the raw one
	// accepts its connection when the clock starts).
	var fabric *bgp.Speaker
	var raw *rawFabric
	switch *scaleSender {
	case "raw":
		start := time.Now()
		var err error
		if raw, err = newRawFabric(netip.MustParseAddrPort("127.0.0.2:179"), n); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(raw.Close)
		b.Logf("raw fabric: %d routes encoded in %.1f s (%d MiB of UPDATEs)", n, time.Since(start).Seconds(), len(raw.announce)>>20)
	case "gobgp":
		fabric = originate(b, n)
	default:
		b.Fatalf("-scale-sender %q: raw or gobgp", *scaleSender)
	}

	// The DCI peer, listening: it sends nothing but its End-of-RIB.
	var dci *rawFabric
	config := scaleConfig
	if relay {
		var err error
		if dci, err = newRawSpeaker(netip.MustParseAddrPort("127.0.0.3:179"), 65299, netip.MustParseAddr("10.10.10.98"), 0); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(dci.Close)
		config += scaleDCIConfig
	}

	// xleafd, in this namespace (the test binary runs inside its own).
	dir := b.TempDir()
	cfg := filepath.Join(dir, "xleaf.conf")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "xleafd.log"))
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"--config", cfg, "--pin-path", netns.PinPath(b), "--socket", filepath.Join(dir, "xleafd.sock"),
		"--metrics-listen", scaleMetrics, "--bgp-port", "-1", "--router-mac", "44:38:39:22:dd:06"}
	if *scaleProfile != "" {
		args = append(args, "--pprof")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if b.Failed() {
			out, _ := os.ReadFile(logf.Name())
			b.Logf("xleafd log:\n%s", tail(string(out), 20))
		}
	})

	if dci != nil {
		if err := dci.accept(time.Minute); err != nil {
			b.Fatalf("the DCI peer's session: %v", err)
		}
		if err := dci.Announce(); err != nil {
			b.Fatal(err)
		}
	}
	// xleafd's own routes (connected, leaked), before any from BGP.
	base := settle(b)
	b.Logf("xleafd up, pid %d, own routes %v; the fabric originates %d routes", cmd.Process.Pid, base, n)
	var dciBase int64 // xleafd's own Type-5 routes, sent to the DCI peer by now
	if dci != nil {
		for dciBase = -1; dciBase != dci.heard.Load(); time.Sleep(time.Second) {
			dciBase = dci.heard.Load() // until a second passes without one
		}
	}
	b.ResetTimer()
	var up time.Time
	sent := make(chan error, 1)
	if raw != nil {
		if err := raw.accept(time.Minute); err != nil {
			b.Fatal(err)
		}
		up = time.Now()
		go func() { sent <- raw.Announce() }()
	} else {
		if err := fabric.AddPeer(ctx, bgp.Peer{Address: netip.MustParseAddr("127.0.0.1"), ASN: 65110, Passive: true, EVPN: true}); err != nil {
			b.Fatal(err)
		}
		up = established(b, fabric)
		sent <- nil
	}
	var profiled sync.WaitGroup
	if *scaleProfile != "" {
		profiled.Go(func() { fetch(b, "/debug/pprof/profile?seconds=30", *scaleProfile+".cpu.pprof") })
	}
	// Until the data path holds them all. (No breakdown: xleafd's
	// received-routes metric lags by design, a cache read again at most
	// every 50 times a walk of the adj-RIB-in; and the fabric's last write
	// returns long before xleafd has read it, into the sockets' buffers.
	// -scale-profile shows where the time goes.)
	wantAll := func(c map[string]int) bool {
		return c["RED"] >= base["RED"]+n && c["GREEN"] >= base["GREEN"]+n
	}
	relayed := make(chan time.Duration, 1)
	if dci != nil {
		go func() { relayed <- waitHeard(up, &dci.heard, dciBase+int64(n)) }()
	}
	loaded := waitCounts(b, up, wantAll)
	announce := loaded.Sub(up)
	if err := <-sent; err != nil {
		b.Fatalf("the fabric's announce: %v", err)
	}

	var relayedAll time.Duration
	if dci != nil {
		if relayedAll = <-relayed; relayedAll < 0 {
			b.Fatalf("the DCI peer heard %d of %d routes after 10 minutes", dci.heard.Load()-dciBase, n)
		}
		b.Logf("relayed: the DCI peer holds all %d routes after %.2f s", n, relayedAll.Seconds())
	}

	rssLoaded := procStatus(b, cmd.Process.Pid, "VmRSS")
	if *scaleProfile != "" {
		fetch(b, "/debug/pprof/heap?gc=1", *scaleProfile+".heap.pprof") // after a collection: what is live
		profiled.Wait()
	}
	b.Logf("announce: %d routes in %.2f s (%.0f routes/s), RSS %.0f MiB", n, announce.Seconds(), float64(n)/announce.Seconds(), rssLoaded)

	if *scaleProfile != "" {
		profiled.Go(func() { fetch(b, "/debug/pprof/profile?seconds=20", *scaleProfile+".withdraw.cpu.pprof") })
	}
	start := time.Now()
	if dci != nil {
		go func() { relayed <- waitHeard(start, &dci.unheard, int64(n)) }()
	}
	if raw != nil {
		go func() { sent <- raw.Withdraw() }()
	} else {
		if err := fabric.WithdrawAll(ctx); err != nil {
			b.Fatal(err)
		}
		sent <- nil
	}
	back := func(c map[string]int) bool { return c["RED"] <= base["RED"] && c["GREEN"] <= base["GREEN"] }
	withdraw := waitCounts(b, start, back).Sub(start)
	var relayWithdrawn time.Duration
	if dci != nil {
		if relayWithdrawn = <-relayed; relayWithdrawn < 0 {
			b.Fatalf("the DCI peer heard %d of %d withdrawals after 10 minutes (none before)", dci.unheard.Load(), n)
		}
		b.Logf("relayed: the DCI peer heard all %d withdrawals after %.2f s", n, relayWithdrawn.Seconds())
	}
	b.StopTimer()
	profiled.Wait()
	if err := <-sent; err != nil {
		b.Fatalf("the fabric's withdrawal: %v", err)
	}
	if raw != nil {
		heldUp(b, raw, "fabric", "s-longest-silence")
	}
	if dci != nil {
		heldUp(b, dci, "DCI peer", "s-dci-longest-silence")
		b.ReportMetric(relayedAll.Seconds(), "s-relayed")
		b.ReportMetric(relayWithdrawn.Seconds(), "s-relay-withdrawn")
	}
	peak := procStatus(b, cmd.Process.Pid, "VmHWM")
	b.Logf("withdraw: %d routes in %.2f s; xleafd peak RSS %.0f MiB", n, withdraw.Seconds(), peak)
	b.ReportMetric(float64(n)/announce.Seconds(), "routes/s")
	b.ReportMetric(announce.Seconds(), "s-announce")
	b.ReportMetric(withdraw.Seconds(), "s-withdraw")
	b.ReportMetric(float64(n)/withdraw.Seconds(), "withdrawn/s")
	b.ReportMetric(rssLoaded, "RSS-MiB")
	b.ReportMetric(peak, "peak-RSS-MiB")
}

// settle waits for xleafd's metrics and returns its route counts once two
// reads a second apart agree.
func settle(b *testing.B) map[string]int {
	deadline := time.Now().Add(30 * time.Second)
	var last map[string]int
	for time.Now().Before(deadline) {
		c, err := vrfRoutes()
		if err == nil && c["RED"] > 0 && last != nil && c["RED"] == last["RED"] && c["GREEN"] == last["GREEN"] {
			return c
		}
		last = c
		time.Sleep(time.Second)
	}
	b.Fatalf("xleafd's metrics did not settle: %v", last)
	return nil
}

// established waits for the fabric's session to the leaf.
func established(b *testing.B, fabric *bgp.Speaker) time.Time {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ps, err := fabric.Peers(context.Background(), false)
		if err == nil && len(ps) == 1 && ps[0].State == "established" {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("the session to xleafd did not come up in 60 s")
	return time.Time{}
}

// waitCounts polls xleafd's route counts until done says so; it returns
// when that was seen.
func waitCounts(b *testing.B, since time.Time, done func(map[string]int) bool) time.Time {
	var c map[string]int
	var err error
	for time.Since(since) < 10*time.Minute {
		start := time.Now()
		if c, err = vrfRoutes(); err == nil && done(c) {
			return time.Now()
		}
		// A scrape counts each peer's received routes, a walk of GoBGP's
		// table in its main loop: polling every 50 ms at 1M routes kept
		// that loop busy and slowed the load it measured to a crawl. At
		// ten times a scrape's length apart, scrapes take under a tenth.
		time.Sleep(max(50*time.Millisecond, 10*time.Since(start)))
	}
	b.Fatalf("route counts %v after 10 minutes (%v)", c, err)
	return time.Time{}
}

// heldUp checks xleafd's session to a raw speaker (peer names it): still
// up, and never silent for the guide's hold time (9 s), past which a peer
// with the guide's timers would have dropped it. The longest silence is
// reported as metric.
func heldUp(b *testing.B, f *rawFabric, peer, metric string) {
	silent, closed := f.Silence()
	if closed != nil {
		b.Fatalf("xleafd's side of the session to the %s ended: %v", peer, closed)
	}
	b.Logf("xleafd's longest silence on the session to the %s: %.1f s (the guide's hold time: 9 s)", peer, silent.Seconds())
	b.ReportMetric(silent.Seconds(), metric)
	if silent > 9*time.Second {
		b.Errorf("xleafd went silent to the %s for %.1f s: a peer with the guide's hold time would have dropped it", peer, silent.Seconds())
	}
}

// scaleAddr is the benchmarks' i-th route's address: 10.128.0.0 and up.
func scaleAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(128 + i>>16), byte(i >> 8), byte(i)})
}

// waitHeard waits until a DCI peer's count reaches want and returns the
// time since since (-1 after 10 minutes). It runs beside waitCounts.
func waitHeard(since time.Time, count *atomic.Int64, want int64) time.Duration {
	for time.Since(since) < 10*time.Minute {
		if count.Load() >= want {
			return time.Since(since)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1
}

// vrfRoutes reads xleafd's Prometheus endpoint: xleaf_vrf_routes by VRF,
// and the routes its one peer sent as "received".
func vrfRoutes() (map[string]int, error) {
	resp, err := http.Get("http://" + scaleMetrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("xleafd's metrics: %w", err)
	}
	counts := map[string]int{}
	for _, m := range families["xleaf_vrf_routes"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "vrf" {
				counts[l.GetValue()] = int(m.GetGauge().GetValue())
			}
		}
	}
	for _, m := range families["xleaf_bgp_peer_received_routes"].GetMetric() {
		counts["received"] = int(m.GetGauge().GetValue())
	}
	return counts, nil
}

// fetch saves one of xleafd's profiles.
func fetch(b *testing.B, path, file string) {
	resp, err := http.Get("http://" + scaleMetrics + path)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Error(err)
	}
}

// procStatus reads a memory line of /proc/PID/status, in MiB.
func procStatus(b *testing.B, pid int, key string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatalf("%s: %q", key, line)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
