package bgp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	addr  = netip.MustParseAddr
	rmac6 = net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x06}
)

func freePort(t *testing.T) int32 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// pair brings up two real GoBGP speakers on loopback: borderleaf01 (AS
// 65110, passive) and borderleaf04 (AS 65210) with an EVPN session.
func pair(t *testing.T) (bl01, bl04 *Speaker) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	port := freePort(t)
	bl01, bl04 = New(log), New(log)
	t.Cleanup(func() { bl01.Stop(false); bl04.Stop(false) })
	if err := bl01.Start(ctx, Global{ASN: 65110, RouterID: addr("10.10.10.10"), ListenPort: port, ListenAddr: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	if err := bl04.Start(ctx, Global{ASN: 65210, RouterID: addr("10.10.20.11"), ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	if err := bl01.AddPeer(ctx, Peer{Address: addr("127.0.0.1"), ASN: 65210, Passive: true, EVPN: true}); err != nil {
		t.Fatal(err)
	}
	if err := bl04.AddPeer(ctx, Peer{Address: addr("127.0.0.1"), ASN: 65110, Port: uint32(port), EVPN: true, ConnectRetry: 1}); err != nil {
		t.Fatal(err)
	}
	return bl01, bl04
}

// watch collects bl's received events on a channel.
func watch(t *testing.T, sp *Speaker) (<-chan Event, <-chan error) {
	events, bad := make(chan Event, 16), make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := sp.Watch(ctx, func(e Event) { events <- e }, func(err error) { bad <- err }); err != nil {
		t.Fatal(err)
	}
	return events, bad
}

func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(30 * time.Second):
		t.Fatal("no route received in 30s")
		return Event{}
	}
}

var cmpPath = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// TestType5RoundTrip: a Type-5 route originated by one real speaker
// arrives at the other with its RD, prefix, VNI label, router MAC, route
// target and VTEP, then goes with its withdrawal.
func TestType5RoundTrip(t *testing.T) {
	bl01, bl04 := pair(t)
	events, _ := watch(t, bl04)
	t5 := Type5{RD: "10.10.10.10:3", Prefix: netip.MustParsePrefix("192.168.2.0/24"), VTEP: addr("10.10.10.10"),
		VNI: 4001, RouterMAC: rmac6, RTs: []RT{{ASN: 65110, Value: 4001}}}
	if err := bl01.Advertise(context.Background(), t5); err != nil {
		t.Fatal(err)
	}
	got := next(t, events)
	want := Event{Route: &Route{Peer: "127.0.0.1", RD: "10.10.10.10:3", Prefix: t5.Prefix, VTEP: t5.VTEP, VNI: 4001,
		RouterMAC: rmac6, RTs: []RT{{ASN: 65110, Value: 4001}}, ASPath: []uint32{65110}}}
	if diff := cmp.Diff(want, got, cmpPath, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	if err := bl01.Withdraw(context.Background(), t5); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); !e.Withdraw || e.Route.Prefix != t5.Prefix {
		t.Errorf("got %+v, want the withdrawal of %v", e, t5.Prefix)
	}
}

// TestRouteTargetFormsAndOrigin: route targets of every form (two- and
// four-octet AS, IPv4 address) and the origin of a redistributed route
// arrive as they were sent.
func TestRouteTargetFormsAndOrigin(t *testing.T) {
	bl01, bl04 := pair(t)
	events, _ := watch(t, bl04)
	rts := []RT{{ASN: 65110, Value: 4001}, {ASN: 4200000000, Value: 4001}, {Addr: addr("10.10.10.5"), Value: 4001}}
	t5 := Type5{RD: "10.10.10.10:3", Prefix: netip.MustParsePrefix("192.168.2.0/24"), VTEP: addr("10.10.10.10"),
		VNI: 4001, RouterMAC: rmac6, RTs: rts, Incomplete: true}
	if err := bl01.Advertise(context.Background(), t5); err != nil {
		t.Fatal(err)
	}
	got := next(t, events).Route
	if diff := cmp.Diff(rts, got.RTs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("route targets (-sent +received):\n%s", diff)
	}
	if got.Origin != 2 {
		t.Errorf("origin %d, want 2 (incomplete)", got.Origin)
	}
	if s := fmt.Sprint(got.RTs); s != "[65110:4001 4200000000:4001 10.10.10.5:4001]" {
		t.Errorf("route targets print as %s", s)
	}
}

// TestReceivedRouteKinds: a MAC/IP route with an L3VNI is a /32 host route;
// one with only an L2VNI is layer 2 and skipped; a Type-5 route without a
// router MAC is reported bad and the session keeps the others.
func TestReceivedRouteKinds(t *testing.T) {
	bl01, bl04 := pair(t)
	events, bad := watch(t, bl04)
	rd, _ := bgp.ParseRouteDistinguisher("10.10.10.1:2")
	add := func(nlri *bgp.EVPNNLRI, err error, comms ...bgp.ExtendedCommunityInterface) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		reach, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_EVPN, []bgp.PathNLRI{{NLRI: nlri}}, addr("10.10.10.1"))
		if err != nil {
			t.Fatal(err)
		}
		attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), reach, bgp.NewPathAttributeExtendedCommunities(comms)}
		if err := bl01.addPath(localPath(bgp.RF_EVPN, nlri, attrs, false)); err != nil {
			t.Fatal(err)
		}
	}
	rt := bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 65101, 4001, true)
	rm := bgp.NewRoutersMacExtended("44:38:39:22:dd:01")
	esi := bgp.EthernetSegmentIdentifier{}
	nlri, err := bgp.NewEVPNMacIPAdvertisementRoute(rd, esi, 0, "02:00:00:00:00:10", netip.Addr{}, []uint32{10})
	add(nlri, err, rt)
	nlri, err = bgp.NewEVPNIPPrefixRoute(rd, esi, 0, 24, addr("192.168.7.0"), netip.IPv4Unspecified(), 4001)
	add(nlri, err, rt) // no router MAC
	nlri, err = bgp.NewEVPNMacIPAdvertisementRoute(rd, esi, 0, "02:00:00:00:00:10", addr("192.168.1.10"), []uint32{10, 4001})
	add(nlri, err, rt, rm)

	got := next(t, events)
	want := &Route{Peer: "127.0.0.1", RD: "10.10.10.1:2", Prefix: netip.MustParsePrefix("192.168.1.10/32"), VTEP: addr("10.10.10.1"),
		VNI: 4001, RouterMAC: net.HardwareAddr{0x44, 0x38, 0x39, 0x22, 0xdd, 0x01}, RTs: []RT{{ASN: 65101, Value: 4001}},
		ASPath: []uint32{65110}, Type2: true, HostMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x10}}
	if diff := cmp.Diff(want, got.Route, cmpPath, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("type-2 host route (-want +got):\n%s", diff)
	}
	select {
	case err := <-bad:
		t.Logf("reported as bad, as it should be: %v", err)
	case <-time.After(5 * time.Second):
		t.Error("a type-5 route without a router MAC was not reported")
	}
	select {
	case e := <-events:
		t.Errorf("unexpected event %+v (layer-2 only or bad routes must not reach the rib)", e.Route)
	case <-time.After(time.Second):
	}
}

