package control

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/xleaf/xleaf/control/config"
)

// TestType5OnlyRouteMaps: which EVPN outbound route-maps mean "only our
// Type-5 routes" (the guide's control_t5), and which need no filter.
func TestType5OnlyRouteMaps(t *testing.T) {
	t.Parallel()
	base := `nv set router bgp autonomous-system 65110
nv set router bgp router-id 10.10.10.10
nv set vrf default router bgp neighbor swp3 peer-group dci
nv set vrf default router bgp neighbor swp3 type unnumbered
nv set vrf default router bgp peer-group dci remote-as external
`
	for _, tc := range []struct {
		name, rules string
		want        bool
	}{
		{"the guide's control_t5", `nv set router policy route-map m rule 1 action permit
nv set router policy route-map m rule 1 match evpn-route-type ip-prefix
nv set router policy route-map m rule 3 action deny`, true},
		{"implicit deny after ip-prefix", `nv set router policy route-map m rule 1 action permit
nv set router policy route-map m rule 1 match evpn-route-type ip-prefix`, true},
		{"permit all", `nv set router policy route-map m rule 10 action permit`, false},
		{"deny macip first, then permit all", `nv set router policy route-map m rule 5 action deny
nv set router policy route-map m rule 5 match evpn-route-type macip
nv set router policy route-map m rule 6 action deny
nv set router policy route-map m rule 6 match evpn-route-type multicast
nv set router policy route-map m rule 10 action permit`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := base + tc.rules + "\nnv set vrf default router bgp peer-group dci address-family l2vpn-evpn policy outbound route-map m\n"
			cfg, err := config.Parse("t.cfg", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(slog.NewTextHandler(&strings.Builder{}, nil))
			if got := type5Only(log, cfg, cfg.Default.Neighbors["swp3"]); got != tc.want {
				t.Errorf("type5Only = %v, want %v", got, tc.want)
			}
		})
	}
}
