package bgp

import (
	"cmp"
	"context"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Why a keeper: a GoBGP peer whose session fails waits in IDLE for 5 s
// (holdtimeIdle in its fsm.go) and closes every connection its neighbour
// opens meanwhile; in ACTIVE it dials after a random 1.5-2 s (75-100% of
// minConnectRetryInterval, 2 s; v3 took 1-2 s). Two GoBGP ends that
// fall out of phase (one restarted, or configured a little later, as
// unnumbered discovery does) keep dialling into each other's idle window:
// sessions took minutes, or never came up. The keeper takes a failed
// session out of IDLE at once by configuring the peer afresh (a new peer
// starts in ACTIVE, which accepts connections), so the neighbour's next
// attempt succeeds whatever its phase. A peer that keeps failing is damped:
// after the first few failures it is re-added passive (it still accepts
// any connection) and dials again only after a backoff.

const (
	// freeRetries is how many consecutive failures are retried at once.
	freeRetries = 3
	// maxBackoff bounds the wait before a damped peer dials again.
	maxBackoff = 30 * time.Second
	// stableAfter is how long a session must stay established for its
	// failure count to start over.
	stableAfter = 10 * time.Second
)

// session is what the keeper knows of one configured peer.
type session struct {
	peer        Peer      // as configured
	state       string    // last seen: idle, active, opensent, openconfirm, established
	since       time.Time // of the last state change
	failures    int       // consecutive failed attempts
	established time.Time // when it last came up
	gen         int       // bumped at every re-add: timers of an older one do nothing
	// stale: the peer went down restarting gracefully and GoBGP keeps its
	// routes (stale, forwarding) until it is back: configuring the peer
	// afresh would drop them.
	stale bool
}

// sessionKey names a peer by its address without zone, however it was
// given: GoBGP's peer events keep an unnumbered peer's zone.
func sessionKey(a netip.Addr) string { return a.WithZone("").String() }

// keep starts watching peer state changes; it ends with ctx.
func (sp *Speaker) keep(ctx context.Context) error {
	return sp.s.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
		if ev.Type != apiutil.PEER_EVENT_STATE {
			return
		}
		st := ev.Peer.State
		sp.stateChanged(ctx, sessionKey(st.NeighborAddress), fsmState(st.SessionState),
			st.DisconnectReason == api.PeerState_DISCONNECT_REASON_GRACEFUL_RESTART)
	}}, server.WatchPeer())
}

// fsmState is a state as PeerState shows it: BGP_FSM_OPENSENT is
// "opensent".
func fsmState(s bgp.FSMState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BGP_FSM_"))
}

// stateChanged records a peer's new state and, when a session has just
// failed, takes the peer out of IDLE.
func (sp *Speaker) stateChanged(ctx context.Context, addr, state string, peerRestarting bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	s := sp.sessions[addr]
	if s == nil || s.state == state {
		return
	}
	prev := s.state
	s.state, s.since = state, time.Now()
	switch state {
	case "established":
		s.established, s.stale = s.since, false
		return
	case "opensent", "openconfirm":
		sp.limitSetup(ctx, addr, s)
		return
	case "idle":
		// From IDLE itself nothing failed: a fresh peer starts there, and
		// a peer we replaced reports its end there.
		if prev == "idle" || prev == "" {
			return
		}
	default:
		return
	}
	if peerRestarting {
		// Graceful restart: GoBGP keeps the peer's routes, stale, until it
		// is back or its restart time ends. Configuring the peer afresh
		// would drop them at once; its IDLE (5 s) only delays the new
		// session, while the routes keep forwarding.
		sp.log.Info("bgp peer restarting gracefully: its routes are kept until it is back", "peer", s.peer.Address, "was", prev)
		s.established, s.stale = time.Time{}, true
		return
	}
	sp.failed(ctx, s, prev, "bgp session failed: restarting it")
}

// failed restarts a failed session, damped. Called with sp.mu held.
func (sp *Speaker) failed(ctx context.Context, s *session, was, msg string) {
	if !s.established.IsZero() && time.Since(s.established) >= stableAfter {
		s.failures = 0
	}
	s.established = time.Time{}
	s.failures++
	backoff := time.Duration(0)
	if s.failures > freeRetries {
		backoff = min(time.Second<<(s.failures-freeRetries-1), maxBackoff)
	}
	sp.log.Info(msg, "peer", s.peer.Address, "was", was, "failures", s.failures, "dial-after", backoff)
	sp.readd(ctx, s, backoff)
}

