package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Why keys are accepted and ignored: xleaf is a dataplane and its BGP, not
// the host's manager.
const (
	whyLLDP     = "LLDP is not xleaf's job: run lldpd"
	whyBanner   = "login banner is the host's"
	whyAutoSave = "xleafd reads its file; nothing to save"
	whyAnycast  = "no VRR/MLAG anycast gateway in xleaf"
	whyMgmt     = "management VRF is the host's"
	whyEmpty    = "empty node, nothing to do"
	whyTenantPG = "peer groups are configured in vrf default; a tenant VRF has no neighbours"
)

// tenantVRF is the placeholder for any VRF name but default and mgmt.
const tenantVRF = "<vrf>"

// kind says how a rule's key holds values.
type kind int

const (
	node   kind = iota // no value: the key itself means something (or nothing)
	single             // the last token is the value; a second, different one conflicts
	multi              // the last token is one of many values, which accumulate
)

// A rule is one pattern of the schema and what it does to the model.
// Pattern words are literal; <name> is any one token (<vrf> any tenant
// VRF); a final ... is any number of tokens.
type rule struct {
	pattern []string
	kind    kind
	apply   func(m *match) error
}

// match is a path matched to a rule: args are the <...> tokens in order.
type match struct {
	b    *builder
	rule *rule
	path path
	args []string
}

func (m *match) c() *Config       { return m.b.c }
func (m *match) arg(i int) string { return m.args[i] }

// value is the last token: a single or multi rule's value.
func (m *match) value() string { return m.path.tokens[len(m.path.tokens)-1] }

func one(pattern string, apply func(m *match) error) *rule  { return mkRule(pattern, single, apply) }
func many(pattern string, apply func(m *match) error) *rule { return mkRule(pattern, multi, apply) }
func leaf(pattern string, apply func(m *match) error) *rule { return mkRule(pattern, node, apply) }

func mkRule(pattern string, k kind, apply func(m *match) error) *rule {
	return &rule{pattern: strings.Fields(pattern), kind: k, apply: apply}
}

// ignore is a rule that accepts its keys (checked by check, if not nil)
// and records them in Config.Ignored with why.
func ignore(pattern string, k kind, why string, check func(m *match) error) *rule {
	return mkRule(pattern, k, func(m *match) error {
		if check != nil {
			if err := check(m); err != nil {
				return err
			}
		}
		m.ignore(why)
		return nil
	})
}

// onOff is a handler setting a flag from on|off.
func onOff(field func(m *match) *bool) func(m *match) error {
	return func(m *match) error {
		v, err := parseOnOff(m.value())
		if err != nil {
			return err
		}
		*field(m) = v
		return nil
	}
}

