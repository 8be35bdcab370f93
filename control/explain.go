package control

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/control/show"
	"github.com/xleaf/xleaf/dataplane"
)

// Explaining a packet: xleafd builds the frame described, runs the data
// path's program on it against the live tables (dataplane.Explain: the
// same program, built to record its steps, with counters and events of
// its own) and says what each step found, with what the RIB knows of the
// route it matched.

// Explainer runs the data path's program on one frame: the explain view's.
type Explainer interface {
	Explain(ifindex int, frame []byte) (dataplane.Trace, error)
}

// ExplainUsage is the packet description explain takes.
const ExplainUsage = "in PORT [vni N [outer-src A]] from A to B [icmp|udp|tcp] [sport N] [dport N] [ttl N] [size N] [df]"

// explainReq is a packet to explain.
type explainReq struct {
	port         string
	vni          uint32     // 0: a tenant's frame on an access port; else VXLAN with this VNI
	outerSrc     netip.Addr // VXLAN's outer source: the sending VTEP
	src, dst     netip.Addr
	proto        string
	sport, dport uint16
	ttl          uint8
	size         int // IPv4 total length
	df           bool
}

// The MACs of a frame's senders, when the agent knows none: the range
// RFC 7042 sets aside for documentation.
var (
	docMAC1 = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x53, 0x01}
	docMAC2 = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x53, 0x02}
	// defaultOuterSrc: a VTEP address for documentation (RFC 5737).
	defaultOuterSrc = netip.MustParseAddr("192.0.2.1")
)

func parseExplain(words []string) (explainReq, error) {
	r := explainReq{proto: "icmp", ttl: 64, sport: 40000, dport: 80, size: 84, outerSrc: defaultOuterSrc}
	num := func(w, v string, max uint64) (uint64, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n > max {
			return 0, fmt.Errorf("explain: %s %q: want a number up to %d", w, v, max)
		}
		return n, nil
	}
	addr := func(w, v string) (netip.Addr, error) {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return a, fmt.Errorf("explain: %s %q: not an address", w, v)
		}
		switch {
		case w == "outer-src" && !a.Is4():
			return a, fmt.Errorf("explain: outer-src %s: the underlay is IPv4", v)
		case a.Is6() && (a.Is4In6() || a.Zone() != ""):
			return a, fmt.Errorf("explain: %s %s: an IPv4 or a plain IPv6 address", w, v)
		}
		return a, nil
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch w {
		case "df":
			r.df = true
			continue
		case "icmp", "udp", "tcp":
			r.proto = w
			continue
		}
		if i+1 == len(words) {
			return r, fmt.Errorf("explain: %q needs a value; usage: explain %s", w, ExplainUsage)
		}
		i++
		v := words[i]
		var n uint64
		var err error
		switch w {
		case "in":
			r.port = v
		case "vni":
			if n, err = num(w, v, 1<<24-1); n == 0 && err == nil {
				err = fmt.Errorf("explain: vni 0 is no VNI")
			}
			r.vni = uint32(n)
		case "outer-src":
			r.outerSrc, err = addr(w, v)
		case "from":
			r.src, err = addr(w, v)
		case "to":
			r.dst, err = addr(w, v)
		case "sport":
			n, err = num(w, v, 65535)
			r.sport = uint16(n)
		case "dport":
			n, err = num(w, v, 65535)
			r.dport = uint16(n)
		case "ttl":
			n, err = num(w, v, 255)
			r.ttl = uint8(n)
		case "size":
			if n, err = num(w, v, 9000); err == nil && n < 28 {
				err = fmt.Errorf("explain: size %d: an IPv4 packet of at least 28 bytes (headers)", n)
			}
			r.size = int(n)
		default:
			return r, fmt.Errorf("explain: unknown word %q; usage: explain %s", w, ExplainUsage)
		}
		if err != nil {
			return r, err
		}
	}
	switch {
	case r.port == "":
		return r, fmt.Errorf("explain: which port does it come in? usage: explain %s", ExplainUsage)
	case !r.src.IsValid() || !r.dst.IsValid():
		return r, fmt.Errorf("explain: from and to are needed; usage: explain %s", ExplainUsage)
	case r.src.Is6() != r.dst.Is6():
		return r, fmt.Errorf("explain: from %s to %s: one family, IPv4 or IPv6", r.src, r.dst)
	case r.dst.Is6() && r.df:
		return r, fmt.Errorf("explain: df: IPv6 has no DF bit (no router fragments it)")
	case r.dst.Is6() && r.size < 48:
		return r, fmt.Errorf("explain: size %d: an IPv6 packet of at least 48 bytes (headers)", r.size)
	}
	return r, nil
}

