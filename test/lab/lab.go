// Package lab builds the guide's two-site fabric in network namespaces:
// two sites of two leafs, a spine and a border leaf each, joined by a DCI
// link between the border leafs, every switch running xleafd with the
// guide's configuration, and hosts in RED, GREEN and BLUE.
package lab

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/test/netns"
)

//go:embed configs
var configs embed.FS

// Switch is one xleafd in its namespace.
type Switch struct {
	Name      string
	RouterMAC string
	Config    func(frr bool) (string, error) // frr: FRR's leaf is on spine1's swp7
}

// Host is a tenant host with one address, attached to one or two leafs
// (the same address on both links, as a multihomed server).
type Host struct {
	Name    string
	Addr    string // with prefix length; its IPv6 twin is Twin6(Addr)
	Gateway string
	Ports   []Port // the leaf ports it hangs off
}

// Port is one end of a link: a switch and its interface.
type Port struct{ Node, If string }

// Link joins two ports with a veth pair.
type Link struct{ A, B Port }

// Lab is one instance of the fabric. Prefix names everything it creates
// (namespaces, pin paths, run files), so a lab and a test run side by side
// and a crashed run can be cleaned up.
type Lab struct {
	Prefix string // e.g. "xl-"
	Bin    string // directory holding xleafd and xleafctl
	FRR    bool   // add FRR's leaf (UpFRR) to site 1
	Log    func(format string, args ...any)

	started time.Time // when Up started the agents
}

// Guide's switches: borderleaf01/04 run the guide's listings verbatim, the
// leafs the guide's listings completed with what it leaves out.
var Switches = []Switch{
	{Name: "spine1", RouterMAC: "44:38:39:22:dd:c1", Config: spine("65199", "10.10.10.199")},
	{Name: "spine2", RouterMAC: "44:38:39:22:dd:c2", Config: spine("65299", "10.10.20.199")},
	{Name: "leaf01", RouterMAC: "44:38:39:22:dd:01", Config: leaf("leaf01", nil)},
	{Name: "leaf02", RouterMAC: "44:38:39:22:dd:02", Config: leaf("leaf01", pair("65101", "65102", "10.10.10.1", "10.10.10.2"))},
	{Name: "leaf03", RouterMAC: "44:38:39:22:dd:03", Config: leaf("leaf03", nil)},
	{Name: "leaf04", RouterMAC: "44:38:39:22:dd:04", Config: leaf("leaf03", pair("65201", "65202", "10.10.20.1", "10.10.20.2"))},
	{Name: "borderleaf01", RouterMAC: "44:38:39:22:dd:06", Config: file("borderleaf01.cfg")},
	{Name: "borderleaf04", RouterMAC: "44:38:39:22:dd:09", Config: file("borderleaf04.cfg")},
}

// Links: each leaf and border leaf has swp1 and swp2 to its site's spine;
// the border leafs meet on swp3 (the DCI).
var Links = []Link{
	{Port{"leaf01", "swp1"}, Port{"spine1", "swp1"}}, {Port{"leaf01", "swp2"}, Port{"spine1", "swp2"}},
	{Port{"leaf02", "swp1"}, Port{"spine1", "swp3"}}, {Port{"leaf02", "swp2"}, Port{"spine1", "swp4"}},
	{Port{"borderleaf01", "swp1"}, Port{"spine1", "swp5"}}, {Port{"borderleaf01", "swp2"}, Port{"spine1", "swp6"}},
	{Port{"leaf03", "swp1"}, Port{"spine2", "swp1"}}, {Port{"leaf03", "swp2"}, Port{"spine2", "swp2"}},
	{Port{"leaf04", "swp1"}, Port{"spine2", "swp3"}}, {Port{"leaf04", "swp2"}, Port{"spine2", "swp4"}},
	{Port{"borderleaf04", "swp1"}, Port{"spine2", "swp5"}}, {Port{"borderleaf04", "swp2"}, Port{"spine2", "swp6"}},
	{Port{"borderleaf01", "swp3"}, Port{"borderleaf04", "swp3"}},
}