// limitSetup fails a session that stays in OPENSENT or OPENCONFIRM past
// its hold time. GoBGP (v4.8.0, fsm.go) computes the negotiated hold time
// only on the way to ESTABLISHED, so a first session's OPENCONFIRM runs
// with none: no hold timer and no keepalives. When an OPEN collision
// leaves each end waiting on a connection the other no longer reads (each
// kept its own outgoing one), both sit in OPENCONFIRM for good: seen in
// the lab, the DCI session of two border leafs started together stayed
// there for 3 minutes until the test ended. RFC 4271 bounds OPENCONFIRM by
// the hold time; this does, for both states. Called with sp.mu held.
func (sp *Speaker) limitSetup(ctx context.Context, addr string, s *session) {
	gen, since, state := s.gen, s.since, s.state
	time.AfterFunc(setupLimit(s.peer), func() {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if sp.sessions[addr] != s || s.gen != gen || !s.since.Equal(since) || s.state != state || ctx.Err() != nil {
			return // it moved on, or was re-added or deleted
		}
		sp.failed(ctx, s, state, "bgp session stuck in "+state+" past its hold time: restarting it")
	})
}

// setupLimit is how long a session may take from OPENSENT or OPENCONFIRM
// to its next state: its hold time (GoBGP's default, 90 s, when none).
func setupLimit(p Peer) time.Duration {
	return time.Duration(cmp.Or(p.HoldTime, defaultHoldTime)) * time.Second
}

const defaultHoldTime = 90

// readd configures a session's peer afresh: passive until backoff has
// passed (then again, dialling), or dialling at once (GoBGP's first dial
// comes after a random 1.5-2 s). Called with sp.mu
// held; GoBGP's calls run outside it.
func (sp *Speaker) readd(ctx context.Context, s *session, backoff time.Duration) {
	s.gen++
	s.stale = false // the peer's routes go with it
	gen := s.gen
	s.state, s.since = "idle", time.Now()
	p := s.peer
	if backoff > 0 {
		p.Passive = true
	}
	go func() {
		current, err := sp.replace(ctx, s, gen, p)
		if !current || ctx.Err() != nil {
			return // deleted or replaced meanwhile, or the speaker stopped
		}
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if err != nil {
			// Retried, so a peer is never left unconfigured.
			sp.log.Warn("bgp session restart failed; retrying", "peer", p.Address, "err", err)
			backoff = max(backoff, time.Second)
		} else if !p.Passive || s.peer.Passive {
			return
		}
		time.AfterFunc(backoff, func() {
			sp.mu.Lock()
			defer sp.mu.Unlock()
			if sp.sessions[sessionKey(p.Address)] != s || s.gen != gen {
				return
			}
			switch s.state {
			case "opensent", "openconfirm", "established":
				return // the neighbour connected while we waited
			}
			sp.readd(ctx, s, 0)
		})
	}()
}

// replace deletes a session's peer from GoBGP and adds it again as p,
// unless the session was deleted or re-added since generation gen.
func (sp *Speaker) replace(ctx context.Context, s *session, gen int, p Peer) (current bool, err error) {
	sp.peerOps.Lock()
	defer sp.peerOps.Unlock()
	sp.mu.Lock()
	current = sp.sessions[sessionKey(p.Address)] == s && s.gen == gen
	sp.mu.Unlock()
	if !current {
		return false, nil
	}
	// Not there (a failed earlier re-add) is fine.
	sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()})
	if p.Interface != "" {
		refreshZones() // its port may have been created anew
	}
	return true, sp.s.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p)})
}

// Retry takes a session that is not up out of IDLE or out of a long
// connect-retry wait by adding its peer afresh, so it dials within GoBGP's
// first 1.5-2 s: for when its link has just come up or its neighbour has
// just appeared. A session being set up or up is left alone, and so is one
// whose peer is restarting gracefully: adding it afresh would drop the
// routes kept for it, which forward again as soon as the link is back (a
// DCI link down for longer than the hold time lost 0.7 s more traffic
// after it came back, until the new session re-learned them); GoBGP dials
// it on its own within its connect-retry time.
func (sp *Speaker) Retry(ctx context.Context, addr netip.Addr) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	s := sp.sessions[sessionKey(addr)]
	if s == nil {
		return
	}
	switch s.state {
	case "opensent", "openconfirm", "established":
		return
	}
	if s.stale {
		sp.log.Info("bgp session not restarted at once: its peer is restarting gracefully and its routes are kept", "peer", s.peer.Address)
		return
	}
	s.failures = 0
	sp.readd(ctx, s, 0)
}
