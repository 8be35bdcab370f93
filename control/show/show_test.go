package show

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	now   = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	since = now.Add(-45*time.Minute - 4*time.Second)
)

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// borderleaf01's RED table from the guide, as xleaf holds it.
var guideRED = RouteTable{VRF: "RED", Routes: []Route{
	{Prefix: "0.0.0.0/0", Protocol: "kernel", Distance: 255, Metric: 8192, Unreach: true, Installed: true, Since: now.Add(-45*time.Minute - 7*time.Second)},
	{Prefix: "192.168.1.0/24", Protocol: "bgp", Distance: 20, Installed: true, Since: since,
		Nexthops: []Nexthop{{Via: "10.10.10.1"}, {Via: "10.10.10.2"}}},
	{Prefix: "192.168.1.10/32", Protocol: "bgp", Distance: 20, Installed: true, Since: since,
		Nexthops: []Nexthop{{Via: "10.10.10.1"}, {Via: "10.10.10.2"}}},
	{Prefix: "192.168.2.0/24", Protocol: "bgp", Distance: 200, Blackhole: true, Installed: true, Since: since},
	{Prefix: "192.168.2.10/32", Protocol: "bgp", Distance: 20, Installed: true, Since: since,
		Nexthops: []Nexthop{{Via: "10.10.10.1", Label: 4002}, {Via: "10.10.10.2", Label: 4002}}},
	{Prefix: "192.168.10.0/24", Protocol: "bgp", Distance: 20, Installed: true, Since: since, Nexthops: []Nexthop{{Via: "10.10.20.11", Label: 5002}}},
	{Prefix: "192.168.20.0/24", Protocol: "bgp", Distance: 20, Installed: true, Since: since, Nexthops: []Nexthop{{Via: "10.10.20.11", Label: 5001}}},
	{Prefix: "192.168.100.0/24", Protocol: "connected", Installed: true, Since: since, Nexthops: []Nexthop{{Iface: "swp10", VRF: "RED"}}},
	{Prefix: "192.168.200.0/24", Protocol: "connected", Installed: false, Since: since, Nexthops: []Nexthop{{Iface: "swp20", VRF: "GREEN"}}},
}, Routes6: []Route{
	{Prefix: "::/0", Protocol: "kernel", Distance: 255, Metric: 8192, Unreach: true, Installed: true, Since: now.Add(-45*time.Minute - 7*time.Second)},
	{Prefix: "2001:db8:1::/64", Protocol: "bgp", Distance: 20, Installed: true, Since: since,
		Nexthops: []Nexthop{{Via: "::ffff:10.10.10.1"}, {Via: "::ffff:10.10.10.2"}}},
	{Prefix: "2001:db8:100::/64", Protocol: "connected", Installed: true, Since: since, Nexthops: []Nexthop{{Iface: "swp10", VRF: "RED"}}},
	{Prefix: "fe80::/64", Protocol: "connected", Installed: true, Since: now.Add(-45*time.Minute - 7*time.Second), Nexthops: []Nexthop{{Iface: "swp10", VRF: "RED"}}},
}}

func TestShowRouteText(t *testing.T) {
	var b bytes.Buffer
	if err := guideRED.Text(&b, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "route-vrf-red.txt", b.Bytes())
}

func TestShowBGPInfoText(t *testing.T) {
	var b bytes.Buffer
	info := BGPInfo{VRF: "RED", VNI: 4001, LocalVTEP: "10.10.10.10", RouterMAC: "44:38:39:22:dd:06", SystemIP: "10.10.10.10",
		SystemMAC: "44:38:39:22:dd:06", RD: "10.10.10.10:1", ExportRTs: []string{"65110:4001"},
		ImportRTs: []string{"0:4001", "0:4002", "65210:5001", "65210:5002"}}
	if err := info.Text(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "bgp-info-red.txt", b.Bytes())
}

func TestShowBGPText(t *testing.T) {
	var b bytes.Buffer
	tbl := BGPTable{VRF: "RED", RouterID: "10.10.20.11", ASN: 65210, Prefixes: []BGPPrefix{
		{Prefix: "192.168.1.0/24", Paths: []BGPPath{{Best: true, NextHop: "10.10.10.10", ASPath: []uint32{65110}, Origin: "i"}}},
		{Prefix: "192.168.10.110/32", Paths: []BGPPath{
			{Multipath: true, NextHop: "10.10.20.2", ASPath: []uint32{65299, 65202}, Origin: "i"},
			{Best: true, NextHop: "10.10.20.1", ASPath: []uint32{65299, 65201}, Origin: "i"}}},
		{Prefix: "192.168.20.0/24", Paths: []BGPPath{
			{Best: true, NextHop: "0.0.0.0", Weight: 32768, Origin: "i"},
			{NextHop: "10.10.20.2", ASPath: []uint32{65299, 65202}, Origin: "?"}}},
	}}
	if err := tbl.Text(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "bgp-vrf-red.txt", b.Bytes())
}

func TestShowSummaryAndCounters(t *testing.T) {
	var b bytes.Buffer
	s := Summary{RouterID: "10.10.10.10", ASN: 65110, Peers: []Peer{
		{Neighbor: "swp1", Address: "fe80::1%swp1", AS: 65199, State: "established", Uptime: "45m4s", Received: 8, Sent: 2,
			GR: PeerGR{Mode: "full", Negotiated: true, PeerRestartTime: 120}},
		{Neighbor: "swp2", Address: "fe80::2%swp2", AS: 65199, State: "idle", Uptime: "never",
			GR: PeerGR{Mode: "full", Negotiated: true, PeerRestarting: true, PeerRestartTime: 120}},
		{Neighbor: "swp3", Address: "fe80::3%swp3", AS: 0, State: "active", Uptime: "never", GR: PeerGR{Mode: "full"}},
	}}
	if err := s.Text(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n")
	cs := Counters{{VRF: "-", Reason: "pass", Packets: 12, Bytes: 1500}, {VRF: "RED", Reason: "forward-remote", Packets: 1000, Bytes: 98000}}
	if err := cs.Text(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-counters.txt", b.Bytes())
}

func TestUptime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "00:00:00", 45*time.Minute + 4*time.Second: "00:45:04", 27*time.Hour + 32*time.Minute: "1d03h32m", -time.Second: "00:00:00",
	} {
		if got := uptime(d); got != want {
			t.Errorf("uptime(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestShowLeakMatrix: rows sorted, VRF columns before VNIs elsewhere (by
// number), 0 where nothing went.
func TestShowLeakMatrix(t *testing.T) {
	var b bytes.Buffer
	m := LeakMatrix{Cells: []Leak{
		{From: "RED", To: "GREEN", Packets: 7, Bytes: 700}, {From: "RED", To: "RED", Packets: 123, Bytes: 12300},
		{From: "GREEN", To: "RED", Packets: 5, Bytes: 500}, {From: "RED", To: "vni 5002", VNI: 5002, Packets: 9, Bytes: 900},
		{From: "GREEN", To: "vni 10001", VNI: 10001, Packets: 1, Bytes: 100}, {From: "GREEN", To: "vni 5001", VNI: 5001, Packets: 2, Bytes: 200},
	}}
	if err := m.Text(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "leak-matrix.txt", b.Bytes())
}