// Hosts: the guide's addresses, each on both leafs of its site.
var Hosts = []Host{
	{Name: "red1", Addr: "192.168.1.10/24", Gateway: "192.168.1.1", Ports: []Port{{"leaf01", "swp10"}, {"leaf02", "swp10"}}},
	{Name: "green1", Addr: "192.168.2.10/24", Gateway: "192.168.2.1", Ports: []Port{{"leaf01", "swp20"}, {"leaf02", "swp20"}}},
	{Name: "red2", Addr: "192.168.10.110/24", Gateway: "192.168.10.1", Ports: []Port{{"leaf03", "swp10"}, {"leaf04", "swp10"}}},
	{Name: "green2", Addr: "192.168.20.110/24", Gateway: "192.168.20.1", Ports: []Port{{"leaf03", "swp20"}, {"leaf04", "swp20"}}},
	{Name: "blue1", Addr: "192.168.3.10/24", Gateway: "192.168.3.1", Ports: []Port{{"leaf01", "swp30"}}},
}

func file(name string) func(bool) (string, error) {
	return func(bool) (string, error) {
		b, err := configs.ReadFile("configs/" + name)
		return string(b), err
	}
}

// pair rewrites a leaf's configuration for the other leaf of its pair:
// its AS and loopback; BLUE lives on leaf01 only.
func pair(asn, asn2, lo, lo2 string) func(string) string {
	addr := regexp.MustCompile(regexp.QuoteMeta(lo) + `\b`)
	return func(cfg string) string {
		var keep []string
		for _, line := range strings.Split(cfg, "\n") {
			if !strings.Contains(line, "BLUE") && !strings.Contains(line, "swp30") {
				keep = append(keep, line)
			}
		}
		return addr.ReplaceAllString(strings.ReplaceAll(strings.Join(keep, "\n"), asn, asn2), lo2)
	}
}

// leaf is the guide's listing of base plus the lines it leaves out,
// rewritten for the other leaf of the pair.
func leaf(base string, rewrite func(string) string) func(bool) (string, error) {
	return func(bool) (string, error) {
		guide, err := configs.ReadFile("configs/" + base + ".guide")
		if err != nil {
			return "", err
		}
		extra, err := configs.ReadFile("configs/" + base + ".extra")
		if err != nil {
			return "", err
		}
		cfg := string(guide) + "\n" + string(extra)
		if rewrite != nil {
			cfg = rewrite(cfg)
		}
		return cfg, nil
	}
}

func spine(asn, loopback string) func(bool) (string, error) {
	return func(frr bool) (string, error) {
		b, err := configs.ReadFile("configs/spine.cfg")
		cfg := strings.NewReplacer("ASN", asn, "LOOPBACK", loopback).Replace(string(b))
		if frr && asn == "65199" {
			cfg += "nv set vrf default router bgp neighbor swp7 peer-group underlay\nnv set vrf default router bgp neighbor swp7 type unnumbered\n"
		}
		return cfg, err
	}
}

func (l *Lab) ns(node string) string      { return l.Prefix + node }
func (l *Lab) name() string               { return strings.TrimSuffix(l.Prefix, "-") }
func (l *Lab) runDir() string             { return "/run/xleaf-lab/" + l.name() }
func (l *Lab) pinPath(node string) string { return filepath.Join(bpfDir, l.Prefix+node) }

// bpfDir is the labs' bpf filesystem, mounted once from the host's mount
// namespace and kept: 'ip netns exec' gives each xleafd a mount namespace
// of its own with a fresh /sys, where a bpffs it mounted would go with it,
// and its pinned tables with it. Mounts under /run reach it from the host.
const bpfDir = "/run/xleaf-lab/bpf"