// schema is every key xleaf reads, in NVUE's order. The first rule that
// matches a path wins.
var schema = []*rule{
	one("evpn enable <on|off>", onOff(func(m *match) *bool { return &m.c().EVPN })),
	one("nve vxlan enable <on|off>", onOff(func(m *match) *bool { return &m.c().VXLAN })),

	one("router bgp autonomous-system <asn>", func(m *match) (err error) {
		m.c().ASN, err = parseASN(m.value())
		return err
	}),
	one("router bgp enable <on|off>", onOff(func(m *match) *bool { return &m.c().BGP })),
	one("router bgp router-id <id>", func(m *match) (err error) {
		m.c().RouterID, err = parseRouterID(m.value())
		return err
	}),
	ignore("router bgp graceful-restart", node, whyEmpty, nil),
	one("router bgp graceful-restart mode <mode>", func(m *match) error {
		modes := map[string]GRMode{"full": GRFull, "helper-only": GRHelperOnly, "off": GROff}
		mode, ok := modes[m.value()]
		if !ok {
			return oneOf("graceful-restart mode", m.value(), "full", "helper-only", "off")
		}
		m.c().GR.Mode = mode
		return nil
	}),
	one("router bgp graceful-restart restart-time <seconds>", func(m *match) (err error) {
		m.c().GR.RestartTime, err = parseUint("restart-time", m.value(), 1, 4095)
		return err
	}),
	one("router bgp graceful-restart stale-routes-time <seconds>", func(m *match) (err error) {
		m.c().GR.StaleRoutesTime, err = parseUint("stale-routes-time", m.value(), 1, 4095)
		return err
	}),

	ignore("router policy community-list", node, whyEmpty, nil),
	leaf("router policy route-map <map>", func(m *match) error {
		_, err := m.routeMap()
		return err
	}),
	leaf("router policy route-map <map> rule <seq>", func(m *match) error {
		_, err := m.routeMapRule()
		return err
	}),
	one("router policy route-map <map> rule <seq> action <permit|deny>", func(m *match) error {
		if err := oneOf("action", m.value(), "permit", "deny"); err != nil {
			return err
		}
		r, err := m.routeMapRule()
		if err == nil {
			r.Action = m.value()
		}
		return err
	}),
	one("router policy route-map <map> rule <seq> match evpn-route-type <type>", func(m *match) error {
		if err := oneOf("evpn-route-type", m.value(), "ip-prefix", "macip", "multicast"); err != nil {
			return err
		}
		r, err := m.routeMapRule()
		if err == nil {
			r.MatchRouteType = m.value()
		}
		return err
	}),

	ignore("service lldp ...", node, whyLLDP, nil),
	ignore("system config auto-save enable <on|off>", single, whyAutoSave, func(m *match) error {
		_, err := parseOnOff(m.value())
		return err
	}),
	ignore("system global anycast-id <id>", single, whyAnycast, func(m *match) error {
		_, err := parseUint("anycast-id", m.value(), 0, 1<<32-1)
		return err
	}),
	ignore("system global fabric-id <id>", single, whyAnycast, func(m *match) error {
		_, err := parseUint("fabric-id", m.value(), 0, 1<<32-1)
		return err
	}),
	one("system hostname <name>", func(m *match) error {
		if err := checkHostname(m.value()); err != nil {
			return err
		}
		m.c().Hostname = m.value()
		return nil
	}),
	ignore("system message post-login <text>", single, whyBanner, nil),
	ignore("system message pre-login <text>", single, whyBanner, nil),

	leaf("interface <if>", func(m *match) error {
		_, err := m.iface()
		return err
	}),
	one("interface <if> type <type>", func(m *match) error {
		if err := oneOf("type", m.value(), "eth", "loopback", "swp", "svi", "bond"); err != nil {
			return err
		}
		i, err := m.iface()
		if err == nil {
			i.Type = m.value()
		}
		return err
	}),
	many("interface <if> ip address <prefix>", func(m *match) error {
		p, err := parseIfAddr(m.value())
		if err != nil {
			return err
		}
		i, err := m.iface()
		if err == nil && !slices.Contains(i.Addresses, p) {
			i.Addresses = append(i.Addresses, p)
		}
		return err
	}),
	one("interface <if> ip vrf <name>", func(m *match) error {
		name := m.value()
		if err := checkIfName("vrf", name); err != nil {
			return err
		}
		i, err := m.iface()
		if err != nil {
			return err
		}
		switch name {
		case "mgmt":
			m.ignore(whyMgmt)
		case "default":
			i.VRF = ""
		default:
			i.VRF = name
		}
		return nil
	}),

	ignore("vrf mgmt ...", node, whyMgmt, nil),

	leaf("vrf <vrf>", func(m *match) error {
		_, err := m.vrf()
		return err
	}),
	one("vrf <vrf> evpn enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.EVPN, err = parseOnOff(m.value())
		return err
	})),
	one("vrf <vrf> evpn vni <vni>", m2vrf(func(v *VRF, m *match) (err error) {
		v.VNI, err = parseVNI(m.value())
		return err
	})),
	many("vrf <vrf> router bgp address-family ipv4-unicast aggregate-route <prefix>", m2vrf(func(v *VRF, m *match) error {
		p, err := parseNetwork("aggregate-route", m.value())
		if err == nil && !slices.Contains(v.Aggregates, p) {
			v.Aggregates = append(v.Aggregates, p)
		}
		return err
	})),
	one("vrf <vrf> router bgp address-family ipv4-unicast enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.IPv4Unicast, err = parseOnOff(m.value())
		return err
	})),
	one("vrf <vrf> router bgp address-family ipv4-unicast redistribute connected enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.RedistributeConnected, err = parseOnOff(m.value())
		return err
	})),
	one("vrf <vrf> router bgp address-family ipv4-unicast route-export to-evpn enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.ExportToEVPN, err = parseOnOff(m.value())
		return err
	})),
	leaf("vrf <vrf> router bgp address-family ipv4-unicast route-import", m2vrf(func(v *VRF, m *match) error {
		m.ignore(whyEmpty)
		return nil
	})),
	many("vrf <vrf> router bgp address-family ipv6-unicast aggregate-route <prefix>", m2vrf(func(v *VRF, m *match) error {
		p, err := parseNetwork6("aggregate-route", m.value())
		if err == nil && !slices.Contains(v.Aggregates, p) {
			v.Aggregates = append(v.Aggregates, p)
		}
		return err
	})),
	one("vrf <vrf> router bgp address-family ipv6-unicast enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.IPv6Unicast, err = parseOnOff(m.value())
		return err
	})),
	one("vrf <vrf> router bgp address-family ipv6-unicast redistribute connected enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.RedistributeConnected6, err = parseOnOff(m.value())
		return err
	})),
	one("vrf <vrf> router bgp address-family ipv6-unicast route-export to-evpn enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.ExportToEVPN6, err = parseOnOff(m.value())
		return err
	})),
	leaf("vrf <vrf> router bgp address-family ipv6-unicast route-import", m2vrf(func(v *VRF, m *match) error {
		m.ignore(whyEmpty)
		return nil
	})),
	one("vrf <vrf> router bgp autonomous-system <asn>", m2vrf(func(v *VRF, m *match) (err error) {
		v.ASN, err = parseASN(m.value())
		return err
	})),
	one("vrf <vrf> router bgp enable <on|off>", m2vrf(func(v *VRF, m *match) (err error) {
		v.BGP, err = parseOnOff(m.value())
		return err
	})),
	many("vrf <vrf> router bgp route-import from-evpn route-target <rt>", m2vrf(func(v *VRF, m *match) error {
		rt, err := parseRouteTarget(m.value())
		if err == nil && !slices.Contains(v.ImportRTs, rt) {
			v.ImportRTs = append(v.ImportRTs, rt)
		}
		return err
	})),
	many("vrf <vrf> router bgp route-export to-evpn route-target <rt>", m2vrf(func(v *VRF, m *match) error {
		if m.value() == "auto" {
			return nil // ASN:VNI, as without the key
		}
		rt, err := parseRouteTarget(m.value())
		if err == nil && rt.Any {
			err = fmt.Errorf("route-target %q: a route carries a target, not a wildcard: ANY is for imports", m.value())
		}
		if err == nil && !slices.Contains(v.ExportRTs, rt) {
			v.ExportRTs = append(v.ExportRTs, rt)
		}
		return err
	})),
	one("vrf <vrf> router bgp router-id <id>", m2vrf(func(v *VRF, m *match) (err error) {
		v.RouterID, err = parseRouterID(m.value())
		return err
	})),
	leaf("vrf <vrf> router static", m2vrf(func(v *VRF, m *match) error {
		m.ignore(whyEmpty)
		return nil
	})),
	leaf("vrf <vrf> router bgp peer-group <group> ...", m2vrf(func(v *VRF, m *match) error {
		m.ignore(whyTenantPG)
		return nil
	})),

	one("vrf default router bgp enable <on|off>", onOff(func(m *match) *bool { return &m.c().Default.BGP })),
	one("vrf default router bgp address-family ipv4-unicast enable <on|off>", onOff(func(m *match) *bool { return &m.c().Default.IPv4Unicast })),
	many("vrf default router bgp address-family ipv4-unicast network <prefix>", func(m *match) error {
		p, err := parseNetwork("network", m.value())
		d := &m.c().Default
		if err == nil && !slices.Contains(d.Networks, p) {
			d.Networks = append(d.Networks, p)
		}
		return err
	}),
	one("vrf default router bgp address-family ipv4-unicast redistribute connected enable <on|off>", onOff(func(m *match) *bool { return &m.c().Default.RedistributeConnected })),
	one("vrf default router bgp address-family l2vpn-evpn enable <on|off>", onOff(func(m *match) *bool { return &m.c().Default.L2VPNEVPN })),

	leaf("vrf default router bgp neighbor <neighbor>", m2nb(func(n *Neighbor, m *match) error { return nil })),
	one("vrf default router bgp neighbor <neighbor> peer-group <group>", m2nb(func(n *Neighbor, m *match) error {
		if err := checkName("peer-group", m.value()); err != nil {
			return err
		}
		n.PeerGroup = m.value()
		return nil
	})),
	one("vrf default router bgp neighbor <neighbor> type <type>", m2nb(func(n *Neighbor, m *match) error {
		if err := oneOf("type", m.value(), "unnumbered", "numbered"); err != nil {
			return err
		}
		n.Type = map[string]NeighborType{"unnumbered": Unnumbered, "numbered": Numbered}[m.value()]
		return nil
	})),
	one("vrf default router bgp neighbor <neighbor> remote-as <remote-as>", m2nb(func(n *Neighbor, m *match) (err error) {
		n.RemoteAS, err = parseRemoteAS(m.value())
		return err
	})),

	leaf("vrf default router bgp peer-group <group>", m2pg(func(g *PeerGroup, m *match) error { return nil })),
	one("vrf default router bgp peer-group <group> remote-as <remote-as>", m2pg(func(g *PeerGroup, m *match) (err error) {
		g.RemoteAS, err = parseRemoteAS(m.value())
		return err
	})),
	leaf("vrf default router bgp peer-group <group> address-family ipv4-unicast", m2pg(func(g *PeerGroup, m *match) error {
		m.ignore(whyEmpty)
		return nil
	})),
	one("vrf default router bgp peer-group <group> address-family ipv4-unicast enable <on|off>", m2pg(func(g *PeerGroup, m *match) (err error) {
		g.IPv4Unicast, err = parseOnOff(m.value())
		return err
	})),
	one("vrf default router bgp peer-group <group> address-family l2vpn-evpn enable <on|off>", m2pg(func(g *PeerGroup, m *match) (err error) {
		g.L2VPNEVPN, err = parseOnOff(m.value())
		return err
	})),
	one("vrf default router bgp peer-group <group> timers hold <seconds>", m2pg(func(g *PeerGroup, m *match) (err error) {
		g.HoldTime, err = parseUint("timers hold", m.value(), 3, 65535)
		return err
	})),
	one("vrf default router bgp peer-group <group> timers keepalive <seconds>", m2pg(func(g *PeerGroup, m *match) (err error) {
		g.Keepalive, err = parseUint("timers keepalive", m.value(), 1, 65535)
		return err
	})),
	one("vrf default router bgp peer-group <group> address-family l2vpn-evpn policy outbound route-map <map>", m2pg(func(g *PeerGroup, m *match) error {
		if err := checkName("route-map", m.value()); err != nil {
			return err
		}
		g.EVPNOutboundRouteMap = m.value()
		return nil
	})),
}

