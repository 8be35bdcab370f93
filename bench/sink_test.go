package bench_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/test/netns"
)

// BenchmarkBGPSender: the fabric of BenchmarkBGPScale alone, sending its N
// Type-5 routes to a sink that only reads them: a BGP speaker of a few
// dozen lines that opens the session (EVPN, four-octet AS, the guide's 9 s
// hold time), keeps it alive and counts the EVPN NLRIs of each UPDATE,
// parsing nothing else. The time from the session up to the last NLRI is
// how fast the sender is, so that BenchmarkBGPScale's figure is known to
// measure xleafd's receive path, not its peer's.
func BenchmarkBGPSender(b *testing.B) {
	for _, n := range []int{100_000, 300_000, 1_000_000} {
		b.Run("routes="+count(n), func(b *testing.B) { sender(b, n) })
	}
}

func sender(b *testing.B, n int) {
	netns.Root(b)
	netns.IP(b, "link", "set", "lo", "up")
	ctx := context.Background()
	fabric := originate(b, n)
	b.ResetTimer()
	if err := fabric.AddPeer(ctx, bgp.Peer{Address: netip.MustParseAddr("127.0.0.1"), ASN: 65110, Passive: true, EVPN: true}); err != nil {
		b.Fatal(err)
	}
	s, err := dialSink(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), 65110, 9)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	up := time.Now()
	got, updates, err := s.count(n, 5*time.Minute)
	if err != nil {
		b.Fatalf("after %d of %d routes: %v", got, n, err)
	}
	took := time.Since(up)
	b.StopTimer()
	b.Logf("sender alone: %d routes in %.2f s (%.0f routes/s), %d UPDATEs (%.1f routes each)", n, took.Seconds(),
		float64(n)/took.Seconds(), updates, float64(got)/float64(updates))
	b.ReportMetric(took.Seconds(), "s-sent")
	b.ReportMetric(float64(n)/took.Seconds(), "routes/s")
	b.ReportMetric(float64(got)/float64(updates), "routes/update")
}

