package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FRR's leaf: an implementation nobody here wrote, in site 1 on spine1's
// swp7. FRR 8.4 with its network-namespace VRF backend (this kernel has no
// VRF devices) and Linux kernel VXLAN: VRF RED is the namespace that
// zebra sees as "RED", with vxlan4001 under a bridge whose MAC is the
// router MAC, and host red5 behind it.
const (
	FRRLeaf      = "leaf05"
	FRRLoopback  = "10.10.10.5"
	FRRRouterMAC = "44:38:39:22:dd:05"
	FRRHost      = "red5"
	FRRHostAddr  = "192.168.5.10"
	FRRSubnet    = "192.168.5.0/24"
	FRRHostAddr6 = "2001:db8:5::10"
	frrBin       = "/usr/lib/frr"
)

// FRRFlows cross between FRR's leaf and xleaf's, one through a leak on
// borderleaf01. Hops count the reply's routed hops (the FRR leaf's kernel
// routes too).
var FRRFlows = []Flow{
	{FRRHost, "red1", "RED behind FRR -> RED behind xleaf leafs", 2, false},
	{"red1", FRRHost, "RED behind xleaf leafs -> RED behind FRR", 2, false},
	{FRRHost, "green1", "RED behind FRR -> GREEN site 1 (leaked at borderleaf01)", 2, false},
	{"green1", FRRHost, "GREEN site 1 -> RED behind FRR (leaked on leaf01)", 3, false},
}

// FRRFlows6 are their IPv6 twins: FRR's leaf advertises and imports IPv6
// Type-5 routes too.
var FRRFlows6 = twins(FRRFlows)

// HaveFRR says whether FRR is installed.
func HaveFRR() bool {
	_, err := os.Stat(filepath.Join(frrBin, "bgpd"))
	return err == nil
}

func (l *Lab) frrDir() string { return "/var/tmp/xleaf-lab-frr/" + strings.TrimSuffix(l.Prefix, "-") }

const frrZebra = `hostname leaf05
debug zebra vxlan
vrf RED
 vni 4001
exit-vrf
`

// frrBGP: eBGP unnumbered to the spine, EVPN Type-5 for RED. FRR 8.4 has
// no route-target wildcard (ANY:N came in 8.5), so RED imports the site's
// targets by name: the xleaf leafs' and borderleaf01's.
//
// RED keeps one path per prefix (maximum-paths 1). FRR 8.4's zebra loses
// a VTEP's router MAC when an EVPN-imported route grows from one path to
// two: bgpd withdraws the old path and announces the pair, and zebra drops
// the VTEP's router MAC with the withdrawal (that VTEP had no other
// prefix) without adding it back with the announcement (debug zebra rib:
// "L3VNI 4001 RMAC ... delete" between the two, no add after). Whichever of
// leaf01 and leaf02 FRR hears first then black-holes until that VTEP sends
// a new prefix. With one path per prefix a route never grows into a pair;
// FRRRMACs checks that every VTEP FRR routes to has its router MAC.
//
// RED exports an IPv4-address-specific route target (10.10.10.5:4001),
// which the xleaf leafs' ANY:4001 imports must take.
//
// Graceful restart: full (restarting and helper), forwarding kept across a
// bgpd restart (zebra stays). FRR 8.4 has it for IPv4 unicast only, not
// l2vpn-evpn.
const frrBGP = `hostname leaf05
router bgp 65105
 bgp router-id 10.10.10.5
 no bgp ebgp-requires-policy
 bgp graceful-restart
 bgp graceful-restart preserve-fw-state
 neighbor swp1 interface remote-as external
 address-family ipv4 unicast
  network 10.10.10.5/32
 exit-address-family
 address-family l2vpn evpn
  neighbor swp1 activate
  advertise-all-vni
 exit-address-family
exit
router bgp 65105 vrf RED
 bgp router-id 10.10.10.5
 no bgp ebgp-requires-policy
 address-family ipv4 unicast
  redistribute connected
  maximum-paths 1
  maximum-paths ibgp 1
 exit-address-family
 address-family ipv6 unicast
  redistribute connected
  maximum-paths 1
  maximum-paths ibgp 1
 exit-address-family
 address-family l2vpn evpn
  advertise ipv4 unicast
  advertise ipv6 unicast
  route-target export 10.10.10.5:4001
  route-target import 65101:4001
  route-target import 65102:4001
  route-target import 65110:4001
 exit-address-family
exit
`

