// Package show holds what xleafctl's show commands display, as data (sent
// as JSON between xleafd and xleafctl, and printed with -o json) and as the
// text a network engineer knows from NVUE and FRR.
package show

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// BGPInfo is `show vrf X evpn bgp-info`.
type BGPInfo struct {
	VRF       string   `json:"vrf"`
	VNI       uint32   `json:"vni"`
	LocalVTEP string   `json:"local-vtep"`
	RouterMAC string   `json:"router-mac"`
	SystemIP  string   `json:"system-ip"`
	SystemMAC string   `json:"system-mac"`
	RD        string   `json:"rd"`
	ExportRTs []string `json:"export-route-target"`
	ImportRTs []string `json:"import-route-target"`
}

// Text prints it the way `nv show vrf X evpn bgp-info` does.
func (b BGPInfo) Text(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\toperational")
	fmt.Fprintln(tw, "---------------------\t-----------------")
	fmt.Fprintf(tw, "local-vtep\t%s\n", b.LocalVTEP)
	fmt.Fprintf(tw, "router-mac\t%s\n", b.RouterMAC)
	fmt.Fprintf(tw, "system-ip\t%s\n", b.SystemIP)
	fmt.Fprintf(tw, "system-mac\t%s\n", b.SystemMAC)
	fmt.Fprintf(tw, "rd\t%s\n", b.RD)
	for _, rt := range b.ExportRTs {
		fmt.Fprintf(tw, "[export-route-target]\t%s\n", rt)
	}
	for _, rt := range b.ImportRTs {
		fmt.Fprintf(tw, "[import-route-target]\t%s\n", rt)
	}
	return tw.Flush()
}

// Nexthop is one ECMP member of a route.
type Nexthop struct {
	Via   string `json:"via,omitempty"`   // remote VTEP
	Label uint32 `json:"label,omitempty"` // VNI, shown when it is not the VRF's
	Iface string `json:"interface,omitempty"`
	VRF   string `json:"vrf,omitempty"` // connected: the port's VRF when leaked
}

// Route is one prefix of `show route vrf X`.
type Route struct {
	Prefix    string    `json:"prefix"`
	Protocol  string    `json:"protocol"` // bgp, connected, local, kernel
	Distance  int       `json:"distance"`
	Metric    int       `json:"metric"`
	Blackhole bool      `json:"blackhole,omitempty"`
	Unreach   bool      `json:"unreachable,omitempty"`
	Installed bool      `json:"installed"`
	Since     time.Time `json:"since"`
	Nexthops  []Nexthop `json:"nexthops,omitempty"`
}

// RouteTable is `show route vrf X`: the IPv4 table, then the IPv6 one, as
// NVUE's `net show route vrf X` prints FRR's two.
type RouteTable struct {
	VRF     string  `json:"vrf"`
	Routes  []Route `json:"routes"`
	Routes6 []Route `json:"routes6"`
}

var protocolCode = map[string]string{"kernel": "K", "connected": "C", "local": "L", "bgp": "B", "static": "S"}

const routeCodes = `Codes: K - kernel route, C - connected, L - local, S - static, B - BGP,
       > - selected route, * - FIB route, r - rejected`

// Text prints the tables the way FRR's `show ip route vrf X` and `show
// ipv6 route vrf X` do.
func (t RouteTable) Text(w io.Writer, now time.Time) error {
	fmt.Fprintf(w, "show ip route vrf %s\n%s\n", t.VRF, strings.Repeat("=", len("show ip route vrf ")+len(t.VRF)))
	routesText(w, t.VRF, t.Routes, now)
	fmt.Fprintf(w, "\n\nshow ipv6 route vrf %s\n%s\n", t.VRF, strings.Repeat("=", len("show ipv6 route vrf ")+len(t.VRF)))
	routesText(w, t.VRF, t.Routes6, now)
	return nil
}