// TestUnderlayNextHop: a loopback one speaker originates arrives at the
// other with the session's address as next hop: in NEXT_HOP over an IPv4
// session, in MP_REACH over an IPv6 one (RFC 5549, as over unnumbered
// links); its withdrawal follows.
func TestUnderlayNextHop(t *testing.T) {
	for _, session := range []string{"127.0.0.1", "::1"} {
		t.Run(session, func(t *testing.T) {
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			port := freePort(t)
			a, b := New(log), New(log)
			t.Cleanup(func() { a.Stop(false); b.Stop(false) })
			if err := a.Start(ctx, Global{ASN: 65110, RouterID: addr("10.10.10.10"), ListenPort: -1}); err != nil {
				t.Fatal(err)
			}
			if err := b.Start(ctx, Global{ASN: 65210, RouterID: addr("10.10.20.11"), ListenPort: port, ListenAddr: []string{session}}); err != nil {
				t.Fatal(err)
			}
			if err := b.AddPeer(ctx, Peer{Address: addr(session), ASN: 65110, Passive: true, IPv4: true}); err != nil {
				t.Fatal(err)
			}
			if err := a.AddPeer(ctx, Peer{Address: addr(session), ASN: 65210, Port: uint32(port), LocalAddr: addr(session), IPv4: true, ConnectRetry: 1}); err != nil {
				t.Fatal(err)
			}
			heard, _ := watch(t, b)
			loopback := netip.MustParsePrefix("10.10.10.10/32")
			if err := a.AdvertiseIPv4(ctx, loopback, false); err != nil {
				t.Fatal(err)
			}
			want := Underlay{Peer: session, Prefix: loopback, NextHop: addr(session)}
			if diff := cmp.Diff(want, *next(t, heard).Underlay, cmpPath, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("underlay route (-want +got):\n%s", diff)
			}
			if err := a.AdvertiseIPv4(ctx, loopback, true); err != nil {
				t.Fatal(err)
			}
			if e := next(t, heard); !e.Withdraw || e.Underlay == nil || e.Underlay.Prefix != loopback {
				t.Errorf("got %+v, want the withdrawal of %v", e, loopback)
			}
		})
	}
}

