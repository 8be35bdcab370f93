package bench_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xleaf/xleaf/test/netns"
)

// BenchmarkBGPScaleFRR: FRR 8.4 (bgpd and zebra, started by hand as the
// lab runs them, each VRF a network namespace) receives the same N Type-5
// routes from the same raw fabric as BenchmarkBGPScale's xleafd, into two
// VRFs that import them, as xleafd's do: RED (L3VNI 4001) and GREEN (4002),
// both with route-target import 65101:4001. The clock runs from the
// session up until bgpd's EVPN table holds all N (pfxRcd), and until zebra
// has them in both VRFs' FIBs (installed in the kernel); then from the
// withdrawal until all are gone again. RSS of bgpd and zebra. The session
// runs the guide's timers. This is what a user compares xleafd with: run
// it in the same `make bench` as BenchmarkBGPScale.
func BenchmarkBGPScaleFRR(b *testing.B) {
	if _, err := os.Stat("/usr/lib/frr/bgpd"); err != nil {
		b.Skip("FRR is not installed (apt-get install frr)")
	}
	for _, n := range []int{100_000, 300_000, 1_000_000} {
		b.Run("routes="+count(n), func(b *testing.B) { frrScale(b, n) })
	}
}

const frrBenchZebra = `hostname frr
vrf RED
 vni 4001
exit-vrf
vrf GREEN
 vni 4002
exit-vrf
`

// frrBenchBGP: the fabric session, and each VRF importing the fabric's
// routes (by their target: FRR 8.4 has no ANY:N).
var frrBenchBGP = `hostname frr
router bgp 65150
 bgp router-id 10.10.10.50
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 10.99.0.1 remote-as 65199
 address-family l2vpn evpn
  neighbor 10.99.0.1 activate
  advertise-all-vni
 exit-address-family
exit
` + frrBenchVRF("RED") + frrBenchVRF("GREEN")

func frrBenchVRF(name string) string {
	return `router bgp 65150 vrf ` + name + `
 bgp router-id 10.10.10.50
 no bgp ebgp-requires-policy
 address-family ipv4 unicast
  maximum-paths 1
 exit-address-family
 address-family l2vpn evpn
  route-target import 65101:4001
 exit-address-family
exit
`
}