func routesText(w io.Writer, vrf string, routes []Route, now time.Time) {
	fmt.Fprintf(w, "%s\n\nVRF %s:\n", routeCodes, vrf)
	for _, r := range routes {
		fib := "*"
		if !r.Installed {
			fib = "r"
		}
		head := fmt.Sprintf("%s>%s %s", protocolCode[r.Protocol], fib, r.Prefix)
		age := uptime(now.Sub(r.Since))
		switch {
		case r.Unreach:
			fmt.Fprintf(w, "%s [%d/%d] unreachable (ICMP unreachable), %s\n", head, r.Distance, r.Metric, age)
		case r.Blackhole:
			fmt.Fprintf(w, "%s [%d/%d] unreachable (blackhole), weight 1, %s\n", head, r.Distance, r.Metric, age)
		case r.Protocol == "connected" || r.Protocol == "local":
			nh := r.Nexthops[0]
			via := nh.Iface
			if nh.VRF != "" && nh.VRF != vrf {
				via += " (vrf " + nh.VRF + ")"
			}
			fmt.Fprintf(w, "%s is directly connected, %s, %s\n", head, via, age)
		default:
			pad := strings.Repeat(" ", len(head)+len(fmt.Sprintf(" [%d/%d]", r.Distance, r.Metric))-3)
			for i, nh := range r.Nexthops {
				label := ""
				if nh.Label != 0 {
					label = fmt.Sprintf(", label %d", nh.Label)
				}
				if i == 0 {
					fmt.Fprintf(w, "%s [%d/%d] via %s, vxlan (vrf default) onlink%s, weight 1, %s\n", head, r.Distance, r.Metric, nh.Via, label, age)
				} else {
					fmt.Fprintf(w, "  %s%s via %s, vxlan (vrf default) onlink%s, weight 1, %s\n", fib, pad, nh.Via, label, age)
				}
			}
		}
	}
}

// uptime is FRR's route age: hh:mm:ss under a day, then 1d03h32m.
func uptime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Seconds())
	if s < 86400 {
		return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%dd%02dh%02dm", s/86400, s/3600%24, s/60%60)
}

// BGPPath is one path of `show bgp vrf X`.
type BGPPath struct {
	Best      bool     `json:"best"`
	Multipath bool     `json:"multipath"`
	NextHop   string   `json:"next-hop"` // 0.0.0.0 for our own
	Weight    int      `json:"weight"`
	LocalPref uint32   `json:"local-pref,omitempty"`
	ASPath    []uint32 `json:"as-path"`
	Origin    string   `json:"origin"` // i, e, ?
	Label     uint32   `json:"label,omitempty"`
	RD        string   `json:"rd,omitempty"`
	Peer      string   `json:"peer,omitempty"`
	RTs       []string `json:"route-targets,omitempty"` // in JSON only, as FRR's table has no column for them
}

// BGPPrefix is one prefix of `show bgp vrf X` with its paths, best first.
type BGPPrefix struct {
	Prefix string    `json:"prefix"`
	Paths  []BGPPath `json:"paths"`
}

// BGPTable is `show bgp vrf X`.
type BGPTable struct {
	VRF       string      `json:"vrf"`
	RouterID  string      `json:"router-id"`
	ASN       uint32      `json:"asn"`
	Prefixes  []BGPPrefix `json:"prefixes"`  // IPv4
	Prefixes6 []BGPPrefix `json:"prefixes6"` // IPv6
}

// Text prints the tables the way NVUE's `net show bgp vrf X` prints FRR's
// `show bgp vrf X ipv4 unicast` and `... ipv6 unicast`.
func (t BGPTable) Text(w io.Writer) error {
	for i, af := range []string{"ipv4", "ipv6"} {
		head := fmt.Sprintf("show bgp vrf %s %s unicast", t.VRF, af)
		if i > 0 {
			fmt.Fprint(w, "\n\n")
		}
		fmt.Fprintf(w, "%s\n%s\n", head, strings.Repeat("=", len(head)))
		prefixes := t.Prefixes
		if af == "ipv6" {
			prefixes = t.Prefixes6
		}
		if len(prefixes) == 0 {
			fmt.Fprintln(w, "No BGP prefixes displayed, 0 exist")
			continue
		}
		t.text(w, prefixes)
	}
	return nil
}