// mountBPF mounts bpfDir unless it is mounted.
func mountBPF() error {
	var st unix.Statfs_t
	if unix.Statfs(bpfDir, &st) == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(bpfDir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("bpf", bpfDir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount the lab's bpf filesystem on %s: %w", bpfDir, err)
	}
	return nil
}

// Socket is where a switch's xleafd answers xleafctl.
func (l *Lab) Socket(node string) string { return filepath.Join(l.runDir(), node+".sock") }

// LogDir holds the agents' logs (xleafd's, and FRR's leaf's zebra and
// bgpd). Down keeps them, so a run that failed leaves something to read;
// Up moves the last run's into previous/ before it starts anything.
func (l *Lab) LogDir() string { return "/var/tmp/xleaf-lab-logs/" + l.name() }

// LogFile is a switch's xleafd log.
func (l *Lab) LogFile(node string) string { return filepath.Join(l.LogDir(), node+".log") }

// AgentsStarted is when Up started the xleafd processes: what a
// convergence time counts from.
func (l *Lab) AgentsStarted() time.Time { return l.started }

// rotateLogs moves the last run's logs in dir into previous/, replacing
// what was there; with no logs of a last run, previous/ stays as it is.
func rotateLogs(dir string) error {
	prev := filepath.Join(dir, "previous")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read log directory: %w", err)
	}
	var last []string
	for _, e := range entries {
		if e.Name() != "previous" {
			last = append(last, e.Name())
		}
	}
	if len(last) > 0 {
		if err := os.RemoveAll(prev); err != nil {
			return fmt.Errorf("remove old logs: %w", err)
		}
		if err := os.MkdirAll(prev, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", prev, err)
		}
		for _, name := range last {
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(prev, name)); err != nil {
				return fmt.Errorf("move last run's logs aside: %w", err)
			}
		}
	}
	// FRR's daemons run as frr and must reach their files here.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	return os.Chmod(dir, 0o755)
}

func (l *Lab) logf(format string, args ...any) {
	if l.Log != nil {
		l.Log(format, args...)
	}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Exec runs a command in a node's namespace.
func (l *Lab) Exec(node string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.ns(node)}, args...)...).CombinedOutput()
	return string(out), err
}

// Up cleans up what an earlier run left, then builds the fabric and
// starts every xleafd. It returns once the processes run; Converge waits
// for BGP.
func (l *Lab) Up(ctx context.Context) error {
	l.Down()
	if err := rotateLogs(l.LogDir()); err != nil {
		return err
	}
	if err := os.MkdirAll(l.runDir(), 0o700); err != nil {
		return err
	}
	if err := mountBPF(); err != nil {
		return err
	}
	for _, sw := range Switches {
		if err := l.addNamespace(sw.Name); err != nil {
			return err
		}
		for _, kv := range [][2]string{{"net.ipv4.conf.all.forwarding", "1"}, {"net.ipv6.conf.all.forwarding", "1"}} {
			if err := run("ip", "netns", "exec", l.ns(sw.Name), "sysctl", "-qw", kv[0]+"="+kv[1]); err != nil {
				return err
			}
		}
	}
	for i, lk := range Links {
		if err := l.link(i, lk.A, lk.B, UnderlayMTU); err != nil {
			return err
		}
	}
	for _, h := range Hosts {
		if err := l.addHost(h); err != nil {
			return err
		}
	}
	if err := l.crowd(); err != nil {
		return err
	}
	if l.FRR {
		if err := l.UpFRR(); err != nil {
			return err
		}
	}
	l.started = time.Now()
	for _, sw := range Switches {
		if err := l.start(sw); err != nil {
			return err
		}
	}
	return nil
}

// crowdEntries is how many permanent neighbour entries per family the
// crowd namespace holds.
const crowdEntries = 200

// crowd fills the kernel's neighbour tables as a production leaf's are:
// with more entries than gc_thresh1 (128 by default) in a family's table,
// which every namespace shares, the kernel's periodic collection runs and
// deletes entries STALE and unused for 60 s. Permanent entries, in a
// namespace of their own, on a veth pair nothing else uses.
func (l *Lab) crowd() error {
	ns := "crowd"
	if err := l.addNamespace(ns); err != nil {
		return err
	}
	if err := run("ip", "-n", l.ns(ns), "link", "add", "name", "cra", "type", "veth", "peer", "name", "crb"); err != nil {
		return err
	}
	for _, dev := range []string{"cra", "crb"} {
		if err := run("ip", "-n", l.ns(ns), "link", "set", dev, "up"); err != nil {
			return err
		}
	}
	var batch strings.Builder
	for i := range crowdEntries {
		fmt.Fprintf(&batch, "neigh add 10.254.%d.%d lladdr 02:00:00:00:fe:01 dev cra nud permanent\n", i/256, i%256)
		fmt.Fprintf(&batch, "neigh add fd00:fe::%x lladdr 02:00:00:00:fe:01 dev cra nud permanent\n", i)
	}
	cmd := exec.Command("ip", "-n", l.ns(ns), "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("crowd the neighbour tables: %v: %s", err, out)
	}
	return nil
}