// TestType5OnlyTowardsDCI: towards a peer under the guide's control_t5
// route-map only the Type-5 routes this leaf originates go, without the
// marker; the fabric side gets everything; next hops are unchanged.
func TestType5OnlyTowardsDCI(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	start := func(asn uint32, id string, listen string) (*Speaker, int32) {
		sp, port := New(log), freePort(t)
		t.Cleanup(func() { sp.Stop(false) })
		g := Global{ASN: asn, RouterID: addr(id), ListenPort: port, ListenAddr: []string{listen}}
		if listen == "" {
			g.ListenPort, g.ListenAddr = -1, nil
		}
		if err := sp.Start(ctx, g); err != nil {
			t.Fatal(err)
		}
		return sp, port
	}
	bl01, _ := start(65110, "10.10.10.10", "")
	spine, spinePort := start(65199, "10.10.10.199", "127.0.0.2")
	dci, dciPort := start(65210, "10.10.20.11", "127.0.0.3")
	for _, sp := range []*Speaker{spine, dci} {
		if err := sp.AddPeer(ctx, Peer{Address: addr("127.0.0.1"), ASN: 65110, Passive: true, EVPN: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []Peer{
		{Address: addr("127.0.0.2"), Port: uint32(spinePort), EVPN: true, ConnectRetry: 1},
		{Address: addr("127.0.0.3"), Port: uint32(dciPort), EVPN: true, ConnectRetry: 1},
	} {
		if err := bl01.AddPeer(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := bl01.SetType5Only(ctx, []netip.Addr{addr("127.0.0.3")}); err != nil {
		t.Fatal(err)
	}
	spineHeard, _ := watch(t, spine)
	dciHeard, _ := watch(t, dci)

	own := Type5{RD: "10.10.10.10:1", Prefix: netip.MustParsePrefix("192.168.2.0/24"), VTEP: addr("10.10.10.10"),
		VNI: 4001, RouterMAC: rmac6, RTs: []RT{{ASN: 65110, Value: 4001}}}
	if err := bl01.Advertise(ctx, own); err != nil {
		t.Fatal(err)
	}
	host := Host{RD: "10.10.10.10:1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x10}, IP: addr("192.168.100.10"), VTEP: addr("10.10.10.10"),
		VNI: 4001, RouterMAC: rmac6, RTs: []RT{{ASN: 65110, Value: 4001}}}
	if err := bl01.AdvertiseHost(ctx, host); err != nil {
		t.Fatal(err)
	}
	// A Type-5 route bl01 learns from the spine is not its own: held back.
	learned := Type5{RD: "10.10.10.1:2", Prefix: netip.MustParsePrefix("192.168.1.0/24"), VTEP: addr("10.10.10.1"),
		VNI: 4001, RouterMAC: rmac6, RTs: []RT{{ASN: 65101, Value: 4001}}}
	if err := spine.Advertise(ctx, learned); err != nil {
		t.Fatal(err)
	}

	got := map[string]bool{}
	for len(got) < 2 {
		e := next(t, spineHeard)
		got[e.Route.Prefix.String()] = true
	}
	if !got["192.168.2.0/24"] || !got["192.168.100.10/32"] {
		t.Errorf("the spine heard %v, want the Type-5 and the Type-2 route", got)
	}
	e := next(t, dciHeard)
	if e.Route.Prefix != own.Prefix || e.Route.Type2 || e.Route.VTEP != own.VTEP {
		t.Errorf("the DCI peer heard %+v, want only our Type-5 %v with next hop %v", e.Route, own.Prefix, own.VTEP)
	}
	select {
	case e := <-dciHeard:
		t.Errorf("the DCI peer also heard %v (type-2 %v): only our Type-5 routes may cross", e.Route.Prefix, e.Route.Type2)
	case <-time.After(3 * time.Second):
	}
	// The marker is ours: it does not leave.
	err := dci.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_EVPN}, func(prefix bgp.NLRI, paths []*apiutil.Path) {
		for _, p := range paths {
			for _, a := range p.Attrs {
				if _, ok := a.(*bgp.PathAttributeLargeCommunities); ok {
					t.Errorf("%s arrived with large communities %v", prefix, a)
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGRPC: with an address, GoBGP's own API answers there, so the stock
// gobgp CLI of the same GoBGP release works against xleafd: it lists the
// peers and the EVPN routes this leaf originates.
func TestGRPC(t *testing.T) {
	port := freePort(t)
	target := fmt.Sprintf("127.0.0.1:%d", port)
	sp := New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), target)
	t.Cleanup(func() { sp.Stop(false) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sp.Start(ctx, Global{ASN: 65110, RouterID: addr("10.10.10.10"), ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	if err := sp.AddPeer(ctx, Peer{Address: addr("127.0.0.9"), ASN: 65210, Passive: true, EVPN: true}); err != nil {
		t.Fatal(err)
	}
	t5 := Type5{RD: "10.10.10.10:3", Prefix: netip.MustParsePrefix("192.168.2.0/24"), VTEP: addr("10.10.10.10"),
		VNI: 4001, RouterMAC: rmac6, RTs: []RT{{ASN: 65110, Value: 4001}}}
	if err := sp.Advertise(ctx, t5); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := api.NewGoBgpServiceClient(conn)
	// GoBGP starts listening in a goroutine of its own.
	var resp *api.GetBgpResponse
	for {
		if resp, err = c.GetBgp(ctx, &api.GetBgpRequest{}); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GetBgp over gRPC: %v", err)
	}
	if resp.Global.Asn != 65110 || resp.Global.RouterId != "10.10.10.10" {
		t.Errorf("gRPC says AS %d router-id %s", resp.Global.Asn, resp.Global.RouterId)
	}

	peers, err := c.ListPeer(ctx, &api.ListPeerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var neighbours []string
	for {
		r, err := peers.Recv()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("list peers over gRPC: %v", err)
		}
		neighbours = append(neighbours, fmt.Sprintf("%s AS %d", r.Peer.Conf.NeighborAddress, r.Peer.Conf.PeerAsn))
	}
	if diff := cmp.Diff([]string{"127.0.0.9 AS 65210"}, neighbours); diff != "" {
		t.Errorf("peers over gRPC (-want +got):\n%s", diff)
	}

	paths, err := c.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: familyEVPN})
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for {
		r, err := paths.Recv()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("list evpn rib over gRPC: %v", err)
		}
		for _, p := range r.Destination.Paths {
			nlri, err := apiutil.GetNativeNlri(p)
			if err != nil {
				t.Fatalf("%s: %v", r.Destination.Prefix, err)
			}
			attrs, err := apiutil.GetNativePathAttributes(p)
			if err != nil {
				t.Fatalf("%s: %v", r.Destination.Prefix, err)
			}
			var nh netip.Addr
			for _, a := range attrs {
				if reach, ok := a.(*bgp.PathAttributeMpReachNLRI); ok {
					nh = reach.Nexthop
				}
			}
			if route, ok := nlri.(*bgp.EVPNNLRI).RouteTypeData.(*bgp.EVPNIPPrefixRoute); ok {
				routes = append(routes, fmt.Sprintf("type-5 rd %s %s/%d label %d via %s",
					route.RD, route.IPPrefix, route.IPPrefixLength, route.Label, nh))
			} else {
				routes = append(routes, r.Destination.Prefix)
			}
		}
	}
	if diff := cmp.Diff([]string{"type-5 rd 10.10.10.10:3 192.168.2.0/24 label 4001 via 10.10.10.10"}, routes); diff != "" {
		t.Errorf("evpn rib over gRPC (-want +got):\n%s", diff)
	}
}