// UpFRR adds FRR's leaf to a running lab: its namespaces, the link to
// spine1 (whose configuration already has swp7), the host, and zebra and
// bgpd started by hand as the notes describe.
func (l *Lab) UpFRR() error {
	if !HaveFRR() {
		return fmt.Errorf("FRR is not installed (apt-get install frr)")
	}
	leaf, vrf := FRRLeaf, FRRLeaf+"-RED"
	for _, n := range []string{leaf, vrf} {
		if err := l.addNamespace(n); err != nil {
			return err
		}
		for _, kv := range []string{"net.ipv4.conf.all.forwarding=1", "net.ipv6.conf.all.forwarding=1"} {
			if err := run("ip", "netns", "exec", l.ns(n), "sysctl", "-qw", kv); err != nil {
				return err
			}
		}
	}
	if err := l.link(200, Port{leaf, "swp1"}, Port{"spine1", "swp7"}, UnderlayMTU); err != nil {
		return err
	}
	ipn := func(n string, args ...string) error { return run(append([]string{"ip", "-n", l.ns(n)}, args...)...) }
	steps := [][]string{
		{leaf, "addr", "add", FRRLoopback + "/32", "dev", "lo"},
		{leaf, "link", "add", "vxlan4001", "type", "vxlan", "id", "4001", "local", FRRLoopback, "dstport", "4789", "nolearning"},
		{leaf, "link", "set", "vxlan4001", "netns", l.ns(vrf)},
		{vrf, "link", "add", "br4001", "address", FRRRouterMAC, "type", "bridge"},
		{vrf, "link", "set", "vxlan4001", "master", "br4001"},
		{vrf, "link", "set", "vxlan4001", "up"},
		{vrf, "link", "set", "br4001", "up"},
	}
	for _, s := range steps {
		if err := ipn(s[0], s[1:]...); err != nil {
			return err
		}
	}
	// The tenant port in the VRF namespace, and the host behind it.
	if err := l.addNamespace(FRRHost); err != nil {
		return err
	}
	if err := l.link(201, Port{vrf, "swp10"}, Port{FRRHost, "eth0"}, 1500); err != nil {
		return err
	}
	for _, s := range [][]string{
		{vrf, "addr", "add", "192.168.5.1/24", "dev", "swp10"},
		{vrf, "-6", "addr", "add", "2001:db8:5::1/64", "dev", "swp10", "nodad"},
		{FRRHost, "addr", "add", FRRHostAddr + "/24", "dev", "eth0"},
		{FRRHost, "-6", "addr", "add", FRRHostAddr6 + "/64", "dev", "eth0", "nodad"},
		{FRRHost, "route", "add", "default", "via", "192.168.5.1"},
		{FRRHost, "-6", "route", "add", "default", "via", "2001:db8:5::1"},
	} {
		if err := ipn(s[0], s[1:]...); err != nil {
			return err
		}
	}
	// The kernel path leaves checksums and segmentation to a NIC that is
	// not there; XDP at the far end would forward them unfinished.
	for _, p := range []Port{{leaf, "swp1"}, {vrf, "swp10"}, {FRRHost, "eth0"}} {
		if err := run("ip", "netns", "exec", l.ns(p.Node), "ethtool", "-K", p.If, "tx", "off", "gso", "off"); err != nil {
			return err
		}
	}
	return l.startFRR()
}