func (l *Lab) addNamespace(node string) error {
	if err := run("ip", "netns", "add", l.ns(node)); err != nil {
		return err
	}
	return run("ip", "-n", l.ns(node), "link", "set", "lo", "up")
}

// UnderlayMTU is the fabric links' MTU: room for a full 1500-byte tenant
// frame plus VXLAN's 50 bytes, as a fabric runs jumbo frames; it stays
// under the ~3500 bytes XDP allows on a veth.
const UnderlayMTU = 3000

// link makes a veth pair between two ports.
func (l *Lab) link(i int, a, b Port, mtu int) error {
	ta, tb := fmt.Sprintf("%sa%d", l.Prefix, i), fmt.Sprintf("%sb%d", l.Prefix, i)
	args := []string{"ip", "link", "add", ta, "mtu", strconv.Itoa(mtu), "type", "veth", "peer", "name", tb, "mtu", strconv.Itoa(mtu)}
	if err := run(args...); err != nil {
		return err
	}
	for _, end := range []struct {
		tmp string
		p   Port
	}{{ta, a}, {tb, b}} {
		if err := run("ip", "link", "set", end.tmp, "netns", l.ns(end.p.Node), "name", end.p.If); err != nil {
			return err
		}
		if err := run("ip", "-n", l.ns(end.p.Node), "link", "set", end.p.If, "up"); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) addHost(h Host) error {
	if err := l.addNamespace(h.Name); err != nil {
		return err
	}
	for i, p := range h.Ports {
		ifname := "eth" + strconv.Itoa(i)
		if err := l.link(100+10*hostIndex(h.Name)+i, p, Port{h.Name, ifname}, 1500); err != nil {
			return err
		}
		if err := run("ip", "-n", l.ns(h.Name), "addr", "add", h.Addr, "dev", ifname); err != nil {
			return err
		}
		// nodad: the address is usable at once (the pair's two links
		// are separate segments: no one else has it).
		if err := run("ip", "-n", l.ns(h.Name), "-6", "addr", "add", Twin6(h.Addr), "dev", ifname, "nodad"); err != nil {
			return err
		}
		// A veth takes frames an XDP program redirects into it only when
		// its own end runs XDP too.
		if err := l.attachPass(h.Name, ifname); err != nil {
			return err
		}
		// On the wire a NIC fills in checksums and cuts segments; between
		// veths the kernel skips both, and XDP would forward a TCP segment
		// with half a checksum, or one bigger than the MTU. A host here
		// does them itself, as a host behind a real NIC seems to.
		if err := run("ip", "netns", "exec", l.ns(h.Name), "ethtool", "-K", ifname, "tx", "off", "gso", "off"); err != nil {
			return err
		}
	}
	if err := run("ip", "-n", l.ns(h.Name), "route", "add", "default", "via", h.Gateway, "dev", "eth0"); err != nil {
		return err
	}
	return run("ip", "-n", l.ns(h.Name), "-6", "route", "add", "default", "via", Twin6(h.Gateway), "dev", "eth0")
}

func hostIndex(name string) int {
	for i, h := range Hosts {
		if h.Name == name {
			return i
		}
	}
	return 0
}

// attachPass puts a pass-everything XDP program on a host's interface,
// attached through netlink so it stays when this process exits.
func (l *Lab) attachPass(node, ifname string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		return fmt.Errorf("xdp pass program: %w", err)
	}
	defer prog.Close()
	return netns.Enter(l.ns(node), func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		return netlink.LinkSetXdpFd(link, prog.FD())
	})
}

