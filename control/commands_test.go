package control

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/control/show"
)

func TestCommandMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typed string
		want  string // the matched row's words; "" for no match
		args  Args
	}{
		{"show vrf RED evpn bgp-info", "show vrf VRF evpn bgp-info", Args{"VRF": "RED"}},
		{"show route vrf RED", "show route vrf VRF", Args{"VRF": "RED"}},
		{"show bgp vrf RED", "show bgp vrf VRF", Args{"VRF": "RED"}},
		{"show bgp summary", "show bgp summary", Args{}},
		{"show counters", "show counters", Args{}},
		{"config apply", "config apply", Args{}},

		// A VRF may be named like a keyword: its place makes it the argument.
		{"show bgp vrf summary", "show bgp vrf VRF", Args{"VRF": "summary"}},
		{"show route vrf vrf", "show route vrf VRF", Args{"VRF": "vrf"}},
		{"show vrf bgp-info evpn bgp-info", "show vrf VRF evpn bgp-info", Args{"VRF": "bgp-info"}},
		{"show vrf evpn evpn bgp-info", "show vrf VRF evpn bgp-info", Args{"VRF": "evpn"}},

		// Wrong arity.
		{"", "", nil},
		{"show", "", nil},
		{"show route vrf", "", nil},
		{"show route vrf RED extra", "", nil},
		{"show bgp summary RED", "", nil},
		{"show vrf RED evpn", "", nil},

		// Unknown words.
		{"show nonsense", "", nil},
		{"show route table RED", "", nil},
		{"show vrf RED evpn bgp", "", nil},
		{"SHOW counters", "", nil},
		{"show VRF", "", nil},
	}
	for _, tt := range tests {
		c, args, ok := Match(strings.Fields(tt.typed))
		if c.Words != tt.want || ok != (tt.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", tt.typed, c.Words, ok, tt.want)
			continue
		}
		if diff := cmp.Diff(tt.args, args); diff != "" {
			t.Errorf("Match(%q) args (-want +got):\n%s", tt.typed, diff)
		}
	}
}

// Every row must be reachable: a row that another row's words also match
// would never run, or would run instead of it.
func TestCommandRowsDoNotOverlap(t *testing.T) {
	t.Parallel()
	for i, x := range Commands {
		for _, y := range Commands[i+1:] {
			if overlap(strings.Fields(x.Words), strings.Fields(y.Words)) {
				t.Errorf("%q and %q match the same words", x.Words, y.Words)
			}
		}
	}
}

func overlap(x, y []string) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !isArg(x[i]) && !isArg(y[i]) && x[i] != y[i] {
			return false
		}
	}
	return true
}

func TestCommandUsage(t *testing.T) {
	t.Parallel()
	usage, unknown := Usage(), ErrUsage.Error()
	if !strings.HasPrefix(unknown, "unknown command") {
		t.Errorf("ErrUsage = %q: xleafctl's users and tests look for \"unknown command\"", unknown)
	}
	for _, c := range Commands {
		if c.Help == "" || c.Run == nil || c.Text == nil {
			t.Errorf("%q: help, handler and renderer are all needed", c.Words)
		}
		if !strings.Contains(usage, c.Words) || !strings.Contains(usage, c.Help) {
			t.Errorf("usage lacks %q (%s):\n%s", c.Words, c.Help, usage)
		}
		if !strings.Contains(unknown, c.Words) {
			t.Errorf("ErrUsage lacks %q: %s", c.Words, unknown)
		}
	}
}

// Each row's renderer decodes what its handler returns; the golden files in
// control/show hold what the text looks like.
func TestCommandText(t *testing.T) {
	t.Parallel()
	samples := map[string]struct {
		data any
		want string // a line only this show type prints
	}{
		"show vrf VRF evpn bgp-info": {show.BGPInfo{VRF: "RED", LocalVTEP: "10.10.10.10", ExportRTs: []string{"65110:4001"}},
			"[export-route-target]  65110:4001"},
		"show route vrf VRF": {show.RouteTable{VRF: "RED", Routes: []show.Route{{Prefix: "0.0.0.0/0", Protocol: "kernel",
			Distance: 255, Metric: 8192, Unreach: true, Installed: true, Since: time.Now()}}},
			"K>* 0.0.0.0/0 [255/8192] unreachable (ICMP unreachable)"},
		"show bgp vrf VRF": {show.BGPTable{VRF: "RED", RouterID: "10.10.10.10", ASN: 65110,
			Prefixes6: []show.BGPPrefix{{Prefix: "2001:db8:1::/64", Paths: []show.BGPPath{{Best: true, NextHop: "::ffff:10.10.10.1", Origin: "i"}}}}},
			"BGP table, local router ID is 10.10.10.10, vrf RED"},
		"show bgp summary": {show.Summary{RouterID: "10.10.10.10", ASN: 65110, Peers: []show.Peer{{Neighbor: "spine01"}}},
			"Total number of neighbors 1"},
		"show counters": {show.Counters{{VRF: "RED", Reason: "forward", Packets: 3, Bytes: 300}},
			"RED  forward  3"},
		"show vrf leak-matrix": {show.LeakMatrix{Cells: []show.Leak{{From: "RED", To: "GREEN", Packets: 7}, {From: "RED", To: "vni 5002", VNI: 5002, Packets: 9}}},
			"RED            7         9"},
		"show underlay": {show.Underlay{Live: true, VTEPs: []show.UnderlayVTEP{
			{VTEP: "10.10.10.1", Resolved: true, Paths: []show.UnderlayPath{{Interface: "swp1", NextHopMAC: "02:00:00:00:01:02", MTU: 9216}}},
			{VTEP: "10.10.99.1", Reason: "next hop 169.254.3.5 on swp3 not resolved"}}},
			"10.10.99.1  -          (kernel lookup: next hop 169.254.3.5 on swp3 not resolved)"},
		"explain PACKET...": {show.Explain{Packet: "192.168.1.10 -> 192.168.20.110 icmp echo request", Ingress: "swp10",
			Steps: []show.ExplainStep{{Step: "verdict", Text: "forward-remote, counted in VRF RED"}}, Action: "XDP_TX", Egress: "swp1"},
			"Action:  XDP_TX out swp1"},
		"verify": {VerifyReport{VRFs: 2, Routes: 9, Differences: []rib.Difference{{VRF: "RED", Prefix: "10.99.0.0/16", Kind: "extra", Got: "blackhole"}}},
			"RED  10.99.0.0/16  extra       -     blackhole"},
		"show version": {Version{Version: "1.2+3.gabcdef0", Started: time.Now().Add(-time.Hour), PID: 42},
			"xleafd 1.2+3.gabcdef0, pid 42, up 1h0m0s"},
		"config apply": {"applied", "applied"},
		"shutdown":     {"xleafd stopping", "xleafd stopping"},
	}
	for _, c := range Commands {
		s, ok := samples[c.Words]
		if !ok {
			t.Errorf("%q: no sample to render; add one here", c.Words)
			continue
		}
		data, err := json.Marshal(s.data)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := c.Text(&b, data); err != nil {
			t.Errorf("%q: %v", c.Words, err)
		} else if !strings.Contains(b.String(), s.want) {
			t.Errorf("%q printed\n%s\nwant a line with %q", c.Words, b.String(), s.want)
		}
		if err := c.Text(&b, json.RawMessage(`[`)); err == nil {
			t.Errorf("%q: rendered a truncated answer", c.Words)
		}
	}
}

