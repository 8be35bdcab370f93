package lab

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// Every tenant of the lab is dual-stack: each IPv4 subnet of the guide,
// 192.168.N.0/24, has an IPv6 twin, 2001:db8:N::/64 (N's digits as they
// are), and so has every address in it (192.168.10.110 is 2001:db8:10::110).
// The guide's listings stay as they are; each switch's configuration gets
// the IPv6 twin of each of its tenant lines appended (Twin6Config), and
// each host its twin address; Flows6 are the twins of Flows.

var twinAddr = regexp.MustCompile(`\b192\.168\.(\d{1,3})\.(\d{1,3})(/24)?\b`)

// Twin6 is the IPv6 twin of a tenant address or /24 ("" if it has none).
func Twin6(v4 string) string {
	m := twinAddr.FindStringSubmatch(v4)
	if m == nil || m[0] != v4 {
		return ""
	}
	host := m[2]
	if host == "0" && m[3] != "" {
		host = ""
	}
	out := "2001:db8:" + m[1] + "::" + host
	if m[3] != "" {
		out += "/64"
	}
	return out
}

var (
	twinLine = regexp.MustCompile(`^nv set (interface \S+ ip address|vrf (\S+) router bgp address-family ipv4-unicast) (.*)$`)
	loopback = regexp.MustCompile(`^nv set interface lo ip address 10\.10\.(\d+)\.(\d+)/32$`)
)

// Twin6Config is a switch's configuration with the IPv6 twin of each
// tenant line appended: addresses on tenant ports (192.168.0.0/16), and a
// tenant VRF's ipv4-unicast keys as ipv6-unicast ones (aggregates as
// their twins), and an IPv6 address on the loopback. The default VRF's
// lines have none: the underlay is IPv4.
func Twin6Config(cfg string) string {
	var twins []string
	for _, line := range strings.Split(cfg, "\n") {
		// The loopback's twin is where a VRF without IPv6 ports (a
		// border leaf's) answers ICMPv6 from: 10.10.A.B is
		// 2001:db8:ffff:A::B. The underlay stays IPv4.
		if m := loopback.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			twins = append(twins, "nv set interface lo ip address 2001:db8:ffff:"+m[1]+"::"+m[2]+"/128")
			continue
		}
		m := twinLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || m[2] == "default" {
			continue
		}
		rest := m[3]
		if p := strings.Fields(rest); len(p) > 0 && twinAddr.MatchString(p[len(p)-1]) {
			t := Twin6(p[len(p)-1])
			if t == "" {
				continue
			}
			p[len(p)-1] = t
			rest = strings.Join(p, " ")
		} else if strings.HasPrefix(m[1], "interface") {
			continue // an address that is not a tenant's
		}
		key := strings.Replace(m[1], "ipv4-unicast", "ipv6-unicast", 1)
		twins = append(twins, "nv set "+key+" "+rest)
	}
	if len(twins) == 0 {
		return cfg
	}
	return strings.TrimRight(cfg, "\n") + "\n# The IPv6 twins of the tenant lines above (dual-stack tenants).\n" + strings.Join(twins, "\n") + "\n"
}

// DualStackTables are GuideTables with the IPv6 twin of each route
// beside it: same VTEPs, same label, a blackhole where the guide has one.
// A border leaf holds them all once every host of both families is known
// at its leafs and every subnet of both is advertised.
func DualStackTables() (map[string]Table, error) {
	tables, err := GuideTables()
	if err != nil {
		return nil, err
	}
	for key, t := range tables {
		for prefix, r := range maps.Clone(t) {
			twin := TwinPrefix(prefix)
			if twin == "" {
				return nil, fmt.Errorf("%s: %s has no IPv6 twin", key, prefix)
			}
			t[twin] = r
		}
	}
	return tables, nil
}

// TwinPrefix is the IPv6 twin of a tenant /24 or host /32 ("" if it has
// none): 192.168.1.10/32 is 2001:db8:1::10/128.
func TwinPrefix(v4 string) string {
	if addr, ok := strings.CutSuffix(v4, "/32"); ok {
		if t := Twin6(addr); t != "" {
			return t + "/128"
		}
		return ""
	}
	return Twin6(v4)
}

// Loopback6 is the IPv6 twin of a switch's loopback (10.10.A.B).
func Loopback6(v4 string) string {
	var a, b int
	fmt.Sscanf(v4, "10.10.%d.%d", &a, &b)
	return fmt.Sprintf("2001:db8:ffff:%d::%d", a, b)
}

// Traces6 are Traces' IPv6 twins: the border leafs answer from their
// loopbacks' IPv6 twins, BLUE gets no route (!N).
var Traces6 = []struct {
	From, To string
	Want     []string
}{
	{"red1", "green2", []string{"2001:db8:1::1", Loopback6("10.10.20.11"), "2001:db8:20::1", "2001:db8:20::110"}},
	{"green2", "red1", []string{"2001:db8:20::1", Loopback6("10.10.10.10"), "2001:db8:1::1", "2001:db8:1::10"}},
	{"blue1", "red1", []string{"2001:db8:3::1 !N"}},
}

// Flows6 are the IPv6 twins of Flows.
var Flows6 = twins(Flows)

func twins(fs []Flow) []Flow {
	out := make([]Flow, len(fs))
	for i, f := range fs {
		f.V6, f.Path = true, f.Path+" (IPv6)"
		out[i] = f
	}
	return out
}

// HostNeighbours are the hosts' neighbour entries (IPv4 and IPv6) the
// leafs' kernels hold in a usable state, as "node port address"; and how
// many IPv6 entries the lab's namespaces hold in all (the kernel collects
// unused ones once its table, shared by every namespace, holds
// gc_thresh1, 128 by default).
func (l *Lab) HostNeighbours() (have map[string]bool, entries6 int, err error) {
	have = map[string]bool{}
	for _, h := range Hosts {
		addrs := map[string]bool{strings.Split(h.Addr, "/")[0]: true, strings.Split(Twin6(h.Addr), "/")[0]: true}
		for _, p := range h.Ports {
			out, err := l.Exec(p.Node, "ip", "neigh", "show", "dev", p.If)
			if err != nil {
				return nil, 0, fmt.Errorf("%s: %v: %s", p.Node, err, out)
			}
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) < 2 || !addrs[f[0]] || strings.Contains(line, "FAILED") || strings.Contains(line, "INCOMPLETE") {
					continue
				}
				have[p.Node+" "+p.If+" "+f[0]] = true
			}
		}
	}
	spaces, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil, 0, err
	}
	for _, e := range spaces {
		if !strings.HasPrefix(e.Name(), l.Prefix) {
			continue
		}
		out, err := exec.Command("ip", "-n", e.Name(), "-6", "neigh", "show", "nud", "all").CombinedOutput()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %v: %s", e.Name(), err, out)
		}
		entries6 += strings.Count(string(out), "\n")
	}
	return have, entries6, nil
}