// frame builds the packet r describes as it arrives on a port whose MAC
// is portMAC: a tenant's frame from host MAC hostMAC, or, with a VNI,
// VXLAN to our VTEP whose inner frame is for our router MAC.
func (r explainReq) frame(portMAC, hostMAC, rmac net.HardwareAddr, vtep netip.Addr) ([]byte, error) {
	var ip gopacket.NetworkLayer
	var l3 gopacket.SerializableLayer
	var setProto func(layers.IPProtocol)
	hdr := 20
	ethType := layers.EthernetTypeIPv4
	if r.dst.Is6() {
		ip6 := &layers.IPv6{Version: 6, HopLimit: r.ttl, SrcIP: r.src.AsSlice(), DstIP: r.dst.AsSlice()}
		ip, l3, setProto, hdr, ethType = ip6, ip6, func(p layers.IPProtocol) { ip6.NextHeader = p }, 40, layers.EthernetTypeIPv6
	} else {
		ip4 := &layers.IPv4{Version: 4, TTL: r.ttl, SrcIP: r.src.AsSlice(), DstIP: r.dst.AsSlice()}
		if r.df {
			ip4.Flags = layers.IPv4DontFragment
		}
		ip, l3, setProto = ip4, ip4, func(p layers.IPProtocol) { ip4.Protocol = p }
	}
	var l4 []gopacket.SerializableLayer
	switch r.proto {
	case "icmp":
		if r.dst.Is6() {
			setProto(layers.IPProtocolICMPv6)
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
			icmp.SetNetworkLayerForChecksum(ip)
			l4 = append(l4, icmp, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1})
		} else {
			setProto(layers.IPProtocolICMPv4)
			l4 = append(l4, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1})
		}
		hdr += 8
	case "udp":
		setProto(layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: layers.UDPPort(r.sport), DstPort: layers.UDPPort(r.dport)}
		u.SetNetworkLayerForChecksum(ip)
		l4 = append(l4, u)
		hdr += 8
	case "tcp":
		setProto(layers.IPProtocolTCP)
		t := &layers.TCP{SrcPort: layers.TCPPort(r.sport), DstPort: layers.TCPPort(r.dport), SYN: true, Seq: 1, Window: 65535}
		t.SetNetworkLayerForChecksum(ip)
		l4 = append(l4, t)
		hdr += 20
	}
	payload := gopacket.Payload(make([]byte, max(0, r.size-hdr)))
	inner := &layers.Ethernet{DstMAC: portMAC, SrcMAC: hostMAC, EthernetType: ethType}
	if r.vni != 0 {
		inner.DstMAC, inner.SrcMAC = rmac, docMAC1
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, append(append([]gopacket.SerializableLayer{inner, l3}, l4...), payload)...); err != nil {
		return nil, fmt.Errorf("explain: build the packet: %w", err)
	}
	if r.vni == 0 {
		return buf.Bytes(), nil
	}
	innerFrame := append([]byte(nil), buf.Bytes()...)
	eth := &layers.Ethernet{DstMAC: portMAC, SrcMAC: docMAC2, EthernetType: layers.EthernetTypeIPv4}
	oip := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP,
		SrcIP: r.outerSrc.AsSlice(), DstIP: vtep.AsSlice()}
	udp := &layers.UDP{SrcPort: 49152, DstPort: 4789}
	udp.SetNetworkLayerForChecksum(oip)
	vx := &layers.VXLAN{ValidIDFlag: true, VNI: r.vni}
	buf = gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, eth, oip, udp, vx, gopacket.Payload(innerFrame)); err != nil {
		return nil, fmt.Errorf("explain: build the VXLAN packet: %w", err)
	}
	b := buf.Bytes()
	b[40], b[41] = 0, 0 // VXLAN over IPv4 sends no UDP checksum
	return b, nil
}