// TestExplainWords: explain's packet description, and what it refuses.
func TestExplainWords(t *testing.T) {
	t.Parallel()
	c, args, ok := Match(strings.Fields("explain in swp3 vni 4001 from 192.168.1.10 to 192.168.20.110 udp dport 53 ttl 2 df"))
	if !ok || c.Words != "explain PACKET..." {
		t.Fatalf("explain not matched: %v %v", c.Words, ok)
	}
	r, err := parseExplain(strings.Fields(args["PACKET..."]))
	if err != nil {
		t.Fatal(err)
	}
	want := explainReq{port: "swp3", vni: 4001, outerSrc: defaultOuterSrc, src: netip.MustParseAddr("192.168.1.10"),
		dst: netip.MustParseAddr("192.168.20.110"), proto: "udp", sport: 40000, dport: 53, ttl: 2, size: 84, df: true}
	if r != want {
		t.Errorf("parsed %+v\nwant %+v", r, want)
	}
	r, err = parseExplain(strings.Fields("in swp10 from 2001:db8:1::10 to 2001:db8:20::110 tcp ttl 1"))
	if want := (explainReq{port: "swp10", outerSrc: defaultOuterSrc, src: netip.MustParseAddr("2001:db8:1::10"),
		dst: netip.MustParseAddr("2001:db8:20::110"), proto: "tcp", sport: 40000, dport: 80, ttl: 1, size: 84}); err != nil || r != want {
		t.Errorf("IPv6: parsed %+v, %v\nwant %+v", r, err, want)
	}
	for words, why := range map[string]string{
		"in swp10 from 192.168.1.10":                                             "from and to are needed",
		"from 192.168.1.10 to 192.168.2.1":                                       "which port",
		"in swp10 from 192.168.1.10 to 2001:db8::1":                              "one family",
		"in swp10 from 2001:db8::2 to 2001:db8::1 df":                            "no DF bit",
		"in swp10 from 2001:db8::2 to 2001:db8::1 size 40":                       "at least 48",
		"in swp3 vni 4001 outer-src 2001:db8::9 from 2001:db8::2 to 2001:db8::1": "the underlay is IPv4",
		"in swp10 from 192.168.1.10 to 192.168.2.1 ttl":                          `"ttl" needs a value`,
		"in swp10 from 192.168.1.10 to 192.168.2.1 ttl x":                        `ttl "x"`,
		"in swp10 from 192.168.1.10 to 192.168.2.1 vni 0":                        "vni 0",
		"in swp10 from 192.168.1.10 to 192.168.2.1 size 8":                       "at least 28",
		"in swp10 from 192.168.1.10 to 192.168.2.1 color red":                    `unknown word "color"`,
	} {
		if _, err := parseExplain(strings.Fields(words)); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want an error saying %q", words, err, why)
		}
	}
}

// TestSessionCache: a scrape reads the sessions from GoBGP at most once in
// sessionReadShare times the last read's length (at least a second), in the background;
// between, it gets the last read at once.
func TestSessionCache(t *testing.T) {
	t.Parallel()
	var c sessionCache
	var mu sync.Mutex
	reads := 0
	read := func() (show.Summary, error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		return show.Summary{ASN: uint32(reads)}, nil
	}
	if s, _ := c.get(read); s.ASN != 1 {
		t.Fatalf("first scrape: %+v, want the first read", s)
	}
	for range 100 {
		if s, _ := c.get(read); s.ASN != 1 {
			t.Fatalf("scrape within the second: %+v, want the first read again", s)
		}
	}
	c.mu.Lock()
	c.at = c.at.Add(-2 * time.Second) // a read of long ago
	c.mu.Unlock()
	if s, _ := c.get(read); s.ASN != 1 {
		t.Fatalf("stale scrape: %+v, want the last read while the next runs", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _ := c.get(read)
		if s.ASN == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background read never landed: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if reads != 2 {
		t.Errorf("%d reads, want 2", reads)
	}
}
