package bgp

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

// end is one side of a session between two speakers that both dial, as
// two xleafd do: its own listening address and port, and the other's.
type end struct {
	asn        uint32
	id, listen string
	port       int32
}

func startEnd(t *testing.T, e, other end) *Speaker {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sp := New(log)
	if err := sp.Start(ctx, Global{ASN: e.asn, RouterID: addr(e.id), ListenPort: e.port, ListenAddr: []string{e.listen}}); err != nil {
		t.Fatal(err)
	}
	// The guide's timers and xleafd's connect retry.
	p := Peer{Address: addr(other.listen), ASN: other.asn, Port: uint32(other.port), LocalAddr: addr(e.listen),
		EVPN: true, HoldTime: 9, ConnectRetry: 5}
	if err := sp.AddPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	return sp
}

// waitState waits until sp's only session is in state (with a leading
// "!": in any other), and says how long that took.
func waitState(t *testing.T, sp *Speaker, state string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ps, err := sp.Peers(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 && (ps[0].State == state || state[0] == '!' && ps[0].State != state[1:]) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("session not %s after %v: %+v", state, timeout, ps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSessionSurvivesRestartedPeer: one end of a session between two
// dialling speakers restarts at once, again and again. Without the keeper
// the end that stayed sits in GoBGP's 5 s idle hold after each loss and
// refuses the restarted end's connections, which then idles in turn: the
// two fall into step and the session stays down for tens of seconds or
// minutes. With it, every restart has its session back within a few
// seconds (GoBGP dials 1.5-2 s after a peer is added).
func TestSessionSurvivesRestartedPeer(t *testing.T) {
	port := freePort(t)
	a := end{asn: 65110, id: "10.10.10.10", listen: "127.0.0.4", port: port}
	b := end{asn: 65210, id: "10.10.20.11", listen: "127.0.0.5", port: port}
	stayed := startEnd(t, a, b)
	t.Cleanup(func() { stayed.Stop(false) })
	restarted := startEnd(t, b, a)
	waitState(t, stayed, "established", 15*time.Second)
	for i := range 5 {
		restarted.Stop(false)
		waitState(t, stayed, "!established", 5*time.Second) // the loss is seen
		// The restarted end comes back while the other is still near its
		// loss: the moment the idle hold would refuse it.
		restarted = startEnd(t, b, a)
		took := waitState(t, stayed, "established", 12*time.Second)
		t.Logf("restart %d: session back in %v", i+1, took.Round(10*time.Millisecond))
	}
	restarted.Stop(false)
}
