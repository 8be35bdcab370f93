package control

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xleaf/xleaf/control/show"
	"github.com/xleaf/xleaf/dataplane"
	"github.com/xleaf/xleaf/test/fixture"
	"github.com/xleaf/xleaf/test/netns"
)

// TestAgentExplainAndLeakMatrix: a RED host's packet to GREEN's host
// route (leaked: label 4002) explained through xleafd's socket, step by
// step with the RIB's provenance; the live program forwards the same frame
// byte for byte; forwarded, such packets show in the leak matrix and its
// metric under RED -> GREEN, and explaining counts none.
func TestAgentExplainAndLeakMatrix(t *testing.T) {
	tb := newTestbed(t, leafConfig)
	// An uplink with the way to leaf01's VTEP, resolved.
	spine := netns.New(t, "spine")
	netns.Veth(t, netns.Dev{Name: "swp1"}, netns.Dev{NS: spine, Name: "eth0", MAC: []byte{0x02, 0, 0, 0, 0, 0x99}})
	netns.IP(t, "addr", "add", "10.0.0.1/31", "dev", "swp1")
	netns.IP(t, "link", "set", "swp1", "up")
	netns.IP(t, "-n", spine, "link", "set", "eth0", "up")
	netns.IP(t, "route", "add", "10.10.10.1/32", "via", "10.0.0.0", "dev", "swp1")
	netns.IP(t, "neigh", "replace", "10.0.0.0", "lladdr", "02:00:00:00:00:99", "dev", "swp1", "nud", "permanent")
	if err := tb.dp.AttachUplink("swp1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.dp.Detach("swp1") })

	ctx := context.Background()
	if err := tb.fabric.Advertise(ctx, fromLeaf01("192.168.2.10/32", 4002)); err != nil {
		t.Fatal(err)
	}
	red := tb.agent.ids["RED"]
	eventually(t, "192.168.2.10/32 in RED", func() bool { _, ok := tb.route(t, red, pfx("192.168.2.10/32")); return ok })
	sock := t.TempDir() + "/xleafd.sock"
	sctx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go tb.agent.Serve(sctx, sock, nil)
	eventually(t, "the socket", func() bool { _, err := os.Stat(sock); return err == nil })

	before, err := tb.dp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	var ex show.Explain
	call(t, sock, &ex, "explain", "in", "swp10", "from", "192.168.100.10", "to", "192.168.2.10", "udp", "dport", "53")
	steps := map[string]show.ExplainStep{}
	var names []string
	for _, s := range ex.Steps {
		steps[s.Step] = s
		names = append(names, s.Step)
	}
	if fmt.Sprint(names) != "[ingress vrf route ecmp underlay verdict]" {
		t.Errorf("steps %v", names)
	}
	if s := steps["route"]; s.Prefix != "192.168.2.10/32" || s.Owner != "GREEN" || s.ImportedBy != "ANY:4002" || s.RouteRT != "65101:4002" {
		t.Errorf("route: %+v; want 192.168.2.10/32 leaked from GREEN, imported by ANY:4002 (the route's 65101:4002)", s)
	}
	if s := steps["ecmp"]; s.VNI != 4002 || s.VTEP != "10.10.10.1" {
		t.Errorf("ecmp: %+v; want VTEP 10.10.10.1, VNI 4002", s)
	}
	if s := steps["underlay"]; s.Interface != "swp1" {
		t.Errorf("underlay: %+v; want out swp1", s)
	}
	if s := steps["verdict"]; s.Reason != "forward-remote" || s.VRF != "RED" || s.To != "GREEN" {
		t.Errorf("verdict: %+v", s)
	}
	if ex.Action != "XDP_REDIRECT" || ex.Egress != "swp1" || ex.Out == nil {
		t.Fatalf("action %s out %s, frame %v", ex.Action, ex.Egress, ex.Out)
	}
	after, err := tb.dp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel's own packets (router solicitations, ARP) pass meanwhile:
	// every other counter must stay.
	delete(before, dataplane.CounterKey{Reason: dataplane.ReasonPass})
	delete(after, dataplane.CounterKey{Reason: dataplane.ReasonPass})
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("explaining moved the counters: %v -> %v", before, after)
	}

	// The live program, on the frame explain built: the same, byte for
	// byte; three of them in the matrix.
	in, err := hex.DecodeString(ex.In.Hex)
	if err != nil {
		t.Fatal(err)
	}
	swp10, err := net.InterfaceByName("swp10")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		action, out := fixture.Run(t, tb.dp.Program(), swp10.Index, in)
		if action != dataplane.XDPRedirect || hex.EncodeToString(out) != ex.Out.Hex {
			t.Fatalf("the live program: action %d, frame\n%x\nexplain: %s, frame\n%s", action, out, ex.Action, ex.Out.Hex)
		}
	}
	var m show.LeakMatrix
	call(t, sock, &m, "show", "vrf", "leak-matrix")
	if len(m.Cells) != 1 || m.Cells[0].From != "RED" || m.Cells[0].To != "GREEN" || m.Cells[0].Packets != 3 || m.Cells[0].Bytes != uint64(3*len(in)) {
		t.Errorf("leak matrix %+v, want RED -> GREEN: 3 packets of %d bytes", m.Cells, len(in))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(tb.agent.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "xleaf_leaked_packets_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := mt.GetLabel()
			if len(l) == 2 && l[0].GetValue() == "RED" && l[1].GetValue() == "GREEN" && mt.GetCounter().GetValue() == 3 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no xleaf_leaked_packets_total{from=RED,to=GREEN} 3 in %v", mfs)
	}
}
