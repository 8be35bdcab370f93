package test

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/control"
	"github.com/xleaf/xleaf/test/netns"
)

var leaf01Port2 = mac("02:00:00:01:00:06") // leaf01's second underlay port

// TestLiveUnderlayLinkFlap: leaf01 is reachable over two underlay links
// (a multipath route), and the agent's hops part keeps the data path's
// next hops in step with the kernel. Sixteen UDP flows from the RED host
// to leaf01's kernel VXLAN VTEP spread over both links; one link goes down
// under traffic and comes back. Every datagram is counted at leaf01: the
// flows on the failed link lose what is sent before the next hops are
// resolved again, the others nothing, and after the link is back both
// links carry flows again.
func TestLiveUnderlayLinkFlap(t *testing.T) {
	l := newLiveLeaf(t)
	ip := func(args ...string) { netns.IP(t, args...) }
	n := func(args ...string) { ip(append([]string{"-n", l.leaf01NS}, args...)...) }
	netns.Veth(t, netns.Dev{Name: "swp2"}, netns.Dev{NS: l.leaf01NS, Name: "eth1", MAC: leaf01Port2})
	ip("addr", "add", "169.254.2.1/30", "dev", "swp2")
	ip("link", "set", "swp2", "up")
	ip("neigh", "replace", "169.254.2.2", "lladdr", leaf01Port2.String(), "dev", "swp2", "nud", "permanent")
	n("addr", "add", "169.254.2.2/30", "dev", "eth1")
	n("link", "set", "eth1", "up")
	netns.AttachPass(t, l.leaf01NS, "eth1")
	ip("route", "replace", leaf01.String()+"/32",
		"nexthop", "via", "169.254.1.2", "dev", "swp1", "nexthop", "via", "169.254.2.2", "dev", "swp2")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stop, err := control.FollowUnderlay(ctx, log, l.dp)
	must(t, err)
	defer stop()
	paths := func() int {
		hops, err := l.dp.UnderlayHops()
		must(t, err)
		return len(hops[leaf01].Members)
	}
	if got := paths(); got != 2 {
		t.Fatalf("leaf01 resolved over %d paths, want 2", got)
	}

	// The receiver: a UDP socket on leaf01's RED address, behind its VXLAN
	// device. The sender: sixteen sockets on the RED host, no UDP checksum
	// (a veth would leave it to an offload XDP does not do).
	var rx *net.UDPConn
	netns.Do(t, l.leaf01NS, func() {
		var err error
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("192.168.1.10"), Port: 9000})
		must(t, err)
	})
	defer rx.Close()
	const flows = 16
	var tx [flows]*net.UDPConn
	netns.Do(t, l.redNS, func() {
		for i := range tx {
			c, err := net.DialUDP("udp4", &net.UDPAddr{Port: 41000 + i}, &net.UDPAddr{IP: net.ParseIP("192.168.1.10"), Port: 9000})
			must(t, err)
			raw, err := c.SyscallConn()
			must(t, err)
			raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
			must(t, err)
			tx[i] = c
		}
	})
	defer func() {
		for _, c := range tx {
			c.Close()
		}
	}()

	var mu sync.Mutex
	got := map[uint64]bool{} // flow<<32 | sequence
	go func() {
		buf := make([]byte, 64)
		for {
			k, err := rx.Read(buf)
			if err != nil {
				return
			}
			if k >= 8 {
				mu.Lock()
				got[binary.BigEndian.Uint64(buf)] = true
				mu.Unlock()
			}
		}
	}()
	// What arrives at leaf01's end of each link (XDP-redirected frames
	// count there, not as sent on ours).
	arrived := func(dev string) int {
		var v int
		netns.Do(t, l.leaf01NS, func() {
			link, err := netlink.LinkByName(dev)
			must(t, err)
			v = int(link.Attrs().Statistics.RxPackets)
		})
		return v
	}

	// 4000 datagrams a second: 4 every millisecond, round robin over the
	// flows, in three phases of at least a second each, timed from their
	// own starts (on a busy machine a phase's start can come late): both
	// links up, swp2's link down, swp2 back up.
	type phase struct {
		name       string
		swp1, swp2 int // frames that arrived over each by the phase's start
	}
	var phases []phase
	mark := func(name string) {
		phases = append(phases, phase{name: name, swp1: arrived("eth0"), swp2: arrived("eth1")})
	}
	sent := [flows]uint32{}
	sendErr := make(chan error, 1)
	stopSending := make(chan struct{})
	go func() { // traffic until the last phase ends
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-stopSending:
				sendErr <- nil
				return
			case <-tick.C:
			}
			for range 4 {
				f := i % flows
				var b [64]byte
				binary.BigEndian.PutUint64(b[:], uint64(f)<<32|uint64(sent[f]))
				if _, err := tx[f].Write(b[:]); err != nil && !isTransient(err) {
					sendErr <- err
					return
				}
				sent[f]++
				i++
			}
		}
	}()
	mark("both links up")
	time.Sleep(time.Second)
	mark("swp2 down")
	down := time.Now()
	n("link", "set", "eth1", "down") // swp2 loses its carrier
	for paths() != 1 {
		if time.Since(down) > 5*time.Second {
			t.Fatal("swp2 still in use 5 s after its link went down")
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Logf("swp2 out of the data path %v after its link went down", time.Since(down).Round(10*time.Microsecond))
	time.Sleep(time.Until(down.Add(time.Second)))
	mark("swp2 back up")
	up := time.Now()
	n("link", "set", "eth1", "up")
	time.Sleep(time.Until(up.Add(time.Second)))
	close(stopSending)
	must(t, <-sendErr)
	mark("end")
	time.Sleep(500 * time.Millisecond) // the last datagrams in flight

	total, lost := 0, 0
	mu.Lock()
	for f := range flows {
		for s := range sent[f] {
			total++
			if !got[uint64(f)<<32|uint64(s)] {
				lost++
			}
		}
	}
	mu.Unlock()
	t.Logf("%d datagrams sent, %d lost", total, lost)
	for i := 0; i+1 < len(phases); i++ {
		p, q := phases[i], phases[i+1]
		t.Logf("%s: %d out of swp1, %d out of swp2", p.name, q.swp1-p.swp1, q.swp2-p.swp2)
	}
	// Each phase against what it carried (the phases differ in length).
	out := func(i int) (int, int) { return phases[i+1].swp1 - phases[i].swp1, phases[i+1].swp2 - phases[i].swp2 }
	if a, b := out(0); min(a, b) < (a+b)/4 {
		t.Errorf("both links up: %d and %d datagrams out of swp1 and swp2, want both at least a quarter", a, b)
	}
	if a, b := out(1); a == 0 || b > (a+b)/10 {
		t.Errorf("swp2 down: %d datagrams out of swp1 and %d out of swp2, want nearly all out of swp1", a, b)
	}
	if a, b := out(2); min(a, b) < (a+b)/4 {
		t.Errorf("swp2 back: %d and %d datagrams out of swp1 and swp2, want both at least a quarter", a, b)
	}
	// What swp2's flows send until the next hops follow the kernel (a
	// few milliseconds): 1% of the run is 30 ms of it.
	if lost > total/100 {
		t.Errorf("%d of %d datagrams lost, want at most 1%%", lost, total)
	}
}

// isTransient is a send error a burst can meet (the host's queue full, an
// ICMP error from an earlier datagram): the datagram counts as lost.
func isTransient(err error) bool {
	for _, e := range []syscall.Errno{unix.ENOBUFS, unix.ECONNREFUSED, unix.EAGAIN} {
		if strings.Contains(err.Error(), e.Error()) {
			return true
		}
	}
	return false
}