func (r explainReq) describe() string {
	s := fmt.Sprintf("%s -> %s %s", r.src, r.dst, r.proto)
	switch r.proto {
	case "icmp":
		s += " echo request"
	default:
		s += fmt.Sprintf(" %d -> %d", r.sport, r.dport)
	}
	if r.dst.Is6() {
		s += fmt.Sprintf(", hop limit %d, %d bytes", r.ttl, r.size)
	} else {
		s += fmt.Sprintf(", TTL %d, %d bytes", r.ttl, r.size)
	}
	if r.df {
		s += ", DF"
	}
	return s
}

// Explain is `xleafctl explain ...`.
func (a *Agent) Explain(words []string) (show.Explain, error) {
	r, err := parseExplain(words)
	if err != nil {
		return show.Explain{}, err
	}
	ex, ok := a.dp.(Explainer)
	if !ok {
		return show.Explain{}, errors.New("explain: this data path cannot run its program")
	}
	ifc, err := net.InterfaceByName(r.port)
	if err != nil {
		return show.Explain{}, fmt.Errorf("explain: port %s: %w", r.port, err)
	}
	src := docMAC1
	if r.vni == 0 {
		if m := hostMAC(ifc.Index, r.src); m != nil {
			src = m
		}
	}
	frame, err := r.frame(ifc.HardwareAddr, src, a.leaf.rmac, a.leaf.vtep)
	if err != nil {
		return show.Explain{}, err
	}
	tr, err := ex.Explain(ifc.Index, frame)
	if err != nil {
		return show.Explain{}, err
	}
	out := show.Explain{Packet: r.describe(), Action: xdpAction(tr.Action),
		In: &show.ExplainFrame{Hex: hex.EncodeToString(frame), Headers: decodeFrame(frame)}}
	out.Ingress = r.port
	if r.vni != 0 {
		out.Ingress += fmt.Sprintf(", VXLAN VNI %d from VTEP %s to %s", r.vni, r.outerSrc, a.leaf.vtep)
	}
	a.explainSteps(&out, tr, r)
	if tr.Action == dataplane.XDPTx || tr.Action == dataplane.XDPRedirect {
		out.Out = &show.ExplainFrame{Hex: hex.EncodeToString(tr.Out), Headers: decodeFrame(tr.Out)}
		if tr.Action == dataplane.XDPTx {
			out.Egress = r.port
		}
		// The underlay next hop of a packet encapsulated: the MAC the
		// program wrote for it.
		var last show.ExplainStep
		if n := len(out.Steps); n > 0 {
			last = out.Steps[n-1]
		}
		for i, s := range out.Steps {
			if s.Step == "underlay" && last.Reason == dataplane.ReasonFwdRemote.String() && len(tr.Out) >= 6 {
				mac := net.HardwareAddr(tr.Out[:6]).String()
				out.Steps[i].NextHopMAC = mac
				out.Steps[i].Text += ", next hop " + mac
			}
		}
	}
	return out, nil
}

// hostMAC is the MAC of the host with address addr on port ifindex, if
// the kernel knows it.
func hostMAC(ifindex int, addr netip.Addr) net.HardwareAddr {
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	ns, err := netlink.NeighList(ifindex, family)
	if err != nil {
		return nil
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == addr && n.State&nudValid != 0 && len(n.HardwareAddr) == 6 {
			return n.HardwareAddr
		}
	}
	return nil
}