// startFRR runs zebra (with the namespace VRF backend) and then bgpd in
// the leaf's namespace. zebra -n adopts every file in /run/netns as a VRF, so
// it runs in a mount namespace whose /run/netns holds only "RED".
func (l *Lab) startFRR() error {
	dir := l.frrDir()
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Chmod(filepath.Dir(dir), 0o755)
	frr, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("frr user: %w", err)
	}
	uid, _ := strconv.Atoi(frr.Uid)
	gid, _ := strconv.Atoi(frr.Gid)
	for name, text := range map[string]string{"zebra.conf": frrZebra, "bgpd.conf": frrBGP, "vtysh.conf": ""} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
			return err
		}
		os.Chown(p, uid, gid)
	}
	os.Chown(dir, uid, gid)
	// The logs go with xleafd's (LogDir), which Down keeps; frr writes them.
	zlog, blog := filepath.Join(l.LogDir(), FRRLeaf+"-zebra.log"), filepath.Join(l.LogDir(), FRRLeaf+"-bgpd.log")
	for _, p := range []string{zlog, blog} {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("FRR log: %w", err)
		}
		f.Close()
		os.Chown(p, uid, gid)
	}
	script := fmt.Sprintf(`set -e
mkdir -p %[1]s/keep && touch %[1]s/keep/RED
mount --bind /run/netns/%[2]s %[1]s/keep/RED
mount -t tmpfs tmpfs /run/netns
touch /run/netns/RED
mount --bind %[1]s/keep/RED /run/netns/RED
%[3]s/zebra -d -n -f %[1]s/zebra.conf -i %[1]s/zebra.pid -z %[1]s/zserv.api --vty_socket %[1]s --log file:%[4]s
# bgpd only once zebra has VRF RED and its L3VNI: routes imported before
# that can miss their router MAC entry in the kernel for good.
for i in $(seq 100); do
	vtysh --vty_socket %[1]s -c 'show evpn vni' 2>/dev/null | grep -q 'RED' && break
	sleep 0.1
done
%[3]s/bgpd -d -f %[1]s/bgpd.conf -i %[1]s/bgpd.pid -z %[1]s/zserv.api --vty_socket %[1]s --log file:%[5]s
`, dir, l.ns(FRRLeaf+"-RED"), frrBin, zlog, blog)
	cmd := exec.Command("ip", "netns", "exec", l.ns(FRRLeaf), "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start FRR: %v: %s", err, out)
	}
	return nil
}

// RestartFRRBGP kills FRR's bgpd (as a crash would: no notification to
// its peers) and starts it again at once, with zebra left running.
func (l *Lab) RestartFRRBGP() error {
	if err := l.KillFRRBGP(); err != nil {
		return err
	}
	return l.StartFRRBGP()
}

