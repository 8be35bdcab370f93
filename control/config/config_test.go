package config

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// guides are the four configurations of the VRF route leaking guide.
var guides = []string{"borderleaf01", "borderleaf04", "leaf01", "leaf03"}

// netipEqual compares netip values, whose fields are unexported.
var netipEqual = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

// noPositions compares models apart from where their keys were written.
var noPositions = cmp.Options{
	netipEqual,
	cmpopts.IgnoreFields(Config{}, "Where"),
	cmpopts.IgnoreFields(Ignored{}, "Pos"),
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
func rt(asn, v uint32) RouteTarget {
	return RouteTarget{ASN: asn, Value: v}
}
func anyRT(v uint32) RouteTarget { return RouteTarget{Any: true, Value: v} }

const banner = "system message post-login 'DCI ref guide - Layer3 VRF stretch topology with route leaking use case'"

func wantBorderleaf01() *Config {
	const f = "testdata/borderleaf01.cmds"
	return &Config{
		Hostname: "borderleaf01",
		ASN:      65110,
		RouterID: ip("10.10.10.10"),
		BGP:      true,
		EVPN:     true,
		VXLAN:    true,
		Interfaces: map[string]*Interface{
			"eth0": {Name: "eth0", Type: "eth"},
			"lo":   {Name: "lo", Type: "loopback", Addresses: []netip.Prefix{pfx("10.10.10.10/32")}},
			"swp1": {Name: "swp1", Type: "swp"},
			"swp2": {Name: "swp2", Type: "swp"},
			"swp3": {Name: "swp3", Type: "swp"},
		},
		RouteMaps: map[string]*RouteMap{
			"control_t5": {Name: "control_t5", Rules: []RouteMapRule{
				{Seq: 1, Action: "permit", MatchRouteType: "ip-prefix"},
				{Seq: 3, Action: "deny"},
			}},
		},
		VRFs: map[string]*VRF{
			"GREEN": {
				Name:                  "GREEN",
				EVPN:                  true,
				VNI:                   4002,
				BGP:                   true,
				ASN:                   65110,
				RouterID:              ip("10.10.10.10"),
				IPv4Unicast:           true,
				RedistributeConnected: true,
				ExportToEVPN:          true,
				Aggregates:            []netip.Prefix{pfx("192.168.1.0/24"), pfx("192.168.10.0/24")},
				ImportRTs:             []RouteTarget{rt(65210, 5001), rt(65210, 5002), anyRT(4001), anyRT(4002)},
			},
			"RED": {
				Name:                  "RED",
				EVPN:                  true,
				VNI:                   4001,
				BGP:                   true,
				ASN:                   65110,
				RouterID:              ip("10.10.10.10"),
				IPv4Unicast:           true,
				RedistributeConnected: true,
				ExportToEVPN:          true,
				Aggregates:            []netip.Prefix{pfx("192.168.2.0/24"), pfx("192.168.20.0/24")},
				ImportRTs:             []RouteTarget{rt(65210, 5001), rt(65210, 5002), anyRT(4001), anyRT(4002)},
			},
		},
		Default: borderDefault("10.10.10.10/32"),
		Ignored: []Ignored{
			{Pos: Position{f, 3}, Key: "interface eth0 ip vrf mgmt", Reason: "management VRF is the host's"},
			{Pos: Position{f, 15}, Key: "service lldp", Reason: "LLDP is not xleaf's job: run lldpd"},
			{Pos: Position{f, 16}, Key: "system config auto-save enable on", Reason: "xleafd reads its file; nothing to save"},
			{Pos: Position{f, 17}, Key: "system global anycast-id 10", Reason: "no VRR/MLAG anycast gateway in xleaf"},
			{Pos: Position{f, 18}, Key: "system global fabric-id 10", Reason: "no VRR/MLAG anycast gateway in xleaf"},
			{Pos: Position{f, 20}, Key: banner, Reason: "login banner is the host's"},
			{Pos: Position{f, 42}, Key: "vrf RED router bgp address-family ipv4-unicast route-import", Reason: "empty node, nothing to do"},
			{Pos: Position{f, 64}, Key: "vrf default router bgp peer-group underlay address-family ipv4-unicast", Reason: "empty node, nothing to do"},
		},
	}
}

// borderDefault is both border leafs' vrf default: underlay on swp1-2,
// the DCI on swp3 under control_t5, their loopback as network.
func borderDefault(loopback string) Default {
	return Default{
		BGP:         true,
		IPv4Unicast: true,
		Networks:    []netip.Prefix{pfx(loopback)},
		L2VPNEVPN:   true,
		Neighbors: map[string]*Neighbor{
			"swp1": {Name: "swp1", Type: Unnumbered, PeerGroup: "underlay"},
			"swp2": {Name: "swp2", Type: Unnumbered, PeerGroup: "underlay"},
			"swp3": {Name: "swp3", Type: Unnumbered, PeerGroup: "dci_group1"},
		},
		PeerGroups: map[string]*PeerGroup{
			"dci_group1": {
				Name:                 "dci_group1",
				RemoteAS:             RemoteAS{Kind: ASExternal},
				IPv4Unicast:          true,
				L2VPNEVPN:            true,
				EVPNOutboundRouteMap: "control_t5",
			},
			"underlay": {
				Name:        "underlay",
				RemoteAS:    RemoteAS{Kind: ASExternal},
				IPv4Unicast: true,
				L2VPNEVPN:   true,
			},
		},
	}
}

func wantBorderleaf04() *Config {
	const f = "testdata/borderleaf04.cmds"
	return &Config{
		Hostname: "borderleaf04",
		ASN:      65210,
		RouterID: ip("10.10.20.11"),
		BGP:      true,
		EVPN:     true,
		VXLAN:    true,
		Interfaces: map[string]*Interface{
			"eth0": {Name: "eth0", Type: "eth"},
			"lo":   {Name: "lo", Type: "loopback", Addresses: []netip.Prefix{pfx("10.10.20.11/32")}},
			"swp1": {Name: "swp1", Type: "swp"},
			"swp2": {Name: "swp2", Type: "swp"},
			"swp3": {Name: "swp3", Type: "swp"},
		},
		RouteMaps: map[string]*RouteMap{
			"control_t5": {Name: "control_t5", Rules: []RouteMapRule{
				{Seq: 1, Action: "permit", MatchRouteType: "ip-prefix"},
				{Seq: 3, Action: "deny"},
			}},
		},
		VRFs: map[string]*VRF{
			"GREEN": {
				Name:                  "GREEN",
				EVPN:                  true,
				VNI:                   5002,
				BGP:                   true,
				ASN:                   65210,
				RouterID:              ip("10.10.20.11"),
				IPv4Unicast:           true,
				RedistributeConnected: true,
				ExportToEVPN:          true,
				Aggregates:            []netip.Prefix{pfx("192.168.10.0/24")},
				ImportRTs:             []RouteTarget{rt(65110, 4001), rt(65110, 4002), anyRT(5001), anyRT(5002)},
			},
			"RED": {
				Name:                  "RED",
				EVPN:                  true,
				VNI:                   5001,
				BGP:                   true,
				ASN:                   65210,
				RouterID:              ip("10.10.20.11"),
				IPv4Unicast:           true,
				RedistributeConnected: true,
				ExportToEVPN:          true,
				Aggregates:            []netip.Prefix{pfx("192.168.20.0/24")},
				ImportRTs:             []RouteTarget{rt(65110, 4001), rt(65110, 4002), anyRT(5001), anyRT(5002)},
			},
		},
		Default: borderDefault("10.10.20.11/32"),
		Ignored: []Ignored{
			{Pos: Position{f, 3}, Key: "interface eth0 ip vrf mgmt", Reason: "management VRF is the host's"},
			{Pos: Position{f, 12}, Key: "router policy community-list", Reason: "empty node, nothing to do"},
			{Pos: Position{f, 16}, Key: "service lldp", Reason: "LLDP is not xleaf's job: run lldpd"},
			{Pos: Position{f, 17}, Key: "system config auto-save enable on", Reason: "xleafd reads its file; nothing to save"},
			{Pos: Position{f, 18}, Key: "system global anycast-id 20", Reason: "no VRR/MLAG anycast gateway in xleaf"},
			{Pos: Position{f, 19}, Key: "system global fabric-id 20", Reason: "no VRR/MLAG anycast gateway in xleaf"},
			{Pos: Position{f, 21}, Key: banner, Reason: "login banner is the host's"},
			{Pos: Position{f, 48}, Key: "vrf RED router static", Reason: "empty node, nothing to do"},
		},
	}
}

// wantLeaf is leaf01 and leaf03: the same shape, their own numbers. Their
// listings in the guide hold only the VRF keys, so no global BGP.
func wantLeaf(f string, asn uint32, rid string, greenVNI, redVNI uint32, loopback string) *Config {
	tenant := func(name string, vni uint32) *VRF {
		return &VRF{
			Name:                  name,
			EVPN:                  true,
			VNI:                   vni,
			BGP:                   true,
			ASN:                   asn,
			RouterID:              ip(rid),
			IPv4Unicast:           true,
			RedistributeConnected: true,
			ExportToEVPN:          true,
			ImportRTs:             []RouteTarget{anyRT(4001), anyRT(4002), anyRT(5001), anyRT(5002)},
		}
	}
	return &Config{
		Interfaces: map[string]*Interface{},
		RouteMaps:  map[string]*RouteMap{},
		VRFs:       map[string]*VRF{"GREEN": tenant("GREEN", greenVNI), "RED": tenant("RED", redVNI)},
		Default: Default{
			BGP:                   true,
			IPv4Unicast:           true,
			Networks:              []netip.Prefix{pfx(loopback)},
			RedistributeConnected: true,
			L2VPNEVPN:             true,
			Neighbors: map[string]*Neighbor{
				"swp1": {Name: "swp1", Type: Unnumbered, PeerGroup: "underlay"},
				"swp2": {Name: "swp2", Type: Unnumbered, PeerGroup: "underlay"},
			},
			PeerGroups: map[string]*PeerGroup{
				"underlay": {Name: "underlay", RemoteAS: RemoteAS{Kind: ASExternal}, IPv4Unicast: true, L2VPNEVPN: true},
			},
		},
		Ignored: []Ignored{{
			Pos:    Position{f, 8},
			Key:    "vrf GREEN router bgp peer-group underlay address-family l2vpn-evpn enable on",
			Reason: "peer groups are configured in vrf default; a tenant VRF has no neighbours",
		}},
	}
}

func TestGuideListingsParseToTheModel(t *testing.T) {
	tests := []struct {
		name string
		want *Config
	}{
		{"borderleaf01", wantBorderleaf01()},
		{"borderleaf04", wantBorderleaf04()},
		{"leaf01", wantLeaf("testdata/leaf01.cmds", 65101, "10.10.10.1", 4002, 4001, "10.10.10.1/32")},
		{"leaf03", wantLeaf("testdata/leaf03.cmds", 65201, "10.10.20.1", 5002, 5001, "10.10.20.1/32")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load("testdata/" + tt.name + ".cmds")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, netipEqual, cmpopts.IgnoreFields(Config{}, "Where")); diff != "" {
				t.Errorf("Load(%s.cmds) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestGuideYAMLEqualsCommands(t *testing.T) {
	for _, name := range guides {
		t.Run(name, func(t *testing.T) {
			cmds, err := Load("testdata/" + name + ".cmds")
			if err != nil {
				t.Fatal(err)
			}
			yaml, err := Load("testdata/" + name + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(cmds, yaml, noPositions); diff != "" {
				t.Errorf("commands vs startup.yaml (-cmds +yaml):\n%s", diff)
			}
			if len(cmds.Where) != len(yaml.Where) {
				t.Errorf("commands set %d keys, startup.yaml %d", len(cmds.Where), len(yaml.Where))
			}
			for k := range cmds.Where {
				if _, ok := yaml.Where[k]; !ok {
					t.Errorf("key %q in commands, not in startup.yaml", k)
				}
			}
		})
	}
}

func TestGuideListingsKeepTrailingNoBreakSpaces(t *testing.T) {
	// The listings are the guide's bytes: every line ends in a no-break space.
	data, err := os.ReadFile("testdata/borderleaf01.cmds")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if want := "cumulus@borderleaf01:mgmt:~$ nv config show -o commands\u00a0"; first != want {
		t.Errorf("first line = %q, want %q", first, want)
	}
}

func TestWhereRecordsPositions(t *testing.T) {
	tests := []struct {
		file string
		key  string
		want Position
	}{
		{"testdata/borderleaf01.cmds", "vrf RED evpn vni", Position{"testdata/borderleaf01.cmds", 36}},
		{"testdata/borderleaf01.cmds", "interface swp2 type", Position{"testdata/borderleaf01.cmds", 7}},
		{"testdata/borderleaf01.cmds", "vrf GREEN router bgp route-import from-evpn route-target ANY:4001", Position{"testdata/borderleaf01.cmds", 32}},
		{"testdata/borderleaf01.yaml", "vrf RED evpn vni", Position{"testdata/borderleaf01.yaml", 90}},
		{"testdata/borderleaf04.yaml", "interface swp2 type", Position{"testdata/borderleaf04.yaml", 23}},
	}
	for _, tt := range tests {
		c, err := Load(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Where[tt.key]; got != tt.want {
			t.Errorf("%s: Where[%q] = %v, want %v", tt.file, tt.key, got, tt.want)
		}
	}
}

func TestKeyOrderAndRepeatsDoNotMatter(t *testing.T) {
	data, err := os.ReadFile("testdata/borderleaf01.cmds")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	body := slices.Clone(lines[1:]) // after the prompt
	slices.Reverse(body)
	body = append(body, lines[1:]...) // every key twice, the same value
	shuffled := strings.Join(body, "\n")

	want, err := Parse("borderleaf01.cmds", data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("shuffled.cmds", []byte(shuffled))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, noPositions); diff != "" {
		t.Errorf("reversed and repeated (-want +got):\n%s", diff)
	}
}

func TestTenantPortsRangesAndDefaults(t *testing.T) {
	const in = `# an access port in a tenant VRF
nv set router bgp autonomous-system 65001
nv set router bgp router-id 10.0.0.1
nv set interface swp10 ip vrf RED
nv set interface swp10 ip address 192.168.2.1/24
nv set interface swp10 ip address 2001:db8::1/64
nv set interface swp1-3,swp5 type swp
nv set interface vlan10 type svi
nv set interface bond1 type bond
nv set interface eth1 ip vrf default
nv set vrf RED evpn enable on
nv set vrf RED evpn vni 4001
nv set vrf RED router bgp enable on
nv set vrf RED router bgp route-import from-evpn route-target any:7
nv set vrf RED router bgp route-import from-evpn route-target ANY:7
nv set vrf RED router bgp route-import from-evpn route-target 4200000000:65535
nv set vrf BLUE evpn vni 4003
nv set vrf default router bgp neighbor 10.0.0.2 remote-as 65002
nv set vrf default router bgp neighbor swp1 peer-group fabric
nv set vrf default router bgp neighbor swp1 remote-as internal
nv set vrf default router bgp peer-group fabric address-family ipv4-unicast enable off
`
	c, err := Parse("tenant.cmds", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	wantIfs := map[string]*Interface{
		"swp10":  {Name: "swp10", VRF: "RED", Addresses: []netip.Prefix{pfx("192.168.2.1/24"), pfx("2001:db8::1/64")}},
		"swp1":   {Name: "swp1", Type: "swp"},
		"swp2":   {Name: "swp2", Type: "swp"},
		"swp3":   {Name: "swp3", Type: "swp"},
		"swp5":   {Name: "swp5", Type: "swp"},
		"vlan10": {Name: "vlan10", Type: "svi"},
		"bond1":  {Name: "bond1", Type: "bond"},
		"eth1":   {Name: "eth1"},
	}
	if diff := cmp.Diff(wantIfs, c.Interfaces, netipEqual); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
	wantVRFs := map[string]*VRF{
		"RED": {
			Name: "RED", EVPN: true, VNI: 4001, BGP: true,
			ASN: 65001, RouterID: ip("10.0.0.1"), // from router bgp
			ImportRTs: []RouteTarget{rt(4200000000, 65535), anyRT(7)},
		},
		"BLUE": {Name: "BLUE", VNI: 4003, ASN: 65001, RouterID: ip("10.0.0.1")},
	}
	if diff := cmp.Diff(wantVRFs, c.VRFs, netipEqual); diff != "" {
		t.Errorf("vrfs (-want +got):\n%s", diff)
	}
	wantNeighbors := map[string]*Neighbor{
		"10.0.0.2": {Name: "10.0.0.2", Type: Numbered, RemoteAS: RemoteAS{Kind: ASNumber, ASN: 65002}},
		"swp1":     {Name: "swp1", Type: Unnumbered, PeerGroup: "fabric", RemoteAS: RemoteAS{Kind: ASInternal}},
	}
	if diff := cmp.Diff(wantNeighbors, c.Default.Neighbors, netipEqual); diff != "" {
		t.Errorf("neighbors (-want +got):\n%s", diff)
	}
	if g := c.Default.PeerGroups["fabric"]; g == nil || g.IPv4Unicast {
		t.Errorf("peer-group fabric = %+v, want ipv4-unicast off", g)
	}
}

func TestNeighborInheritsRemoteAS(t *testing.T) {
	c, err := Load("testdata/borderleaf01.cmds")
	if err != nil {
		t.Fatal(err)
	}
	n := c.Default.Neighbors["swp3"]
	if n.RemoteAS != (RemoteAS{}) {
		t.Errorf("swp3 RemoteAS = %+v, want unset in the model", n.RemoteAS)
	}
	if got, want := c.Default.NeighborRemoteAS(n), (RemoteAS{Kind: ASExternal}); got != want {
		t.Errorf("NeighborRemoteAS(swp3) = %+v, want %+v", got, want)
	}
}

func TestIgnoredOncePerKey(t *testing.T) {
	// leaf01 has the tenant peer-group line in GREEN and in RED.
	c, err := Load("testdata/leaf01.cmds")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Ignored) != 1 {
		t.Errorf("Ignored = %+v, want one entry", c.Ignored)
	}
}

func TestEmptyInputIsAnEmptyConfig(t *testing.T) {
	for _, in := range []string{"", "# nothing\n\n", "cumulus@leaf01:mgmt:~$ nv config show -o commands\n"} {
		c, err := Parse("empty.cmds", []byte(in))
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if len(c.VRFs)+len(c.Interfaces)+len(c.Ignored) != 0 {
			t.Errorf("Parse(%q) = %+v, want empty", in, c)
		}
	}
}

func TestYAMLLeafFormsEqualCommands(t *testing.T) {
	// A leaf may be "key: {}", "key:" or a scalar; flow maps are maps; an
	// unquoted 65210:5001 or 1 is kept as written, not read as a number.
	const yamlIn = `# Auto-generated by NVUE!
- header:
    rev-id: 1.0
- set:
    service:
      lldp:
    router:
      policy:
        route-map:
          m:
            rule:
              1: {action: permit}
    vrf:
      RED:
        evpn: {enable: on, vni: 4001}
        router:
          bgp:
            route-import:
              from-evpn:
                route-target:
                  65210:5001: {}
                  ANY:4001:
                  0:4002: {}
- set:
    vrf:
      RED:
        router:
          bgp:
            route-import:
              from-evpn:
                route-target: 65210:5002
`
	const cmdsIn = `nv set service lldp
nv set router policy route-map m rule 1 action permit
nv set vrf RED evpn enable on
nv set vrf RED evpn vni 4001
nv set vrf RED router bgp route-import from-evpn route-target 65210:5001
nv set vrf RED router bgp route-import from-evpn route-target 65210:5002
nv set vrf RED router bgp route-import from-evpn route-target ANY:4001
nv set vrf RED router bgp route-import from-evpn route-target 0:4002
`
	fromYAML, err := Parse("x.yaml", []byte(yamlIn))
	if err != nil {
		t.Fatal(err)
	}
	fromCmds, err := Parse("x.cmds", []byte(cmdsIn))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromCmds, fromYAML, noPositions); diff != "" {
		t.Errorf("commands vs YAML (-cmds +yaml):\n%s", diff)
	}
	want := []RouteTarget{rt(0, 4002), rt(65210, 5001), rt(65210, 5002), anyRT(4001)}
	if diff := cmp.Diff(want, fromYAML.VRFs["RED"].ImportRTs, netipEqual); diff != "" {
		t.Errorf("route targets (-want +got):\n%s", diff)
	}
}

func TestCommentOnlyYAMLIsEmpty(t *testing.T) {
	c, err := Parse("startup.yaml", []byte("# Auto-generated by NVUE!\n"))
	if err != nil || len(c.VRFs) != 0 {
		t.Errorf("Parse = %+v, %v; want an empty Config", c, err)
	}
}

func TestParseRouteTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    RouteTarget
		wantErr string
	}{
		{in: "65210:5001", want: rt(65210, 5001)},
		{in: "0:4001", want: rt(0, 4001)},
		{in: "65535:4294967295", want: rt(65535, 4294967295)},
		{in: "65536:65535", want: rt(65536, 65535)},
		{in: "4294967295:0", want: rt(4294967295, 0)},
		{in: "ANY:4001", want: anyRT(4001)},
		{in: "any:4001", want: anyRT(4001)},
		{in: "Any:0", want: anyRT(0)},
		{in: "65536:65536", wantErr: "four-octet ASN leaves two octets"},
		{in: "65535:4294967296", wantErr: "N in 0..4294967295"},
		{in: "4294967296:1", wantErr: "ASN in 0..4294967295"},
		{in: "65210", wantErr: "expected ASN:N, A.B.C.D:N or ANY:N"},
		{in: "ANY:x", wantErr: "expected ANY:N"},
		{in: "10.0.0.1:5", want: RouteTarget{Addr: netip.MustParseAddr("10.0.0.1"), Value: 5}},
		{in: "10.10.10.5:65535", want: RouteTarget{Addr: netip.MustParseAddr("10.10.10.5"), Value: 65535}},
		{in: "10.0.0.1:65536", wantErr: "an IPv4 address leaves two octets"},
		{in: "2001:db8::1:5", wantErr: "expected ASN:N"},
		{in: "-1:5", wantErr: "expected ASN:N"},
	}
	for _, tt := range tests {
		got, err := parseRouteTarget(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseRouteTarget(%q) error = %v, want it to say %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseRouteTarget(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestBadInputIsRefusedWithFileAndLine(t *testing.T) {
	// guideVRF is a valid tenant VRF to put errors next to.
	const guideVRF = "nv set vrf RED evpn enable on\nnv set vrf RED evpn vni 4001\n"
	tests := []struct {
		name string
		file string
		in   string
		want []string // substrings of the error
	}{
		{
			name: "unknown key",
			file: "borderleaf01.cfg",
			in:   "nv set router bgp enable on\nnv set router bgp foo 1\n",
			want: []string{`borderleaf01.cfg:2: unknown key "nv set router bgp foo 1"`},
		},
		{
			name: "unknown key under vrf default",
			in:   "nv set vrf default evpn vni 4001\n",
			want: []string{`x.cmds:1: unknown key "nv set vrf default evpn vni 4001"`},
		},
		{
			name: "tenant peer-group keys are ignored, tenant neighbours are not",
			in:   guideVRF + "nv set vrf RED router bgp neighbor swp1 remote-as external\n",
			want: []string{`x.cmds:3: unknown key`},
		},
		{
			name: "not nv set",
			in:   "nv unset router bgp enable\n",
			want: []string{`x.cmds:1: "nv unset router bgp enable": expected an "nv set ..." line`},
		},
		{
			name: "unterminated quote",
			in:   "nv set system message post-login 'hello\n",
			want: []string{`x.cmds:1:`, `unterminated ' quote`},
		},
		{
			name: "prefix length out of range",
			in:   "nv set interface lo ip address 10.0.0.1/33\n",
			want: []string{`x.cmds:1:`, `address "10.0.0.1/33": expected an address with its prefix length`},
		},
		{
			name: "aggregate with host bits",
			in:   guideVRF + "nv set vrf RED router bgp address-family ipv4-unicast aggregate-route 192.168.1.1/24\n",
			want: []string{`x.cmds:3:`, `aggregate-route "192.168.1.1/24": host bits set, expected 192.168.1.0/24`},
		},
		{
			name: "network with host bits",
			in:   "nv set vrf default router bgp address-family ipv4-unicast network 10.10.10.1/24\n",
			want: []string{`x.cmds:1:`, `host bits set, expected 10.10.10.0/24`},
		},
		{
			name: "aggregate not IPv4",
			in:   guideVRF + "nv set vrf RED router bgp address-family ipv4-unicast aggregate-route 2001:db8::/32\n",
			want: []string{`x.cmds:3:`, `expected an IPv4 prefix`},
		},
		{
			name: "ipv6-unicast aggregate not IPv6",
			in:   guideVRF + "nv set vrf RED router bgp address-family ipv6-unicast aggregate-route 192.168.1.0/24\n",
			want: []string{`x.cmds:3:`, `expected an IPv6 prefix`},
		},
		{
			name: "ipv6-unicast aggregate with host bits",
			in:   guideVRF + "nv set vrf RED router bgp address-family ipv6-unicast aggregate-route 2001:db8:1::1/48\n",
			want: []string{`x.cmds:3:`, `host bits set, expected 2001:db8:1::/48`},
		},
		{
			name: "link-local port address",
			in:   "nv set interface swp10 ip address fe80::1/64\n",
			want: []string{`x.cmds:1:`, `not a routed IPv6 address`},
		},
		{
			name: "bad ASNs",
			in: "nv set router bgp autonomous-system 0\n" +
				"nv set vrf RED router bgp autonomous-system 4294967296\n" +
				"nv set vrf GREEN router bgp autonomous-system 65a\n",
			want: []string{
				`x.cmds:1:`, `autonomous-system "0": expected a number in 1..4294967295`,
				`x.cmds:2:`, `autonomous-system "4294967296"`,
				`x.cmds:3:`, `autonomous-system "65a"`,
			},
		},
		{
			name: "bad router-ids",
			in:   "nv set router bgp router-id 10.0.0.256\nnv set vrf RED router bgp router-id 2001:db8::1\n",
			want: []string{`x.cmds:1: "nv set router bgp router-id 10.0.0.256": router-id "10.0.0.256": expected an IPv4 address`, `x.cmds:2:`},
		},
		{
			name: "vni out of range",
			in:   "nv set vrf RED evpn vni 0\nnv set vrf GREEN evpn vni 16777216\n",
			want: []string{`x.cmds:1:`, `vni "0": expected a number in 1..16777215`, `x.cmds:2:`, `vni "16777216"`},
		},
		{
			name: "bad route targets",
			in: guideVRF +
				"nv set vrf RED router bgp route-import from-evpn route-target 65536:65536\n" +
				"nv set vrf RED router bgp route-import from-evpn route-target 4001\n",
			want: []string{`x.cmds:3:`, `route-target "65536:65536"`, `x.cmds:4:`, `route-target "4001": expected ASN:N, A.B.C.D:N or ANY:N`},
		},
		{
			name: "bad enums",
			in: "nv set router policy route-map m rule 1 action accept\n" +
				"nv set evpn enable yes\n" +
				"nv set router policy route-map m rule 0 action permit\n" +
				"nv set router policy route-map m rule 65536 action permit\n" +
				"nv set vrf default router bgp peer-group g remote-as outside\n" +
				"nv set vrf default router bgp neighbor swp1 type dynamic\n" +
				"nv set interface swp1 type ethernet\n" +
				"nv set router policy route-map m rule 2 match evpn-route-type prefix\n" +
				"nv set vrf default router bgp neighbor swp2 remote-as 0\n",
			want: []string{
				`x.cmds:1:`, `action "accept": expected permit or deny`,
				`x.cmds:2:`, `enable "yes": expected on or off`,
				`x.cmds:3:`, `rule "0": expected a number in 1..65535`,
				`x.cmds:4:`, `rule "65536"`,
				`x.cmds:5:`, `remote-as "outside": expected external, internal or an ASN in 1..4294967295`,
				`x.cmds:6:`, `type "dynamic": expected unnumbered or numbered`,
				`x.cmds:7:`, `type "ethernet": expected eth, loopback, swp, svi or bond`,
				`x.cmds:8:`, `evpn-route-type "prefix": expected ip-prefix, macip or multicast`,
				`x.cmds:9:`, `remote-as "0"`,
			},
		},
		{
			name: "bad interface range",
			in:   "nv set interface swp3-1 type swp\n",
			want: []string{`x.cmds:1:`, `bad interface range "swp3-1"`},
		},
		{
			name: "conflicting values name both lines",
			in:   "nv set vrf RED evpn enable on\nnv set vrf RED evpn vni 4001\nnv set vrf RED evpn vni 4002\n",
			want: []string{`x.cmds:3: "nv set vrf RED evpn vni 4002": vrf RED evpn vni is already "4001" at x.cmds:2`},
		},
		{
			name: "conflict through an interface range",
			in:   "nv set interface swp1-3 type swp\nnv set interface swp2 type eth\n",
			want: []string{`x.cmds:2:`, `interface swp2 type is already "swp" at x.cmds:1`},
		},
		{
			name: "duplicate vni across vrfs",
			in:   guideVRF + "nv set vrf GREEN evpn enable on\nnv set vrf GREEN evpn vni 4001\n",
			want: []string{`x.cmds:4: vni 4001 is used by both vrf RED (x.cmds:2) and vrf GREEN (x.cmds:4)`},
		},
		{
			name: "evpn without vni",
			in:   "nv set vrf RED evpn enable on\n",
			want: []string{`x.cmds:1: vrf RED: evpn enable on but no evpn vni`},
		},
		{
			name: "undefined peer-group",
			in:   "nv set vrf default router bgp neighbor swp1 peer-group underlay\nnv set vrf default router bgp neighbor swp1 type unnumbered\n",
			want: []string{`x.cmds:1: vrf default router bgp neighbor swp1: peer-group underlay is not defined`},
		},
		{
			name: "undefined route-map",
			in: "nv set vrf default router bgp peer-group dci remote-as external\n" +
				"nv set vrf default router bgp peer-group dci address-family l2vpn-evpn policy outbound route-map control_t5\n",
			want: []string{`x.cmds:2: vrf default router bgp peer-group dci: route-map control_t5 is not defined`},
		},
		{
			name: "interface in undefined vrf",
			in:   "nv set interface swp10 ip vrf BLUE\n",
			want: []string{`x.cmds:1: interface swp10: ip vrf BLUE is not defined`},
		},
		{
			name: "no remote-as anywhere",
			in: "nv set vrf default router bgp peer-group underlay address-family l2vpn-evpn enable on\n" +
				"nv set vrf default router bgp neighbor swp1 peer-group underlay\n" +
				"nv set vrf default router bgp neighbor swp2 type unnumbered\n",
			want: []string{
				`x.cmds:2: vrf default router bgp neighbor swp1: no remote-as, neither its own nor its peer-group underlay's`,
				`x.cmds:3: vrf default router bgp neighbor swp2: no remote-as and no peer-group to take it from`,
			},
		},
		{
			name: "route-map rule without action",
			in:   "nv set router policy route-map m rule 5 match evpn-route-type ip-prefix\n",
			want: []string{`x.cmds:1: router policy route-map m rule 5 has no action`},
		},
		{
			name: "tenant bgp without any asn",
			in:   "nv set vrf RED router bgp enable on\n",
			want: []string{`x.cmds:1: vrf RED: router bgp enable on but no autonomous-system`},
		},
		{
			name: "numbered neighbour that is an interface",
			in:   "nv set vrf default router bgp neighbor swp1 type numbered\nnv set vrf default router bgp neighbor swp1 remote-as external\n",
			want: []string{`x.cmds:1:`, `type numbered needs an IP address`},
		},
		{
			name: "bad yaml syntax",
			file: "x.yaml",
			in:   "- set:\n    router:\n      bgp:\n        enable: on\n        router-id: \"10.0.0.1\n",
			want: []string{`x.yaml:5: bad YAML:`},
		},
		{
			name: "yaml unknown key",
			file: "x.yaml",
			in:   "- set:\n    router:\n      bgp:\n        enable: on\n        foo: 1\n",
			want: []string{`x.yaml:5: unknown key "router bgp foo 1"`},
		},
		{
			name: "yaml bad value",
			file: "x.yaml",
			in:   "- set:\n    vrf:\n      RED:\n        evpn:\n          enable: on\n          vni: 99999999\n",
			want: []string{`x.yaml:6: "vrf RED evpn vni 99999999": vni "99999999": expected a number in 1..16777215`},
		},
		{
			name: "yaml not a list",
			file: "x.yaml",
			in:   "set:\n  router:\n    bgp:\n      enable: on\n",
			want: []string{`x.yaml:1: bad YAML: expected NVUE's list of "- set:" items`},
		},
		{
			name: "yaml list inside the tree",
			file: "x.yaml",
			in:   "- set:\n    interface:\n      lo:\n        ip:\n          address:\n          - 10.0.0.1/32\n",
			want: []string{`x.yaml:6: bad YAML: "interface lo ip address": a list is not part of NVUE's tree`},
		},
		{
			name: "yaml unset item",
			file: "x.yaml",
			in:   "- unset:\n    router: {}\n",
			want: []string{`x.yaml:1: bad YAML: "unset" item`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "x.cmds"
			}
			c, err := Parse(file, []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error saying %q", tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestAllErrorsAtOnceSortedByLine(t *testing.T) {
	const in = "nv set evpn enable on\n" +
		"nv set router bgp nope\n" +
		"nv set vrf RED evpn vni 0\n" +
		"nv set interface lo ip address 1.2.3.4/40\n"
	_, err := Parse("x.cmds", []byte(in))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	var lines []string
	for l := range strings.SplitSeq(err.Error(), "\n") {
		lines = append(lines, strings.SplitN(l, ":", 3)[1])
	}
	if diff := cmp.Diff([]string{"2", "3", "4"}, lines); diff != "" {
		t.Errorf("error lines (-want +got):\n%s\n%v", diff, err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load("testdata/nonexistent.cmds"); err == nil || !strings.Contains(err.Error(), "nonexistent.cmds") {
		t.Errorf("Load = %v, want an error naming the file", err)
	}
}

// TestTenantVRFNeedsVNI: xleaf routes a tenant VRF only through its L3VNI,
// so a VRF without one is an error at --check-config, not at start.
func TestTenantVRFNeedsVNI(t *testing.T) {
	_, err := Parse("x.cmds", []byte("nv set router bgp autonomous-system 65001\nnv set vrf BLUE\n"))
	if err == nil || !strings.Contains(err.Error(), "x.cmds:2: vrf BLUE: no evpn vni") {
		t.Errorf("got %v", err)
	}
}

// TestPeerGroupTimers: a peer group's hold and keepalive times, their
// ranges, and a keepalive that would let the session expire.
func TestPeerGroupTimers(t *testing.T) {
	const group = "nv set vrf default router bgp peer-group fabric remote-as external\n"
	c, err := Parse("t.cmds", []byte(group+
		"nv set vrf default router bgp peer-group fabric timers hold 90\n"+
		"nv set vrf default router bgp peer-group fabric timers keepalive 30\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Default.PeerGroups["fabric"]; g.HoldTime != 90 || g.Keepalive != 30 {
		t.Errorf("hold %d keepalive %d, want 90 and 30", g.HoldTime, g.Keepalive)
	}
	for in, want := range map[string]string{
		"nv set vrf default router bgp peer-group fabric timers hold 2\n":      `t.cmds:2: "nv set vrf default router bgp peer-group fabric timers hold 2": timers hold "2": expected a number in 3..65535`,
		"nv set vrf default router bgp peer-group fabric timers keepalive 9\n": `t.cmds:2: vrf default router bgp peer-group fabric: timers keepalive 9 is not below the hold time 9`,
		"nv set vrf default router bgp peer-group fabric timers keepalive x\n": `timers keepalive "x": expected a number in 1..65535`,
	} {
		_, err := Parse("t.cmds", []byte(group+in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

func TestGracefulRestart(t *testing.T) {
	c, err := Parse("t.cmds", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.GR.Mode != GRDefault || c.GR.Mode.String() != "full" {
		t.Errorf("a config that says nothing: mode %v (%d), want the default, full", c.GR.Mode, c.GR.Mode)
	}
	c, err = Parse("t.cmds", []byte("nv set router bgp graceful-restart mode helper-only\n"+
		"nv set router bgp graceful-restart restart-time 60\n"+
		"nv set router bgp graceful-restart stale-routes-time 300\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (GracefulRestart{Mode: GRHelperOnly, RestartTime: 60, StaleRoutesTime: 300}); c.GR != want {
		t.Errorf("graceful restart %+v, want %+v", c.GR, want)
	}
	for in, want := range map[string]string{
		"nv set router bgp graceful-restart mode restarting\n":     `graceful-restart mode "restarting": expected full, helper-only or off`,
		"nv set router bgp graceful-restart restart-time 4096\n":   `restart-time "4096": expected a number in 1..4095`,
		"nv set router bgp graceful-restart stale-routes-time 0\n": `stale-routes-time "0": expected a number in 1..4095`,
	} {
		_, err := Parse("t.cmds", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

func TestExportRouteTargets(t *testing.T) {
	const vrf = "nv set vrf RED evpn enable on\nnv set vrf RED evpn vni 4001\n"
	c, err := Parse("t.cmds", []byte(vrf+
		"nv set vrf RED router bgp route-export to-evpn route-target 10.10.10.5:4001\n"+
		"nv set vrf RED router bgp route-export to-evpn route-target 4200000000:4001\n"+
		"nv set vrf RED router bgp route-import from-evpn route-target 10.10.10.6:4001\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []RouteTarget{{Addr: netip.MustParseAddr("10.10.10.5"), Value: 4001}, rt(4200000000, 4001)}
	if diff := cmp.Diff(want, c.VRFs["RED"].ExportRTs, netipEqual); diff != "" {
		t.Errorf("export targets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]RouteTarget{{Addr: netip.MustParseAddr("10.10.10.6"), Value: 4001}}, c.VRFs["RED"].ImportRTs, netipEqual); diff != "" {
		t.Errorf("import targets (-want +got):\n%s", diff)
	}
	c, err = Parse("t.cmds", []byte(vrf+"nv set vrf RED router bgp route-export to-evpn route-target auto\n"))
	if err != nil || len(c.VRFs["RED"].ExportRTs) != 0 {
		t.Errorf("auto: %v %v, want no explicit target (ASN:VNI)", c.VRFs["RED"].ExportRTs, err)
	}
	_, err = Parse("t.cmds", []byte(vrf+"nv set vrf RED router bgp route-export to-evpn route-target ANY:4001\n"))
	if err == nil || !strings.Contains(err.Error(), "ANY is for imports") {
		t.Errorf("an ANY export target: error %v", err)
	}
}

// TestDualStackKeys: the IPv6 keys of a dual-stack VRF, as NVUE spells
// them, in both forms, give the same configuration.
func TestDualStackKeys(t *testing.T) {
	cmds := `nv set interface swp10 ip vrf RED
nv set interface swp10 ip address 192.168.100.1/24
nv set interface swp10 ip address 2001:db8:100::1/64
nv set vrf RED evpn enable on
nv set vrf RED evpn vni 4001
nv set vrf RED router bgp address-family ipv6-unicast enable on
nv set vrf RED router bgp address-family ipv6-unicast redistribute connected enable on
nv set vrf RED router bgp address-family ipv6-unicast route-export to-evpn enable on
nv set vrf RED router bgp address-family ipv6-unicast aggregate-route 2001:db8:2::/48
nv set vrf RED router bgp address-family ipv4-unicast aggregate-route 192.168.2.0/24
`
	yaml := `- set:
    interface:
      swp10:
        ip:
          address:
            192.168.100.1/24: {}
            2001:db8:100::1/64: {}
          vrf: RED
    vrf:
      RED:
        evpn:
          enable: on
          vni: 4001
        router:
          bgp:
            address-family:
              ipv4-unicast:
                aggregate-route:
                  192.168.2.0/24: {}
              ipv6-unicast:
                enable: on
                redistribute:
                  connected:
                    enable: on
                route-export:
                  to-evpn:
                    enable: on
                aggregate-route:
                  2001:db8:2::/48: {}
`
	a, err := Parse("x.cmds", []byte(cmds))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("x.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a.VRFs, b.VRFs, noPositions); diff != "" {
		t.Errorf("commands vs yaml (-cmds +yaml):\n%s", diff)
	}
	v := a.VRFs["RED"]
	if !v.IPv6Unicast || !v.RedistributeConnected6 || !v.ExportToEVPN6 || v.ExportToEVPN {
		t.Errorf("RED = %+v, want ipv6-unicast on, redistributed, exported (and IPv4 not exported)", v)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("192.168.2.0/24"), netip.MustParsePrefix("2001:db8:2::/48")}; !slices.Equal(v.Aggregates, want) {
		t.Errorf("aggregates %v, want %v", v.Aggregates, want)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("192.168.100.1/24"), netip.MustParsePrefix("2001:db8:100::1/64")}; !slices.Equal(a.Interfaces["swp10"].Addresses, want) {
		t.Errorf("swp10 addresses %v, want %v", a.Interfaces["swp10"].Addresses, want)
	}
}