// originate starts the benchmarks' fabric, listening on 127.0.0.2, and
// has it originate n Type-5 routes with RED's target.
func originate(b *testing.B, n int) *bgp.Speaker {
	ctx := context.Background()
	fabric := bgp.New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	b.Cleanup(func() { fabric.Stop(false) })
	if err := fabric.Start(ctx, bgp.Global{ASN: 65199, RouterID: netip.MustParseAddr("10.10.10.199"), ListenPort: 179, ListenAddr: []string{"127.0.0.2"}}); err != nil {
		b.Fatal(err)
	}
	mac, _ := net.ParseMAC("44:38:39:22:dd:01")
	start := time.Now()
	for i := range n {
		if err := fabric.Advertise(ctx, bgp.Type5{RD: "10.10.10.1:2", Prefix: netip.PrefixFrom(scaleAddr(i), 32), VTEP: netip.MustParseAddr("10.10.10.1"),
			VNI: 4001, RouterMAC: mac, RTs: []bgp.RT{{ASN: 65101, Value: 4001}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("fabric holds %d routes after %.1f s", n, time.Since(start).Seconds())
	return fabric
}

// sink is the far end of a BGP session that reads and counts.
type sink struct {
	conn net.Conn
	r    *bufio.Reader
	mu   sync.Mutex // writes: keepalives from their own goroutine
	stop chan struct{}
}

func dialSink(local, peer netip.Addr, asn uint32, hold uint16) (*sink, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: local.AsSlice()}, Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if conn, err = d.Dial("tcp", netip.AddrPortFrom(peer, 179).String()); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s := &sink{conn: conn, r: bufio.NewReaderSize(conn, 1<<20), stop: make(chan struct{})}
	caps := []gobgp.ParameterCapabilityInterface{
		gobgp.NewCapMultiProtocol(gobgp.RF_EVPN),
		gobgp.NewCapFourOctetASNumber(asn),
	}
	open, err := gobgp.NewBGPOpenMessage(uint16(min(asn, 23456)), hold, netip.MustParseAddr("10.10.10.10"),
		[]gobgp.OptionParameterInterface{gobgp.NewOptionParameterCapability(caps)})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := s.send(open); err != nil {
		conn.Close()
		return nil, err
	}
	if err := s.send(gobgp.NewBGPKeepAliveMessage()); err != nil {
		conn.Close()
		return nil, err
	}
	go func() { // keepalives at a third of the hold time
		t := time.NewTicker(time.Duration(hold) * time.Second / 3)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.send(gobgp.NewBGPKeepAliveMessage())
			}
		}
	}()
	return s, nil
}

func (s *sink) send(m *gobgp.BGPMessage) error {
	data, err := m.Serialize()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.conn.Write(data)
	return err
}

// count reads until n EVPN NLRIs have arrived in UPDATEs, or the peer
// closes, or limit passes. It returns the NLRIs and UPDATEs read.
func (s *sink) count(n int, limit time.Duration) (int, int, error) {
	s.conn.SetReadDeadline(time.Now().Add(limit))
	got, updates := 0, 0
	hdr := make([]byte, 19)
	var body []byte
	for got < n {
		if _, err := io.ReadFull(s.r, hdr); err != nil {
			return got, updates, err
		}
		size := int(binary.BigEndian.Uint16(hdr[16:18]))
		if size < 19 {
			return got, updates, fmt.Errorf("message of %d bytes", size)
		}
		body = append(body[:0], make([]byte, size-19)...)
		if _, err := io.ReadFull(s.r, body); err != nil {
			return got, updates, err
		}
		switch hdr[18] {
		case gobgp.BGP_MSG_NOTIFICATION:
			return got, updates, fmt.Errorf("NOTIFICATION % x", body)
		case gobgp.BGP_MSG_UPDATE:
			updates++
			got += evpnNLRIs(body, gobgp.BGP_ATTR_TYPE_MP_REACH_NLRI)
		}
	}
	return got, updates, nil
}

// evpnNLRIs counts the EVPN routes an UPDATE's MP_REACH_NLRI or
// MP_UNREACH_NLRI (attr) carries (route type, length, route: RFC 7432 7.),
// walking only the lengths.
func evpnNLRIs(body []byte, attr gobgp.BGPAttrType) int {
	if len(body) < 4 {
		return 0
	}
	wl := int(binary.BigEndian.Uint16(body))
	if len(body) < 4+wl {
		return 0
	}
	attrs := body[2+wl:]
	al := int(binary.BigEndian.Uint16(attrs))
	attrs = attrs[2:min(len(attrs), 2+al)]
	for len(attrs) >= 3 {
		flags, typ := attrs[0], attrs[1]
		var l, h int
		if flags&0x10 != 0 { // extended length
			if len(attrs) < 4 {
				return 0
			}
			l, h = int(binary.BigEndian.Uint16(attrs[2:])), 4
		} else {
			l, h = int(attrs[2]), 3
		}
		if len(attrs) < h+l {
			return 0
		}
		if gobgp.BGPAttrType(typ) == attr {
			v := attrs[h : h+l]
			if len(v) < 5 {
				return 0
			}
			nlri := v[3:] // MP_UNREACH_NLRI: AFI, SAFI
			if attr == gobgp.BGP_ATTR_TYPE_MP_REACH_NLRI {
				nh := int(v[3])
				nlri = v[min(len(v), 4+nh+1):] // AFI, SAFI, next hop length, next hop, reserved
			}
			routes := 0
			for len(nlri) >= 2 {
				rl := int(nlri[1])
				if len(nlri) < 2+rl {
					break
				}
				routes++
				nlri = nlri[2+rl:]
			}
			return routes
		}
		attrs = attrs[h+l:]
	}
	return 0
}

func (s *sink) Close() error {
	close(s.stop)
	return s.conn.Close()
}
