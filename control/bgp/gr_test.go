package bgp

import (
	"context"
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

// TestGracefulRestart: a speaker that stops gracefully keeps its routes at
// its peer (no NOTIFICATION; the keeper leaves the restarting peer alone);
// back within the restart time and claiming a restart, it re-advertises,
// and at its End-of-RIB the peer drops only what it did not re-advertise.
// A stop with a NOTIFICATION drops everything at once.
func TestGracefulRestart(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	helper, port, heard := grHelper(t, log, 30)
	before := restarter(t, log, port, 30, false, "192.168.20.0/24", "192.168.21.0/24")
	if got, _ := heardUntil(t, heard, 30*time.Second, true); len(got) != 2 {
		t.Fatalf("before the restart the helper heard %v, want both prefixes", got)
	}

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
