package control

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xleaf/xleaf/test/netns"
)

// TestUnderlayHeals: what xleafd put in the kernel and the data path comes
// back after what a network does to it, with the periodic pass turned off
// so that only the kernel's events can bring it back. The fabric route is
// deleted by someone else; the fabric link flaps for 3 s (the session
// survives its 9 s hold time, the kernel flushes the route); the port is
// deleted and created anew (a new index: XDP must follow it).
func TestUnderlayHeals(t *testing.T) {
	defer func(d time.Duration) { reconcileInterval = d }(reconcileInterval)
	reconcileInterval = time.Hour
	u := newUnnumbered(t)
	eventually(t, "the fabric's loopback in the kernel", u.kernelRoute)

	netns.IP(t, "route", "del", spineLoop.String()+"/32")
	eventually(t, "the fabric route back after someone deleted it", u.kernelRoute)

	netns.IP(t, "link", "set", "swp1", "down")
	eventually(t, "the kernel flushing the route of a port that went down", func() bool { return !u.kernelRoute() })
	time.Sleep(3 * time.Second) // the flap: shorter than the hold time
	netns.IP(t, "link", "set", "swp1", "up")
	eventually(t, "the fabric route back after a 3 s flap", u.kernelRoute)
	u.established(t, "after the flap", time.Time{})

	deleted := time.Now()
	netns.IP(t, "link", "del", "swp1")
	if u.kernelRoute() || u.xdpOnPort() {
		t.Fatal("the route or XDP survived the port's deletion")
	}
	u.fabricLink(t)
	eventually(t, "XDP on swp1 created anew", u.xdpOnPort)
	eventually(t, "fast DAD on swp1 created anew", func() bool {
		b, err := os.ReadFile("/proc/sys/net/ipv6/neigh/swp1/retrans_time_ms")
		return err == nil && strings.TrimSpace(string(b)) == "100"
	})
	eventually(t, "the fabric route back through swp1 created anew", u.kernelRoute)
	// The session over the old port dies with its hold timer; the new
	// one dials over the new port (same name, new index).
	u.established(t, "anew over swp1 created anew", deleted)
}

// established waits for the agent's session to the fabric to be up, and
// to have come up after since.
func (u *unnumbered) established(t *testing.T, when string, since time.Time) {
	t.Helper()
	eventually(t, "the fabric session established "+when, func() bool {
		ps, err := u.agent.speaker.Peers(context.Background(), false)
		return err == nil && len(ps) == 1 && ps[0].State == "established" && ps[0].Changed.After(since)
	})
}
