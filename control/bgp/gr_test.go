package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"
)

// grPeer is an EVPN session to the helper on port, with graceful restart.
func grPeer(port int32, restartTime uint32, restarting bool) Peer {
	return Peer{Address: addr("127.0.0.1"), ASN: 65110, Port: uint32(port), EVPN: true, ConnectRetry: 1,
		GR: GR{Enabled: true, RestartTime: restartTime, Restarting: restarting, Deferral: 10}}
}

// grHelper starts borderleaf01 (AS 65110), passive, with graceful restart
// towards borderleaf04, and watches what it keeps.
func grHelper(t *testing.T, log *slog.Logger, restartTime uint32) (*Speaker, int32, <-chan Event) {
	ctx := context.Background()
	port := freePort(t)
	helper := New(log)
	t.Cleanup(func() { helper.Stop(false) })
	if err := helper.Start(ctx, Global{ASN: 65110, RouterID: addr("10.10.10.10"), ListenPort: port, ListenAddr: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	p := Peer{Address: addr("127.0.0.1"), ASN: 65210, Passive: true, EVPN: true,
		GR: GR{Enabled: true, RestartTime: restartTime}}
	if err := helper.AddPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	heard, _ := watch(t, helper)
	return helper, port, heard
}

// restarter starts borderleaf04 (AS 65210) originating prefixes, peered
// with the helper.
func restarter(t *testing.T, log *slog.Logger, port int32, restartTime uint32, restarting bool, prefixes ...string) *Speaker {
	ctx := context.Background()
	sp := New(log)
	if err := sp.Start(ctx, Global{ASN: 65210, RouterID: addr("10.10.20.11"), ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	// Before the session: a restarting speaker's first table must hold
	// everything, or its peers sweep what is missing at its End-of-RIB.
	for _, p := range prefixes {
		if err := sp.Advertise(ctx, Type5{RD: "10.10.20.11:2", Prefix: netip.MustParsePrefix(p), VTEP: addr("10.10.20.11"),
			VNI: 5001, RouterMAC: rmac6, RTs: []RT{{ASN: 65210, Value: 5001}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.AddPeer(ctx, grPeer(port, restartTime, restarting)); err != nil {
		t.Fatal(err)
	}
	return sp
}

// heardUntil collects the helper's events until the End-of-RIB of EVPN
// from the restarter, or timeout; it returns the prefixes announced and
// withdrawn meanwhile.
func heardUntil(t *testing.T, heard <-chan Event, timeout time.Duration, untilEOR bool) (announced, withdrawn []string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-heard:
			switch {
			case e.EOR != nil:
				if untilEOR && e.EOR.EVPN {
					return announced, withdrawn
				}
			case e.Route != nil && e.Withdraw:
				withdrawn = append(withdrawn, e.Route.Prefix.String())
			case e.Route != nil:
				announced = append(announced, e.Route.Prefix.String())
			}
		case <-deadline:
			if untilEOR {
				t.Fatalf("no End-of-RIB within %v (announced %v, withdrawn %v)", timeout, announced, withdrawn)
			}
			return announced, withdrawn
		}
	}
}

// grPair is a helper (restart time 30 s) and a restarter that advertised
// two prefixes to it, both heard.
func grPair(t *testing.T) (*slog.Logger, *Speaker, int32, <-chan Event, *Speaker) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	helper, port, heard := grHelper(t, log, 30)
	before := restarter(t, log, port, 30, false, "192.168.20.0/24", "192.168.21.0/24")
	if got, _ := heardUntil(t, heard, 30*time.Second, true); len(got) != 2 {
		t.Fatalf("before the restart the helper heard %v, want both prefixes", got)
	}
	return log, helper, port, heard, before
}

// TestGracefulRestart: a speaker that stops gracefully keeps its routes at
// its peer (no NOTIFICATION; the keeper leaves the restarting peer alone);
// back within the restart time and claiming a restart, it re-advertises,
// and at its End-of-RIB the peer drops only what it did not re-advertise.
// A stop with a NOTIFICATION drops everything at once.
func TestGracefulRestart(t *testing.T) {
	t.Parallel()
	log, helper, port, heard, before := grPair(t)

	stopped := time.Now()
	if err := before.Stop(true); err != nil {
		t.Fatal(err)
	}
	if _, gone := heardUntil(t, heard, 2*time.Second, false); len(gone) > 0 {
		t.Fatalf("routes withdrawn at a graceful stop: %v", gone)
	}
	peers, err := helper.Peers(context.Background(), false)
	if err != nil || len(peers) != 1 {
		t.Fatalf("helper's peers: %v %v", peers, err)
	}
	if want := (GRState{Mode: "full", Negotiated: true, PeerRestarting: true, PeerRestartTime: 30}); peers[0].GR != want {
		t.Errorf("the helper shows graceful restart as %+v, want %+v", peers[0].GR, want)
	}
	after := restarter(t, log, port, 30, true, "192.168.20.0/24")
	t.Cleanup(func() { after.Stop(false) })
	_, gone := heardUntil(t, heard, 30*time.Second, true)
	// The sweep comes with the End-of-RIB; give its withdrawals a moment.
	_, late := heardUntil(t, heard, 500*time.Millisecond, false)
	gone = append(gone, late...)
	if len(gone) != 1 || gone[0] != "192.168.21.0/24" {
		t.Errorf("after the restart the helper withdrew %v, want only 192.168.21.0/24 (not re-advertised)", gone)
	}
	t.Logf("restart: session and End-of-RIB back %v after the graceful stop", time.Since(stopped).Round(100*time.Millisecond))

	if err := after.Stop(false); err != nil {
		t.Fatal(err)
	}
	if _, gone := heardUntil(t, heard, 2*time.Second, false); len(gone) != 1 || gone[0] != "192.168.20.0/24" {
		t.Errorf("after a stop with a NOTIFICATION the helper withdrew %v, want 192.168.20.0/24 at once", gone)
	}
}

// TestRetryKeepsRestartingPeersRoutes: the agent retries a port's sessions
// when its link comes back (Retry); one whose peer is restarting
// gracefully must keep the routes kept for it (adding the peer afresh
// dropped them, and traffic that the link already carried again with
// them), and still come back with its peer.
func TestRetryKeepsRestartingPeersRoutes(t *testing.T) {
	t.Parallel()
	log, helper, port, heard, before := grPair(t)
	if err := before.Stop(true); err != nil {
		t.Fatal(err)
	}
	// The helper's session leaves ESTABLISHED (graceful), then the link
	// "comes back".
	deadline := time.Now().Add(10 * time.Second)
	for {
		peers, err := helper.Peers(context.Background(), false)
		if err == nil && len(peers) == 1 && peers[0].GR.PeerRestarting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper never saw its peer restarting: %v %v", peers, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	helper.Retry(context.Background(), addr("127.0.0.1"))
	if _, gone := heardUntil(t, heard, 2*time.Second, false); len(gone) > 0 {
		t.Fatalf("a retry of a restarting peer's session withdrew %v", gone)
	}
	after := restarter(t, log, port, 30, true, "192.168.20.0/24", "192.168.21.0/24")
	t.Cleanup(func() { after.Stop(false) })
	if _, gone := heardUntil(t, heard, 30*time.Second, true); len(gone) > 0 {
		t.Errorf("the peer came back with every route and the helper withdrew %v", gone)
	}
}

// TestGracefulRestartTimeout: a peer that does not come back within its
// restart time has its routes withdrawn then, not before.
func TestGracefulRestartTimeout(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, port, heard := grHelper(t, log, 3)
	sp := restarter(t, log, port, 3, false, "192.168.20.0/24")
	heardUntil(t, heard, 30*time.Second, true)
	stopped := time.Now()
	if err := sp.Stop(true); err != nil {
		t.Fatal(err)
	}
	if _, gone := heardUntil(t, heard, 2*time.Second, false); len(gone) > 0 {
		t.Fatalf("withdrawn %v before the restart time", gone)
	}
	_, gone := heardUntil(t, heard, 5*time.Second, false)
	if len(gone) != 1 {
		t.Fatalf("after the restart time the helper withdrew %v, want 192.168.20.0/24", gone)
	}
	if waited := time.Since(stopped); waited < 3*time.Second {
		t.Errorf("withdrawn after %v, before the restart time (3 s)", waited)
	}
}

// TestGracefulStopWithdrawsNothing: a speaker between two peers (the
// guide's borderleaf01 between borderleaf04 and its spine) stops
// gracefully; the spine must hear no withdrawal of what came from the
// other side. GoBGP's StopBgp deletes peers one by one, and each deletion
// withdrew that peer's routes from the peers not yet deleted: the lab lost
// the DCI's routes at the spine now and then, and 10 s of traffic with them.
// Several trios, since GoBGP deletes its peers in map order.
func TestGracefulStopWithdrawsNothing(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			port := freePort(t)
			middle := New(log)
			if err := middle.Start(ctx, Global{ASN: 65110, RouterID: addr("10.10.10.10"), ListenPort: port, ListenAddr: []string{"127.0.0.1"}}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []Peer{
				{Address: addr("127.0.0.2"), ASN: 65210, Passive: true, EVPN: true, GR: GR{Enabled: true, RestartTime: 30}},
				{Address: addr("127.0.0.3"), ASN: 65199, Passive: true, EVPN: true, GR: GR{Enabled: true, RestartTime: 30}},
			} {
				if err := middle.AddPeer(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			dci := New(log)
			spine := New(log)
			t.Cleanup(func() { middle.Stop(false); dci.Stop(false); spine.Stop(false) })
			for _, end := range []struct {
				sp    *Speaker
				asn   uint32
				local string
			}{{dci, 65210, "127.0.0.2"}, {spine, 65199, "127.0.0.3"}} {
				if err := end.sp.Start(ctx, Global{ASN: end.asn, RouterID: addr(end.local), ListenPort: -1}); err != nil {
					t.Fatal(err)
				}
				if err := end.sp.AddPeer(ctx, Peer{Address: addr("127.0.0.1"), LocalAddr: addr(end.local), ASN: 65110, Port: uint32(port),
					EVPN: true, ConnectRetry: 1, GR: GR{Enabled: true, RestartTime: 30}}); err != nil {
					t.Fatal(err)
				}
			}
			heard, _ := watch(t, spine)
			for j := range 8 {
				if err := dci.Advertise(ctx, Type5{RD: "10.10.20.11:2", Prefix: netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", 20+j)),
					VTEP: addr("10.10.20.11"), VNI: 5001, RouterMAC: rmac6, RTs: []RT{{ASN: 65210, Value: 5001}}}); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for deadline := time.After(30 * time.Second); len(got) < 8; {
				select {
				case e := <-heard:
					if e.Route != nil && !e.Withdraw {
						got = append(got, e.Route.Prefix.String())
					}
				case <-deadline:
					t.Fatalf("the spine heard %v of the DCI's 8 routes", got)
				}
			}
			if err := middle.Stop(true); err != nil {
				t.Fatal(err)
			}
			if _, gone := heardUntil(t, heard, 2*time.Second, false); len(gone) > 0 {
				t.Errorf("the spine was told to withdraw %v at a graceful stop", gone)
			}
		})
	}
}