func frrScale(b *testing.B, n int) {
	netns.Root(b)
	netns.IP(b, "link", "set", "lo", "up")
	leaf, red, green := netns.New(b, "frr"), netns.New(b, "frr-red"), netns.New(b, "frr-green")
	netns.Veth(b, netns.Dev{Name: "frr0"}, netns.Dev{NS: leaf, Name: "eth0"})
	ipn := func(ns string, args ...string) { netns.IP(b, append([]string{"-n", ns}, args...)...) }
	netns.IP(b, "addr", "add", "10.99.0.1/30", "dev", "frr0")
	netns.IP(b, "link", "set", "frr0", "up")
	ipn(leaf, "addr", "add", "10.99.0.2/30", "dev", "eth0")
	ipn(leaf, "link", "set", "eth0", "up")
	ipn(leaf, "addr", "add", "10.10.10.50/32", "dev", "lo")
	ipn(leaf, "route", "add", "10.10.10.0/24", "via", "10.99.0.1") // the fabric's VTEPs
	for vni, ns := range map[string]string{"4001": red, "4002": green} {
		ipn(leaf, "link", "add", "vxlan"+vni, "type", "vxlan", "id", vni, "local", "10.10.10.50", "dstport", "4789", "nolearning")
		ipn(leaf, "link", "set", "vxlan"+vni, "netns", ns)
		ipn(ns, "link", "add", "br"+vni, "address", "44:38:39:22:dd:50", "type", "bridge")
		ipn(ns, "link", "set", "vxlan"+vni, "master", "br"+vni)
		ipn(ns, "link", "set", "vxlan"+vni, "up")
		ipn(ns, "link", "set", "br"+vni, "up")
	}

	raw, err := newRawFabric(netip.MustParseAddrPort("10.99.0.1:179"), n)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	dir := startFRR(b, leaf, red, green)

	b.ResetTimer()
	if err := raw.accept(time.Minute); err != nil {
		b.Fatal(err)
	}
	up := time.Now()
	sent := make(chan error, 1)
	go func() { sent <- raw.Announce() }()
	var evpnAt time.Time
	loaded := frrWait(b, dir, up, func(evpn, red, green int) bool {
		if evpnAt.IsZero() && evpn >= n {
			evpnAt = time.Now()
		}
		return evpn >= n && red >= n && green >= n
	})
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	rss := frrMemory(b, dir, "VmRSS")
	b.Logf("announce: %d routes; bgpd's EVPN table held all after %.2f s, both VRFs' FIBs after %.2f s; RSS bgpd+zebra %.0f MiB",
		n, evpnAt.Sub(up).Seconds(), loaded.Sub(up).Seconds(), rss)

	start := time.Now()
	go func() { sent <- raw.Withdraw() }()
	empty := frrWait(b, dir, start, func(evpn, red, green int) bool { return evpn == 0 && red == 0 && green == 0 })
	b.StopTimer()
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	silent, closed := raw.Silence()
	if closed != nil {
		b.Fatalf("FRR's side of the session ended: %v", closed)
	}
	peak := frrMemory(b, dir, "VmHWM")
	b.Logf("withdraw: %.2f s; peak RSS bgpd+zebra %.0f MiB; FRR's longest silence %.1f s", empty.Sub(start).Seconds(), peak, silent.Seconds())
	b.ReportMetric(evpnAt.Sub(up).Seconds(), "s-evpn")
	b.ReportMetric(loaded.Sub(up).Seconds(), "s-announce")
	b.ReportMetric(float64(n)/loaded.Sub(up).Seconds(), "routes/s")
	b.ReportMetric(empty.Sub(start).Seconds(), "s-withdraw")
	b.ReportMetric(rss, "RSS-MiB")
	b.ReportMetric(peak, "peak-RSS-MiB")
	b.ReportMetric(silent.Seconds(), "s-longest-silence")
}