func xdpAction(a int) string {
	switch a {
	case dataplane.XDPDrop:
		return "XDP_DROP"
	case dataplane.XDPPass:
		return "XDP_PASS"
	case dataplane.XDPTx:
		return "XDP_TX"
	case dataplane.XDPRedirect:
		return "XDP_REDIRECT"
	}
	return fmt.Sprintf("XDP action %d", a)
}

// explainSteps turns the program's steps into what an operator reads.
// The program's steps hold 32 bits of an address; an IPv6 packet's
// addresses are r's: its destination, or, once it is answered, its source.
func (a *Agent) explainSteps(out *show.Explain, tr dataplane.Trace, r explainReq) {
	vs := a.vrfs.Load()
	vrfName := func(id uint32) string { return vs.nameOf(dataplane.VRFID(id)) }
	port := func(ifindex uint32) string {
		if ifc, err := net.InterfaceByIndex(int(ifindex)); err == nil {
			return ifc.Name
		}
		return fmt.Sprintf("ifindex %d", ifindex)
	}
	var dst netip.Addr
	var group dataplane.TraceStep
	answered := false
	// addr is the address a step's 32 bits stand for.
	addr := func(v uint32) netip.Addr {
		switch {
		case !r.dst.Is6():
			return addr4(v)
		case answered:
			return r.src
		}
		return r.dst
	}
	for _, s := range tr.Steps {
		st := show.ExplainStep{}
		switch s.Kind {
		case dataplane.TraceIngress:
			st.Step, st.Interface = "ingress", port(s.A)
			switch s.B {
			case 0:
				st.Text = st.Interface + ": not a port of the data path"
			case 1:
				st.Text = st.Interface + ": uplink (VXLAN from the fabric)"
			default:
				st.VRF = vrfName(s.C)
				st.Text = fmt.Sprintf("%s: access port of VRF %s", st.Interface, st.VRF)
			}
		case dataplane.TraceVXLAN:
			st.Step, st.VNI, st.VTEP = "vxlan", s.B, addr4(s.A).String()
			how := "vni_index, checked against the VRF"
			if s.C == dataplane.TraceVNIHash {
				how = "vteps and vni_vrf"
			}
			st.Text = fmt.Sprintf("to our VTEP %s, VNI %d: decapsulated (VRF found in %s)", st.VTEP, st.VNI, how)
		case dataplane.TraceVRF:
			st.Step, st.VRF, st.VNI, st.VTEP = "vrf", vrfName(s.A), s.B, addr4(s.C).String()
			st.Text = fmt.Sprintf("%s (L3VNI %d, VTEP %s)", st.VRF, st.VNI, st.VTEP)
		case dataplane.TraceFIB:
			dst = addr4(s.B)
			var note string
			if st, note = a.explainRoute(vrfName(s.A), dst, s.C, answered); note != "" {
				out.Notes = append(out.Notes, note)
			}
		case dataplane.TraceFIB6:
			dst = addr(s.B)
			var note string
			if st, note = a.explainRoute(vrfName(s.A), dst, s.C, answered); note != "" {
				out.Notes = append(out.Notes, note)
			}
		case dataplane.TraceGroup:
			group = s
			continue // told with its member
		case dataplane.TraceMember:
			idx := int(s.A)
			st.Step, st.Group, st.Members, st.Hash, st.Member = "ecmp", group.A, group.B, fmt.Sprintf("%#08x", group.C), &idx
			st.VTEP, st.VNI = addr4(s.B).String(), s.C
			st.Text = fmt.Sprintf("group %d of %d member(s); flow hash %s, slot %d -> member %d: VTEP %s, VNI %d on the wire",
				group.A, group.B, st.Hash, group.C&(dataplane.NHGSlots-1), idx, st.VTEP, st.VNI)
		case dataplane.TraceUnderlay:
			st.Step, st.Interface = "underlay", port(s.B)
			st.Kind = "resolved"
			how := "the agent's resolved next hops"
			if s.A == dataplane.TraceUnderlayKernel {
				st.Kind, how = "kernel", "bpf_fib_lookup in the kernel's FIB (no resolved next hop)"
			}
			st.Text = fmt.Sprintf("out %s, from %s: %s", st.Interface, how, fibResult(s.C))
			if s.C == 0 || s.C == 4 { // success, or too big
				out.Egress = st.Interface
			}
		case dataplane.TraceNeigh:
			st.Step, st.VRF, st.Address = "neighbour", vrfName(s.A), addr(s.B).String()
			if s.C == 0 {
				st.Text = fmt.Sprintf("host %s in %s: not resolved", st.Address, st.VRF)
			} else {
				st.Interface = port(s.C)
				st.Text = fmt.Sprintf("host %s in %s on %s", st.Address, st.VRF, st.Interface)
				out.Egress = st.Interface
			}
		case dataplane.TraceEvent:
			st.Step, st.VRF, st.Address = "event", vrfName(s.B), addr(s.C).String()
			what := "resolve host"
			if s.A == 2 {
				what = "resolve underlay next hop"
			}
			st.Text = fmt.Sprintf("the live program asks the agent to %s %s (not sent: explaining)", what, st.Address)
		case dataplane.TraceICMP:
			answered = true
			st.Step = "icmp"
			mtu := ""
			if s.C != 0 {
				mtu = fmt.Sprintf(" (next-hop MTU %d)", s.C)
			}
			st.Text = fmt.Sprintf("answered with ICMP type %d code %d%s, from the VRF's address, routed back to the source:", s.A, s.B, mtu)
			out.Notes = append(out.Notes, "the ICMP error is sent within the VRF's rate limit (explain does not spend it)")
			out.Egress = ""
		case dataplane.TraceVerdict:
			st.Step, st.VRF, st.Reason = "verdict", vrfName(s.A), dataplane.Reason(s.B).String()
			st.Text = fmt.Sprintf("%s, counted in VRF %s", st.Reason, st.VRF)
			if st.To = leakColumn(dataplane.Reason(s.B), tr, vs); st.To != "" {
				st.Text += fmt.Sprintf("; leak matrix %s -> %s", st.VRF, st.To)
			}
		default:
			st.Step, st.Text = "step", fmt.Sprintf("kind %d: %d %d %d", s.Kind, s.A, s.B, s.C)
		}
		out.Steps = append(out.Steps, st)
	}
}