func (t BGPTable) text(w io.Writer, prefixes []BGPPrefix) {
	fmt.Fprintf(w, "BGP table, local router ID is %s, vrf %s\nDefault local pref 100, local AS %d\n", t.RouterID, t.VRF, t.ASN)
	fmt.Fprintln(w, "Status codes:  * valid, > best, = multipath")
	fmt.Fprintln(w, "Origin codes:  i - IGP, e - EGP, ? - incomplete")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "   %-16s %-19s %6s %6s %6s %s\n", "Network", "Next Hop", "Metric", "LocPrf", "Weight", "Path")
	paths := 0
	for _, p := range prefixes {
		for i, path := range p.Paths {
			paths++
			code := "* "
			switch {
			case path.Best:
				code = "*>"
			case path.Multipath:
				code = "*="
			}
			network := ""
			if i == 0 {
				network = p.Prefix
			}
			aspath := make([]string, 0, len(path.ASPath)+1)
			for _, as := range path.ASPath {
				aspath = append(aspath, fmt.Sprint(as))
			}
			aspath = append(aspath, path.Origin)
			if len(network) > 16 { // FRR wraps a long prefix onto its own line
				fmt.Fprintf(w, "%s %s\n", code, network)
				network, code = "", "  "
			}
			locprf := ""
			if path.LocalPref != 0 {
				locprf = fmt.Sprint(path.LocalPref)
			}
			fmt.Fprintf(w, "%s %-16s %-19s %6s %6s %6d %s\n", code, network, path.NextHop, "", locprf, path.Weight, strings.Join(aspath, " "))
		}
	}
	fmt.Fprintf(w, "\nDisplayed  %d routes and %d total paths\n", len(prefixes), paths)
}

// Peer is one neighbour of `show bgp summary`.
type Peer struct {
	Neighbor string    `json:"neighbor"`
	Address  string    `json:"address"`
	AS       uint32    `json:"remote-as"`
	State    string    `json:"state"`
	Uptime   string    `json:"uptime"`
	Since    time.Time `json:"since"`    // the last state change (zero: none seen)
	Failures int       `json:"failures"` // failed attempts since it was last up for a while
	Received uint64    `json:"prefixes-received"`
	Sent     uint64    `json:"prefixes-sent"`
	GR       PeerGR    `json:"graceful-restart"`
}

// PeerGR is a session's graceful restart (RFC 4724).
type PeerGR struct {
	Mode            string `json:"mode"`       // ours: full, helper-only, off
	Negotiated      bool   `json:"negotiated"` // the peer has it too
	PeerRestarting  bool   `json:"peer-restarting"`
	PeerRestartTime uint32 `json:"peer-restart-time"` // seconds its routes are kept while it restarts
}

// text is the GR column: what happens to the peer's routes if it goes.
func (g PeerGR) text() string {
	switch {
	case g.PeerRestarting:
		return "restarting"
	case g.Mode == "off" || !g.Negotiated:
		return "-"
	}
	return fmt.Sprintf("%ds", g.PeerRestartTime)
}

// Summary is `show bgp summary`.
type Summary struct {
	RouterID string `json:"router-id"`
	ASN      uint32 `json:"asn"`
	Peers    []Peer `json:"peers"`
}

