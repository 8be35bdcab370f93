package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/xleaf/xleaf/control/show"
)

// Flow is a ping from one host to another and what it should do.
type Flow struct {
	From, To string
	Path     string // what it crosses
	Hops     int    // routed hops each way (TTL decrements); 0 = must not arrive
	V6       bool   // between the hosts' IPv6 addresses (hop limit for TTL)
}

// Flows are the leak paths of the guide, and BLUE's isolation.
var Flows = []Flow{
	{"red1", "green2", "RED site 1 -> GREEN site 2 (leaked at borderleaf04)", 3, false},
	{"green2", "red1", "GREEN site 2 -> RED site 1 (leaked at borderleaf01)", 3, false},
	{"green1", "red2", "GREEN site 1 -> RED site 2", 3, false},
	{"red2", "green1", "RED site 2 -> GREEN site 1", 3, false},
	{"red1", "green1", "RED -> GREEN within site 1 (leaked on the leaf)", 1, false},
	{"green2", "red2", "GREEN -> RED within site 2 (leaked on the leaf)", 1, false},
	{"blue1", "red1", "BLUE -> RED (BLUE is imported by no one)", 0, false},
	{"red1", "blue1", "RED -> BLUE", 0, false},
}

// Result is what a flow did.
type Result struct {
	Flow
	Sent, Received int
	TTLs           []int  // of the echo replies
	Forwarded      uint64 // XDP forward-* counters moved, all switches
	KernelRouted   uint64 // datagrams the leafs' kernels forwarded meanwhile
	Output         string
}

// OK says whether the flow did what it should.
func (r Result) OK() bool {
	if r.Hops == 0 {
		return r.Received == 0
	}
	if r.Received != r.Sent || r.KernelRouted != 0 || r.Forwarded == 0 {
		return false
	}
	for _, ttl := range r.TTLs {
		if ttl != 64-r.Hops {
			return false
		}
	}
	return len(r.TTLs) > 0
}

const pings = 5

var ttlRe = regexp.MustCompile(`ttl=(\d+)`)

// Traffic runs every flow, IPv4's then their IPv6 twins.
func (l *Lab) Traffic(ctx context.Context) ([]Result, error) {
	var out []Result
	for _, f := range append(slices.Clone(Flows), Flows6...) {
		r, err := l.RunFlow(f)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// RunFlow pings f.To from f.From and measures what moved.
func (l *Lab) RunFlow(f Flow) (Result, error) {
	r := Result{Flow: f, Sent: pings}
	fwdBefore, err := l.forwarded()
	if err != nil {
		return r, err
	}
	kBefore := l.kernelForwarded()
	to, family := HostAddr(f.To), "-4"
	if f.V6 {
		to, family = HostAddr6(f.To), "-6"
	}
	out, _ := l.Exec(f.From, "ping", family, "-c", strconv.Itoa(pings), "-i", "0.2", "-W", "2", "-s", "300", "-p", "78656166", to)
	r.Output = out
	if m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out); m != nil {
		r.Received, _ = strconv.Atoi(m[1])
	}
	for _, m := range ttlRe.FindAllStringSubmatch(out, -1) {
		ttl, _ := strconv.Atoi(m[1])
		r.TTLs = append(r.TTLs, ttl)
	}
	fwdAfter, err := l.forwarded()
	if err != nil {
		return r, err
	}
	r.Forwarded = fwdAfter - fwdBefore
	r.KernelRouted = l.kernelForwarded() - kBefore
	return r, nil
}

// Underlays is every running agent's show underlay, by switch.
func (l *Lab) Underlays() (map[string]show.Underlay, error) {
	out := map[string]show.Underlay{}
	for _, sw := range Switches {
		if _, err := os.Stat(filepath.Join(l.runDir(), sw.Name+".pid")); err != nil {
			continue
		}
		var u show.Underlay
		if err := l.Ctl(sw.Name, &u, "show", "underlay"); err != nil {
			return nil, err
		}
		out[sw.Name] = u
	}
	return out, nil
}

// forwarded sums the XDP forward counters of every switch whose agent
// runs (a stopped one's data path still forwards, unseen).
func (l *Lab) forwarded() (uint64, error) {
	var n uint64
	for _, sw := range Switches {
		if _, err := os.Stat(filepath.Join(l.runDir(), sw.Name+".pid")); err != nil {
			continue
		}
		var cs show.Counters
		if err := l.Ctl(sw.Name, &cs, "show", "counters"); err != nil {
			return 0, err
		}
		for _, c := range cs {
			if strings.HasPrefix(c.Reason, "forward-") {
				n += c.Packets
			}
		}
	}
	return n, nil
}

// kernelForwarded sums the IPv4 and IPv6 datagrams the leafs' kernels
// routed: they must route no tenant packet (spines and border leafs route
// the underlay's VXLAN in the kernel, as transit).
func (l *Lab) kernelForwarded() uint64 {
	var n uint64
	for _, sw := range Switches {
		if !strings.HasPrefix(sw.Name, "leaf") {
			continue
		}
		if out, err := l.Exec(sw.Name, "cat", "/proc/net/snmp6"); err == nil {
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "Ip6OutForwDatagrams" {
					v, _ := strconv.ParseUint(f[1], 10, 64)
					n += v
				}
			}
		}
		out, err := l.Exec(sw.Name, "cat", "/proc/net/snmp")
		if err != nil {
			continue
		}
		lines := strings.Split(out, "\n")
		if len(lines) < 2 {
			continue
		}
		names, values := strings.Fields(lines[0]), strings.Fields(lines[1])
		for i, name := range names {
			if name == "ForwDatagrams" && i < len(values) {
				v, _ := strconv.ParseUint(values[i], 10, 64)
				n += v
			}
		}
	}
	return n
}

// Summary is the results as a table.
func Summary(rs []Result) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flow\tsent\treceived\treply ttl\tXDP forwarded\tkernel routed\tok")
	for _, r := range rs {
		ttl := "-"
		if len(r.TTLs) > 0 {
			ttl = strconv.Itoa(r.TTLs[0])
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%v\n", r.Path, r.Sent, r.Received, ttl, r.Forwarded, r.KernelRouted, r.OK())
	}
	tw.Flush()
	return b.String()
}

// LeakCells is every switch's leak matrix: packets by (from, to).
func (l *Lab) LeakCells() (map[string]map[[2]string]uint64, error) {
	out := map[string]map[[2]string]uint64{}
	for _, sw := range Switches {
		var m show.LeakMatrix
		if err := l.Ctl(sw.Name, &m, "show", "vrf", "leak-matrix"); err != nil {
			return nil, err
		}
		cells := map[[2]string]uint64{}
		for _, c := range m.Cells {
			cells[[2]string{c.From, c.To}] = c.Packets
		}
		out[sw.Name] = cells
	}
	return out, nil
}

// ExplainDCI is the explain of the guide's leaked DCI flow at the border
// leaf that leaks it: red1 (RED, site 1) to green2 (GREEN, site 2), as it
// arrives at borderleaf04 over the DCI in VXLAN from leaf01 with site 2's
// RED VNI.
var ExplainDCI = struct {
	Node string
	Args []string
}{"borderleaf04", []string{"explain", "in", "swp3", "vni", "5001", "outer-src", "10.10.10.1", "from", "192.168.1.10", "to", "192.168.20.110"}}