// startFRR starts zebra (the namespace VRF backend, seeing only red and
// green, as VRFs RED and GREEN) and bgpd in namespace leaf, as the lab
// does; it returns their directory (configuration, pid files, vty socket).
func startFRR(b *testing.B, leaf, red, green string) string {
	dir := filepath.Join(b.TempDir(), "frr")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for d := dir; d != "/"; d = filepath.Dir(d) { // frr must reach its files
		os.Chmod(d, 0o755)
		if d == os.TempDir() {
			break
		}
	}
	frr, err := user.Lookup("frr")
	if err != nil {
		b.Fatalf("frr user: %v", err)
	}
	uid, _ := strconv.Atoi(frr.Uid)
	gid, _ := strconv.Atoi(frr.Gid)
	for name, text := range map[string]string{"zebra.conf": frrBenchZebra, "bgpd.conf": frrBenchBGP, "vtysh.conf": ""} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
			b.Fatal(err)
		}
		os.Chown(p, uid, gid)
	}
	os.Chown(dir, uid, gid)
	script := fmt.Sprintf(`set -e
mkdir -p %[1]s/keep && touch %[1]s/keep/RED %[1]s/keep/GREEN
mount --bind /run/netns/%[2]s %[1]s/keep/RED
mount --bind /run/netns/%[3]s %[1]s/keep/GREEN
mount -t tmpfs tmpfs /run/netns
touch /run/netns/RED /run/netns/GREEN
mount --bind %[1]s/keep/RED /run/netns/RED
mount --bind %[1]s/keep/GREEN /run/netns/GREEN
/usr/lib/frr/zebra -d -n -f %[1]s/zebra.conf -i %[1]s/zebra.pid -z %[1]s/zserv.api --vty_socket %[1]s --log file:%[1]s/zebra.log
for i in $(seq 100); do
	vtysh --vty_socket %[1]s -c 'show evpn vni' 2>/dev/null | grep -q 'GREEN' && break
	sleep 0.1
done
/usr/lib/frr/bgpd -d -f %[1]s/bgpd.conf -i %[1]s/bgpd.pid -z %[1]s/zserv.api --vty_socket %[1]s --log file:%[1]s/bgpd.log
`, dir, red, green)
	out, err := exec.Command("ip", "netns", "exec", leaf, "unshare", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		b.Fatalf("start FRR: %v: %s", err, out)
	}
	b.Cleanup(func() {
		for _, d := range []string{"bgpd", "zebra"} {
			if pid := frrPid(dir, d); pid > 0 {
				exec.Command("kill", strconv.Itoa(pid)).Run()
				for i := 0; i < 100 && exec.Command("kill", "-0", strconv.Itoa(pid)).Run() == nil; i++ {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
		if b.Failed() {
			for _, d := range []string{"bgpd", "zebra"} {
				log, _ := os.ReadFile(filepath.Join(dir, d+".log"))
				b.Logf("%s log:\n%s", d, tail(string(log), 15))
			}
		}
	})
	return dir
}

func frrPid(dir, daemon string) int {
	data, err := os.ReadFile(filepath.Join(dir, daemon+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// frrMemory sums a memory line of bgpd's and zebra's /proc status, MiB.
func frrMemory(b *testing.B, dir, key string) float64 {
	sum := 0.0
	for _, d := range []string{"bgpd", "zebra"} {
		sum += procStatus(b, frrPid(dir, d), key)
	}
	return sum
}

// frrCounts reads the routes bgpd received from the fabric into its EVPN
// table and the BGP routes zebra has installed in VRF RED's and GREEN's
// FIBs.
func frrCounts(dir string) (evpn, red, green int, err error) {
	vtysh := func(cmd string, v any) error {
		out, err := exec.Command("vtysh", "--vty_socket", dir, "-c", cmd).Output()
		if err != nil {
			return fmt.Errorf("%s: %v", cmd, err)
		}
		return json.Unmarshal(out, v)
	}
	var sum struct {
		Peers map[string]struct {
			PfxRcd int `json:"pfxRcd"`
		} `json:"peers"`
	}
	if err := vtysh("show bgp l2vpn evpn summary json", &sum); err != nil {
		return 0, 0, 0, err
	}
	for _, p := range sum.Peers {
		evpn += p.PfxRcd
	}
	fib := func(vrf string) (int, error) {
		var rs struct {
			Routes []struct {
				Type string `json:"type"`
				FIB  int    `json:"fib"`
			} `json:"routes"`
		}
		if err := vtysh("show ip route vrf "+vrf+" summary json", &rs); err != nil {
			return 0, err
		}
		n := 0
		for _, r := range rs.Routes {
			if r.Type == "bgp" || r.Type == "ebgp" {
				n += r.FIB
			}
		}
		return n, nil
	}
	if red, err = fib("RED"); err != nil {
		return 0, 0, 0, err
	}
	if green, err = fib("GREEN"); err != nil {
		return 0, 0, 0, err
	}
	return evpn, red, green, nil
}

// frrWait polls FRR's counts every 200 ms until done says so.
func frrWait(b *testing.B, dir string, since time.Time, done func(evpn, red, green int) bool) time.Time {
	var evpn, red, green int
	var err error
	for time.Since(since) < 10*time.Minute {
		if evpn, red, green, err = frrCounts(dir); err == nil && done(evpn, red, green) {
			return time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("FRR: EVPN %d, VRF RED %d, GREEN %d routes after 10 minutes (%v)", evpn, red, green, err)
	return time.Time{}
}