// KillFRRBGP kills FRR's bgpd, as a crash would; zebra keeps running.
func (l *Lab) KillFRRBGP() error {
	dir := l.frrDir()
	b, err := os.ReadFile(filepath.Join(dir, "bgpd.pid"))
	if err != nil {
		return fmt.Errorf("FRR's bgpd: %w", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		return fmt.Errorf("FRR's bgpd: bad pid file %q", b)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; processAlive(pid); i++ {
		if i == 100 {
			return fmt.Errorf("FRR's bgpd (pid %d) did not die", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.Remove(filepath.Join(dir, "bgpd.pid"))
	return nil
}

// StartFRRBGP starts FRR's bgpd again after KillFRRBGP.
func (l *Lab) StartFRRBGP() error {
	dir := l.frrDir()
	blog := filepath.Join(l.LogDir(), FRRLeaf+"-bgpd.log")
	cmd := exec.Command("ip", "netns", "exec", l.ns(FRRLeaf), filepath.Join(frrBin, "bgpd"), "-d", "-f", filepath.Join(dir, "bgpd.conf"),
		"-i", filepath.Join(dir, "bgpd.pid"), "-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "--log", "file:"+blog)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start FRR's bgpd: %v: %s", err, out)
	}
	return nil
}

// Vtysh runs a command on FRR's leaf.
func (l *Lab) Vtysh(command string) (string, error) {
	out, err := exec.Command("vtysh", "--vty_socket", l.frrDir(), "-c", command).CombinedOutput()
	return string(out), err
}

// FRRType5 is a Type-5 route as FRR shows it.
type FRRType5 struct {
	Prefix, NextHop, RouterMAC string
	VNI                        uint32
	RTs                        []string
}

// FRRRoutes lists the Type-5 routes in FRR's EVPN table.
func (l *Lab) FRRRoutes() ([]FRRType5, error) {
	out, err := l.Vtysh("show bgp l2vpn evpn route detail type prefix json")
	if err != nil {
		return nil, fmt.Errorf("vtysh: %v: %s", err, out)
	}
	// {"<rd>": {"[5]:[0]:[24]:[192.168.1.0]": {"prefix": ..., "paths": [[{...}]]}}}
	var table map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &table); err != nil {
		return nil, fmt.Errorf("frr json: %w", err)
	}
	var routes []FRRType5
	for _, rdRaw := range table {
		var rd map[string]json.RawMessage
		if json.Unmarshal(rdRaw, &rd) != nil {
			continue
		}
		for key, raw := range rd {
			if !strings.HasPrefix(key, "[5]") {
				continue
			}
			var dest struct {
				Paths [][]struct {
					VNI      string                  `json:"vni"`
					ExtComm  struct{ String string } `json:"extendedCommunity"`
					Nexthops []struct {
						IP string `json:"ip"`
					} `json:"nexthops"`
				} `json:"paths"`
			}
			if json.Unmarshal(raw, &dest) != nil {
				continue
			}
			fields := strings.Split(strings.Trim(key, "[]"), "]:[")
			pfx := fields[len(fields)-1] + "/" + fields[len(fields)-2]
			for _, ps := range dest.Paths {
				for _, p := range ps {
					r := FRRType5{Prefix: pfx}
					if vni, err := strconv.ParseUint(p.VNI, 10, 32); err == nil {
						r.VNI = uint32(vni)
					}
					if len(p.Nexthops) > 0 {
						r.NextHop = p.Nexthops[0].IP
					}
					for _, c := range strings.Fields(p.ExtComm.String) {
						switch {
						case strings.HasPrefix(c, "RT:"):
							r.RTs = append(r.RTs, strings.TrimPrefix(c, "RT:"))
						case strings.HasPrefix(c, "Rmac:"):
							r.RouterMAC = strings.TrimPrefix(c, "Rmac:")
						}
					}
					routes = append(routes, r)
				}
			}
		}
	}
	return routes, nil
}

// ConvergeFRR waits until FRR's leaf and the xleaf leafs hold each other's
// routes and a ping from FRR's host gets through: FRR converges on its own
// clock, after the border leafs' tables are the guide's (and their IPv6 twins).
func (l *Lab) ConvergeFRR(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if l.frrReady() {
			return nil
		}
		if time.Now().After(deadline) {
			missing, err := l.FRRRMACs()
			switch {
			case err != nil:
				return fmt.Errorf("FRR's leaf not converged with xleaf's after %v (reading its router MACs: %v)", timeout, err)
			case len(missing) > 0:
				return fmt.Errorf("FRR's leaf not converged with xleaf's after %v: FRR's zebra has no router MAC for %s", timeout, strings.Join(missing, ", "))
			}
			return fmt.Errorf("FRR's leaf not converged with xleaf's after %v", timeout)
		}
		time.Sleep(time.Second)
	}
}

func (l *Lab) frrReady() bool {
	routes, err := l.FRRRoutes()
	if err != nil {
		return false
	}
	seen := map[string]bool{}
	for _, r := range routes {
		if r.Prefix == "192.168.1.0/24" {
			seen[r.NextHop] = true
		}
	}
	red, err := l.XleafTable("leaf01", "RED")
	if err != nil || !seen["10.10.10.1"] || !seen["10.10.10.2"] || red[FRRSubnet].Via == nil {
		return false
	}
	// Every flow the tests then run: to RED, and leaked into GREEN through
	// borderleaf01 (its routes come on their own, later after a restart of
	// spine1: one run of 3 saw them missing 7 s after red1 answered), each
	// family.
	for _, to := range []string{HostAddr("red1"), HostAddr("green1"), HostAddr6("red1"), HostAddr6("green1")} {
		if _, err := l.Exec(FRRHost, "ping", "-c", "1", "-W", "1", to); err != nil {
			return false
		}
	}
	return true
}

// FRRRMACs lists the VTEPs that FRR's RED routes use but for which its
// zebra holds no router MAC: traffic to them is black-holed, since the
// kernel has no neighbour entry for the VTEP on the VXLAN bridge. Empty
// when FRR's EVPN state is whole.
func (l *Lab) FRRRMACs() (missing []string, err error) {
	out, err := l.Vtysh("show evpn next-hops vni 4001 json")
	if err != nil {
		return nil, fmt.Errorf("vtysh: %v: %s", err, out)
	}
	var nhs map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &nhs); err != nil {
		return nil, fmt.Errorf("frr next-hops json: %w", err)
	}
	out, err = l.Vtysh("show ip route vrf RED json")
	if err != nil {
		return nil, fmt.Errorf("vtysh: %v: %s", err, out)
	}
	var table map[string][]struct {
		Protocol  string `json:"protocol"`
		Installed bool   `json:"installed"`
		Nexthops  []struct {
			IP string `json:"ip"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &table); err != nil {
		return nil, fmt.Errorf("frr route json: %w", err)
	}
	seen := map[string]bool{}
	for prefix, routes := range table {
		for _, r := range routes {
			if r.Protocol != "bgp" || !r.Installed {
				continue
			}
			for _, nh := range r.Nexthops {
				if _, ok := nhs[nh.IP]; !ok && nh.IP != "" && !seen[nh.IP] {
					seen[nh.IP] = true
					missing = append(missing, fmt.Sprintf("%s (used by %s)", nh.IP, prefix))
				}
			}
		}
	}
	return missing, nil
}
