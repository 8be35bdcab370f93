package lab

import (
	"strings"
	"testing"

	"github.com/xleaf/xleaf/control/config"
)

// TestTwin6: the IPv6 twins of tenant addresses and lines, and none for
// the underlay's.
func TestTwin6(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.1.10/24":  "2001:db8:1::10/64",
		"192.168.10.110":   "2001:db8:10::110",
		"192.168.20.0/24":  "2001:db8:20::/64",
		"192.168.100.1/24": "2001:db8:100::1/64",
		"10.10.10.1/32":    "",
		"192.168.1.10/32":  "",
	} {
		if got := Twin6(in); got != want {
			t.Errorf("Twin6(%q) = %q, want %q", in, got, want)
		}
	}
	cfg := Twin6Config(`nv set interface lo ip address 10.10.10.1/32
nv set interface swp10 ip address 192.168.1.1/24
nv set vrf RED router bgp address-family ipv4-unicast aggregate-route 192.168.2.0/24 
nv set vrf RED router bgp address-family ipv4-unicast route-export to-evpn enable on
nv set vrf RED router bgp address-family ipv4-unicast route-import
nv set vrf default router bgp address-family ipv4-unicast enable on
`)
	twins := cfg[strings.Index(cfg, "# The IPv6 twins"):]
	want := `# The IPv6 twins of the tenant lines above (dual-stack tenants).
nv set interface lo ip address 2001:db8:ffff:10::1/128
nv set interface swp10 ip address 2001:db8:1::1/64
nv set vrf RED router bgp address-family ipv6-unicast aggregate-route 2001:db8:2::/64
nv set vrf RED router bgp address-family ipv6-unicast route-export to-evpn enable on
nv set vrf RED router bgp address-family ipv6-unicast route-import
`
	if twins != want {
		t.Errorf("twins:\n%s\nwant:\n%s", twins, want)
	}
	for _, sw := range Switches {
		cfg, err := sw.Config(true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(sw.Name+".cfg", []byte(Twin6Config(cfg))); err != nil {
			t.Errorf("%s with its twins: %v", sw.Name, err)
		}
	}
}