// lookup finds the first rule matching tokens, and its arguments.
func lookup(tokens []string) (*rule, []string) {
next:
	for _, r := range schema {
		var args []string
		for i, w := range r.pattern {
			if w == "..." {
				return r, args
			}
			if i >= len(tokens) {
				continue next
			}
			t := tokens[i]
			switch {
			case w == tenantVRF:
				if t == "default" || t == "mgmt" {
					continue next
				}
				args = append(args, t)
			case strings.HasPrefix(w, "<"):
				args = append(args, t)
			case w != t:
				continue next
			}
		}
		if len(tokens) == len(r.pattern) {
			return r, args
		}
	}
	return nil, nil
}

// Getters that create what they name: NVUE creates an object with its
// first key, in whatever order the keys come.

func (m *match) vrf() (*VRF, error) {
	name := m.arg(0)
	if err := checkIfName("vrf", name); err != nil {
		return nil, err
	}
	v := m.c().VRFs[name]
	if v == nil {
		v = &VRF{Name: name}
		m.c().VRFs[name] = v
	}
	return v, nil
}

func m2vrf(f func(v *VRF, m *match) error) func(m *match) error {
	return func(m *match) error {
		v, err := m.vrf()
		if err != nil {
			return err
		}
		return f(v, m)
	}
}