// start runs a switch's xleafd in its namespace, detached.
func (l *Lab) start(sw Switch) error {
	cfg, err := sw.Config(l.FRR)
	if err != nil {
		return err
	}
	cfg = Twin6Config(cfg)
	cfgPath := filepath.Join(l.runDir(), sw.Name+".cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	// Appended to: a restarted agent's log follows the one it replaces.
	logf, err := os.OpenFile(l.LogFile(sw.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== xleaflab: xleafd on %s started at %s\n", sw.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", "netns", "exec", l.ns(sw.Name), filepath.Join(l.Bin, "xleafd"),
		"--config", cfgPath, "--pin-path", l.pinPath(sw.Name), "--socket", l.Socket(sw.Name),
		"--router-mac", sw.RouterMAC, "--metrics-listen", "", "--grace", "10s")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start xleafd on %s: %w", sw.Name, err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return os.WriteFile(filepath.Join(l.runDir(), sw.Name+".pid"), []byte(strconv.Itoa(pid)), 0o600)
}

// Stop kills a switch's xleafd (its data path keeps forwarding).
func (l *Lab) Stop(node string) error {
	if _, err := os.Stat(filepath.Join(l.runDir(), node+".pid")); err != nil {
		return err
	}
	if pid := l.pid(node); pid > 0 {
		syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && processAlive(pid); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		// Two agents must never share a switch: one that has not gone in
		// 5 s goes now.
		if processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 20 && processAlive(pid); i++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return os.Remove(filepath.Join(l.runDir(), node+".pid"))
}

// Restart starts a stopped switch's xleafd again.
func (l *Lab) Restart(node string) error {
	for _, sw := range Switches {
		if sw.Name == node {
			return l.start(sw)
		}
	}
	return fmt.Errorf("no switch %s", node)
}

// Down stops every xleafd and removes every namespace, pin path and run
// file of this lab's prefix. The logs stay (LogDir).
func (l *Lab) Down() {
	pids, _ := filepath.Glob(filepath.Join(l.runDir(), "*.pid"))
	for _, p := range pids {
		l.Stop(strings.TrimSuffix(filepath.Base(p), ".pid"))
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.Prefix) {
			// Processes still inside (a crashed run's) go with it.
			out, _ := exec.Command("ip", "netns", "pids", e.Name()).Output()
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
	pins, _ := filepath.Glob(filepath.Join(bpfDir, l.Prefix+"*"))
	for _, p := range pins {
		os.RemoveAll(p)
	}
	os.RemoveAll(l.runDir())
	os.RemoveAll(l.frrDir())
}

// Ctl runs xleafctl against a switch and decodes its JSON into v.
func (l *Lab) Ctl(node string, v any, args ...string) error {
	out, err := exec.Command(filepath.Join(l.Bin, "xleafctl"), append([]string{"--socket", l.Socket(node), "-o", "json"}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return fmt.Errorf("xleafctl on %s %s: %s", node, strings.Join(args, " "), strings.TrimSpace(string(ee.Stderr)))
		}
		return err
	}
	return json.Unmarshal(out, v)
}

// CtlText runs xleafctl against a switch and returns its text.
func (l *Lab) CtlText(node string, args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(l.Bin, "xleafctl"), append([]string{"--socket", l.Socket(node)}, args...)...).CombinedOutput()
	return string(out), err
}

// Announce has every host speak on each of its links (as a booting
// server's ARP would), so both leafs learn it and advertise it. The pings
// go out together: one unanswered costs a second, not a second each.
func (l *Lab) Announce() { l.announce(context.Background()) }

func (l *Lab) announce(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range Hosts {
		for i := range h.Ports {
			for _, gw := range []string{h.Gateway, Twin6(h.Gateway)} {
				wg.Go(func() {
					exec.CommandContext(ctx, "ip", "netns", "exec", l.ns(h.Name),
						"ping", "-c", "1", "-W", "1", "-I", "eth"+strconv.Itoa(i), gw).Run()
				})
			}
		}
	}
	wg.Wait()
}

// HostAddr6 is a host's IPv6 address without its prefix length.
func HostAddr6(name string) string {
	if name == FRRHost {
		return FRRHostAddr6
	}
	return Twin6(HostAddr(name))
}

// HostAddr is a host's address without its prefix length.
func HostAddr(name string) string {
	if name == FRRHost {
		return FRRHostAddr
	}
	for _, h := range Hosts {
		if h.Name == name {
			ip, _, _ := net.ParseCIDR(h.Addr)
			return ip.String()
		}
	}
	return ""
}
