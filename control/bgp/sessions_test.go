package bgp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
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

// TestSessionStuckInOpenConfirm: a neighbour that sends its OPEN and then
// nothing leaves GoBGP's first session in OPENCONFIRM for good (it arms
// no hold timer there: fsm.go computes the negotiated hold time only on
// the way to ESTABLISHED), as an OPEN collision did to the lab's DCI
// session. The keeper restarts such a session after its hold time, and
// the neighbour sees a new connection.
func TestSessionStuckInOpenConfirm(t *testing.T) {
	ctx := context.Background()
	port := freePort(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.7:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			// An OPEN (AS 65210, hold 9 s, EVPN), then silence; what the
			// speaker sends is read and dropped.
			open, _ := bgp.NewBGPOpenMessage(65210, 9, addr("10.10.20.11"), []bgp.OptionParameterInterface{
				bgp.NewOptionParameterCapability([]bgp.ParameterCapabilityInterface{
					bgp.NewCapMultiProtocol(bgp.RF_EVPN), bgp.NewCapFourOctetASNumber(65210)})})
			b, _ := open.Serialize()
			c.Write(b)
			go io.Copy(io.Discard, c)
		}
	}()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sp := New(log)
	if err := sp.Start(ctx, Global{ASN: 65110, RouterID: addr("10.10.10.10"), ListenPort: freePort(t), ListenAddr: []string{"127.0.0.6"}}); err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(false)
	const hold = 3
	if err := sp.AddPeer(ctx, Peer{Address: addr("127.0.0.7"), ASN: 65210, Port: uint32(port), LocalAddr: addr("127.0.0.6"),
		EVPN: true, HoldTime: hold, ConnectRetry: 5}); err != nil {
		t.Fatal(err)
	}
	var first net.Conn
	select {
	case first = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("the speaker never connected")
	}
	defer first.Close()
	waitState(t, sp, "openconfirm", 5*time.Second)
	start := time.Now()
	// GoBGP's own timers would keep it there for ever; the keeper acts
	// after the hold time, and the new peer dials within 1.5-2 s.
	waitState(t, sp, "!openconfirm", hold*time.Second+2*time.Second)
	t.Logf("left OPENCONFIRM %v after entering it", time.Since(start).Round(10*time.Millisecond))
	select {
	case c := <-conns:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no new connection after the stuck session was restarted")
	}
}