// explainRoute says which route of vrf the program matched for dst
// (entry: the FIB's), and where the RIB says it comes from; note, when
// the RIB has that route not installed (the data path may differ).
func (a *Agent) explainRoute(vrf string, dst netip.Addr, entry uint32, answer bool) (st show.ExplainStep, note string) {
	st = show.ExplainStep{Step: "route", VRF: vrf}
	if answer {
		st.Step = "route back"
	}
	if entry == 0 {
		st.Text = fmt.Sprintf("%s: no route to %s (the VRF's default is unreachable)", vrf, dst)
		return st, ""
	}
	st.Kind = dataplane.FIBEntryKind(entry).String()
	e, ok, err := a.pipeline.rib.Lookup(vrf, dst)
	if err != nil || !ok {
		st.Text = fmt.Sprintf("%s: %s route to %s (the RIB has none: xleafctl verify)", vrf, st.Kind, dst)
		return st, ""
	}
	st.Prefix = e.Prefix.String()
	if !e.Installed {
		note = fmt.Sprintf("the RIB has %s in %s not installed: the data path may differ (xleafctl verify)", st.Prefix, vrf)
	}
	pv := a.pipeline.rib.Provenance(vrf, e)
	switch {
	case pv.Owner != "":
		st.Owner = pv.Owner
	case pv.VNI != 0:
		st.Owner = fmt.Sprintf("vni %d", pv.VNI)
	}
	if pv.Imported {
		st.ImportedBy, st.RouteRT = rtNVUE(pv.Import), rtNVUE(pv.Matched)
	}
	var what string
	switch e.Source {
	case rib.SourceLocal:
		what = "our own address: to the kernel"
	case rib.SourceConnected:
		what = fmt.Sprintf("connected (a port of %s)", e.HostVRF)
	case rib.SourceAggregate:
		what = "aggregate: blackhole"
	case rib.SourceBGP:
		what = fmt.Sprintf("bgp, %d path(s)", len(e.Paths))
	}
	st.Text = fmt.Sprintf("%s: %s, %s (%s)", vrf, st.Prefix, what, st.Kind)
	imported := fmt.Sprintf("imported by route-target %s (the route's %s)", st.ImportedBy, st.RouteRT)
	switch {
	case st.ImportedBy == "":
	case pv.Owner == "":
		st.Text += fmt.Sprintf("\nfrom VNI %d, which no VRF here has (a VRF of another site): %s", pv.VNI, imported)
	case pv.Owner != vrf:
		st.Text += fmt.Sprintf("\nleaked from %s: %s", pv.Owner, imported)
	default:
		st.Text += "\n" + imported
	}
	return st, note
}