// Text prints the summary the way FRR does.
func (s Summary) Text(w io.Writer) error {
	fmt.Fprintf(w, "BGP router identifier %s, local AS number %d\n\n", s.RouterID, s.ASN)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Neighbor\tV\tAS\tUp/Down\tState/PfxRcd\tPfxSnt\tGR")
	for _, p := range s.Peers {
		state := p.State
		if state == "established" {
			state = fmt.Sprint(p.Received)
		}
		fmt.Fprintf(tw, "%s\t4\t%d\t%s\t%s\t%d\t%s\n", p.Neighbor, p.AS, p.Uptime, state, p.Sent, p.GR.text())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTotal number of neighbors %d\n", len(s.Peers))
	return nil
}

// Counter is one line of `show counters`.
type Counter struct {
	VRF     string `json:"vrf"`
	Reason  string `json:"reason"`
	Dropped bool   `json:"dropped"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Counters is `show counters`.
type Counters []Counter

// Text prints one line per (VRF, reason).
func (cs Counters) Text(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VRF\tReason\tPackets\tBytes")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", c.VRF, c.Reason, c.Packets, c.Bytes)
	}
	return tw.Flush()
}

// Leak is one cell of `show vrf leak-matrix`: what the data path forwarded
// from a VRF to a VRF, or to a VNI no local VRF has (a VRF elsewhere:
// "vni 5002"). From = To is traffic that stayed in its VRF.
type Leak struct {
	From    string `json:"from"`
	To      string `json:"to"`
	VNI     uint32 `json:"vni,omitempty"` // when To is not a local VRF
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// LeakMatrix is `show vrf leak-matrix`: its cells, sorted by from, to.
type LeakMatrix struct {
	Cells []Leak `json:"cells"`
}

// Text prints packets as a table, rows from, columns to; 0 where nothing
// went.
func (m LeakMatrix) Text(w io.Writer) error {
	type col struct {
		name string
		vni  uint32 // 0: a VRF here
	}
	var froms []string
	var tos []col
	cells := map[[2]string]uint64{}
	for _, c := range m.Cells {
		if !slices.Contains(froms, c.From) {
			froms = append(froms, c.From)
		}
		if to := (col{c.To, c.VNI}); !slices.Contains(tos, to) {
			tos = append(tos, to)
		}
		cells[[2]string{c.From, c.To}] += c.Packets
	}
	slices.Sort(froms)
	slices.SortFunc(tos, func(a, b col) int { // VRFs by name, then VNIs elsewhere
		if (a.vni == 0) != (b.vni == 0) {
			return cmp.Compare(a.vni, b.vni)
		}
		return cmp.Or(cmp.Compare(a.vni, b.vni), strings.Compare(a.name, b.name))
	})
	fmt.Fprintln(w, "Packets forwarded from VRF (rows) to VRF, or to a VNI no VRF here has (columns)")
	fmt.Fprintln(w)
	// Numbers right-aligned; the row names left-aligned, by padding them
	// to one width.
	head := "from \\ to"
	width := len(head)
	for _, f := range froms {
		width = max(width, len(f))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t", width, head)
	for _, to := range tos {
		fmt.Fprintf(tw, "%s\t", to.name)
	}
	fmt.Fprintln(tw)
	for _, from := range froms {
		fmt.Fprintf(tw, "%-*s\t", width, from)
		for _, to := range tos {
			fmt.Fprintf(tw, "%d\t", cells[[2]string{from, to.name}])
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// Underlay is `show underlay`: each remote VTEP's underlay next hops as the
// data path holds them.
type Underlay struct {
	// Live: the data path uses them (xleafd renews them); otherwise every
	// packet looks its VTEP up in the kernel's FIB.
	Live bool `json:"live"`
	// FallbackPackets looked their VTEP up in the kernel's FIB: it had no
	// resolved next hop, or they were not live.
	FallbackPackets uint64         `json:"fallbackPackets"`
	VTEPs           []UnderlayVTEP `json:"vteps"`
}

// UnderlayVTEP is one remote VTEP.
type UnderlayVTEP struct {
	VTEP     string         `json:"vtep"`
	Resolved bool           `json:"resolved"`
	Reason   string         `json:"reason,omitempty"` // why not
	Paths    []UnderlayPath `json:"paths,omitempty"`
}

// UnderlayPath is one way to a VTEP: a flow takes one by its hash.
type UnderlayPath struct {
	Interface  string `json:"interface"`
	NextHopMAC string `json:"nextHopMac"`
	MTU        int    `json:"mtu"`
}

// Text prints one line per path.
func (u Underlay) Text(w io.Writer) error {
	if u.Live {
		fmt.Fprintln(w, "Underlay next hops: in use, resolved from the kernel's routes and neighbours")
	} else {
		fmt.Fprintln(w, "Underlay next hops: NOT in use (not renewed): every packet looks up the kernel's FIB")
	}
	fmt.Fprintf(w, "Packets that looked up the kernel's FIB instead: %d\n\n", u.FallbackPackets)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VTEP\tInterface\tNext-hop MAC\tMTU")
	for _, v := range u.VTEPs {
		if !v.Resolved {
			fmt.Fprintf(tw, "%s\t-\t(kernel lookup: %s)\t\n", v.VTEP, v.Reason)
			continue
		}
		for i, p := range v.Paths {
			vtep := v.VTEP
			if i > 0 {
				vtep = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", vtep, p.Interface, p.NextHopMAC, p.MTU)
		}
	}
	return tw.Flush()
}