func (m *match) iface() (*Interface, error) {
	name := m.arg(0)
	if err := checkIfName("interface", name); err != nil {
		return nil, err
	}
	i := m.c().Interfaces[name]
	if i == nil {
		i = &Interface{Name: name}
		m.c().Interfaces[name] = i
	}
	return i, nil
}

func (m *match) routeMap() (*RouteMap, error) {
	name := m.arg(0)
	if err := checkName("route-map", name); err != nil {
		return nil, err
	}
	r := m.c().RouteMaps[name]
	if r == nil {
		r = &RouteMap{Name: name}
		m.c().RouteMaps[name] = r
	}
	return r, nil
}

// routeMapRule returns the rule numbered by the second argument. Rules
// live in a slice, so the pointer is good until the next rule is added.
func (m *match) routeMapRule() (*RouteMapRule, error) {
	seq, err := parseUint("rule", m.arg(1), 1, 65535)
	if err != nil {
		return nil, err
	}
	rm, err := m.routeMap()
	if err != nil {
		return nil, err
	}
	for i := range rm.Rules {
		if rm.Rules[i].Seq == int(seq) {
			return &rm.Rules[i], nil
		}
	}
	rm.Rules = append(rm.Rules, RouteMapRule{Seq: int(seq)})
	return &rm.Rules[len(rm.Rules)-1], nil
}

func m2nb(f func(n *Neighbor, m *match) error) func(m *match) error {
	return func(m *match) error {
		name := m.arg(0)
		if _, err := netip.ParseAddr(name); err != nil && checkIfName("neighbor", name) != nil {
			return fmt.Errorf("neighbor %q: expected an interface name or an IP address", name)
		}
		d := &m.c().Default
		n := d.Neighbors[name]
		if n == nil {
			n = &Neighbor{Name: name}
			d.Neighbors[name] = n
		}
		return f(n, m)
	}
}

func m2pg(f func(g *PeerGroup, m *match) error) func(m *match) error {
	return func(m *match) error {
		name := m.arg(0)
		if err := checkName("peer-group", name); err != nil {
			return err
		}
		d := &m.c().Default
		g := d.PeerGroups[name]
		if g == nil {
			g = &PeerGroup{Name: name, IPv4Unicast: true} // NVUE's default, as FRR's
			d.PeerGroups[name] = g
		}
		return f(g, m)
	}
}