// leakColumn names where a forwarded packet went, as the leak matrix
// does: its host's VRF, or the VRF whose VNI it left with, or that VNI.
func leakColumn(r dataplane.Reason, tr dataplane.Trace, vs *vrfSet) string {
	for _, s := range tr.Steps {
		switch {
		case r == dataplane.ReasonFwdLocal && s.Kind == dataplane.TraceNeigh:
			return vs.nameOf(dataplane.VRFID(s.A))
		case r == dataplane.ReasonFwdRemote && s.Kind == dataplane.TraceMember:
			name, _ := vs.vniName(s.C)
			return name
		}
	}
	return ""
}

func rtNVUE(rt rib.RT) string {
	if rt.Any {
		return fmt.Sprintf("ANY:%d", rt.Value)
	}
	return rt.String()
}

// addr4 is an address the program holds in network byte order.
func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func fibResult(rc uint32) string {
	switch rc {
	case 0:
		return "found"
	case 1:
		return "blackhole"
	case 2:
		return "unreachable"
	case 3:
		return "prohibited"
	case 4:
		return "too big for the path (fragmentation needed)"
	case 5:
		return "forwarding off"
	case 6:
		return "unsupported LWT"
	case 7:
		return "no neighbour entry (the agent is told)"
	}
	return fmt.Sprintf("result %d", rc)
}

// decodeFrame lists a frame's headers, outermost first.
func decodeFrame(b []byte) []string {
	pkt := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	var out []string
	depth := "outer"
	if pkt.Layer(layers.LayerTypeVXLAN) == nil {
		depth = ""
	}
	for _, l := range pkt.Layers() {
		var s string
		switch h := l.(type) {
		case *layers.Ethernet:
			s = fmt.Sprintf("Ethernet %s -> %s", h.SrcMAC, h.DstMAC)
		case *layers.IPv4:
			s = fmt.Sprintf("IPv4 %s -> %s, TTL %d, TOS %#02x, length %d", h.SrcIP, h.DstIP, h.TTL, h.TOS, h.Length)
			if h.Flags&layers.IPv4DontFragment != 0 {
				s += ", DF"
			}
		case *layers.UDP:
			s = fmt.Sprintf("UDP %d -> %d", h.SrcPort, h.DstPort)
		case *layers.TCP:
			s = fmt.Sprintf("TCP %d -> %d", h.SrcPort, h.DstPort)
		case *layers.ICMPv4:
			s = fmt.Sprintf("ICMP %s", h.TypeCode)
		case *layers.IPv6:
			s = fmt.Sprintf("IPv6 %s -> %s, hop limit %d, class %#02x, payload %d", h.SrcIP, h.DstIP, h.HopLimit, h.TrafficClass, h.Length)
		case *layers.ICMPv6:
			s = fmt.Sprintf("ICMPv6 %s", h.TypeCode)
		case *layers.VXLAN:
			s = fmt.Sprintf("VXLAN VNI %d", h.VNI)
			out = append(out, strings.TrimSpace(depth+"  "+s))
			depth = "inner"
			continue
		default:
			continue
		}
		out = append(out, strings.TrimSpace(fmt.Sprintf("%-5s  %s", depth, s)))
	}
	return out
}
