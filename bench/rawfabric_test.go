package bench_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// rawFabric is a fabric that is not the bottleneck: the N routes are
// encoded before the session comes up, packed as GoBGP v4 and FRR pack
// them (every route of an UPDATE shares its attributes: up to 110 Type-5
// NLRIs in a 4096-byte message), and written to the socket as fast as the
// leaf reads them. It speaks just enough BGP for that: the OPEN exchange
// (EVPN, four-octet AS), keepalives every 3 s (the guide's timers), every
// message from the leaf read and dropped, and the End-of-RIB. It also
// records the longest silence of the leaf's session, which a peer with the
// guide's 9 s hold time would have to outlast.
type rawFabric struct {
	asn       uint32 // its AS and router ID
	id        netip.Addr
	ln        net.Listener
	announce  []byte // every UPDATE, back to back, then the End-of-RIB
	withdraw  []byte
	conn      net.Conn
	mu        sync.Mutex // writes
	stop      chan struct{}
	done      sync.WaitGroup
	lastHeard time.Time
	maxSilent time.Duration
	closed    error // why the leaf's side ended, if it did
	readMu    sync.Mutex

	// The EVPN routes the leaf sent, announced and withdrawn (a DCI peer
	// of the leaf counts what the leaf relays).
	heard, unheard atomic.Int64
}

// rawPerUpdate is how many Type-5 NLRIs (36 bytes each) go in one UPDATE.
const rawPerUpdate = 110

func newRawFabric(listen netip.AddrPort, n int) (*rawFabric, error) {
	return newRawSpeaker(listen, 65199, netip.MustParseAddr("10.10.10.199"), n)
}

// newRawSpeaker is a raw fabric of AS asn; with n = 0 it sends only the
// End-of-RIB, a peer that listens and counts.
func newRawSpeaker(listen netip.AddrPort, asn uint32, id netip.Addr, n int) (*rawFabric, error) {
	f := &rawFabric{asn: asn, id: id, stop: make(chan struct{})}
	rd, err := gobgp.ParseRouteDistinguisher("10.10.10.1:2")
	if err != nil {
		return nil, err
	}
	mac, _ := net.ParseMAC("44:38:39:22:dd:01")
	comms := []gobgp.ExtendedCommunityInterface{
		gobgp.NewTwoOctetAsSpecificExtended(gobgp.EC_SUBTYPE_ROUTE_TARGET, 65101, 4001, true),
		gobgp.NewEncapExtended(gobgp.TUNNEL_TYPE_VXLAN), gobgp.NewRoutersMacExtended(mac.String()),
	}
	asPath := gobgp.NewPathAttributeAsPath([]gobgp.AsPathParamInterface{gobgp.NewAs4PathParam(gobgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{asn})})
	for first := 0; first < n; first += rawPerUpdate {
		var nlris []gobgp.PathNLRI
		for i := first; i < min(n, first+rawPerUpdate); i++ {
			nlri, err := gobgp.NewEVPNIPPrefixRoute(rd, gobgp.EthernetSegmentIdentifier{}, 0, 32, scaleAddr(i), netip.IPv4Unspecified(), 4001)
			if err != nil {
				return nil, err
			}
			nlris = append(nlris, gobgp.PathNLRI{NLRI: nlri})
		}
		reach, err := gobgp.NewPathAttributeMpReachNLRI(gobgp.RF_EVPN, nlris, netip.MustParseAddr("10.10.10.1"))
		if err != nil {
			return nil, err
		}
		up := gobgp.NewBGPUpdateMessage(nil, []gobgp.PathAttributeInterface{
			gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP), asPath, reach, gobgp.NewPathAttributeExtendedCommunities(comms),
		}, nil)
		if f.announce, err = appendMessage(f.announce, up); err != nil {
			return nil, err
		}
		unreach, err := gobgp.NewPathAttributeMpUnreachNLRI(gobgp.RF_EVPN, nlris)
		if err != nil {
			return nil, err
		}
		if f.withdraw, err = appendMessage(f.withdraw, gobgp.NewBGPUpdateMessage(nil, []gobgp.PathAttributeInterface{unreach}, nil)); err != nil {
			return nil, err
		}
	}
	if f.announce, err = appendMessage(f.announce, gobgp.NewEndOfRib(gobgp.RF_EVPN)); err != nil {
		return nil, err
	}
	if f.ln, err = net.Listen("tcp", listen.String()); err != nil {
		return nil, err
	}
	return f, nil
}

func appendMessage(b []byte, m *gobgp.BGPMessage) ([]byte, error) {
	data, err := m.Serialize(&gobgp.MarshallingOption{})
	if err != nil {
		return nil, err
	}
	if len(data) > 4096 {
		return nil, fmt.Errorf("UPDATE of %d bytes: over BGP's 4096", len(data))
	}
	return append(b, data...), nil
}

// accept waits for the leaf to connect and opens the session; it returns
// when the leaf's KEEPALIVE says it is established.
func (f *rawFabric) accept(timeout time.Duration) error {
	if tl, ok := f.ln.(*net.TCPListener); ok {
		tl.SetDeadline(time.Now().Add(timeout))
	}
	conn, err := f.ln.Accept()
	if err != nil {
		return err
	}
	f.conn = conn
	r := bufio.NewReaderSize(conn, 1<<16)
	conn.SetReadDeadline(time.Now().Add(timeout))
	if typ, _, err := readMessage(r); err != nil || typ != gobgp.BGP_MSG_OPEN {
		return fmt.Errorf("the leaf's OPEN: type %d, %v", typ, err)
	}
	caps := []gobgp.ParameterCapabilityInterface{gobgp.NewCapMultiProtocol(gobgp.RF_EVPN), gobgp.NewCapFourOctetASNumber(f.asn)}
	myAS := uint16(f.asn)
	if f.asn > 0xffff {
		myAS = gobgp.AS_TRANS
	}
	open, err := gobgp.NewBGPOpenMessage(myAS, 9, f.id,
		[]gobgp.OptionParameterInterface{gobgp.NewOptionParameterCapability(caps)})
	if err != nil {
		return err
	}
	if err := f.send(open); err != nil {
		return err
	}
	if err := f.send(gobgp.NewBGPKeepAliveMessage()); err != nil {
		return err
	}
	for {
		typ, body, err := readMessage(r)
		if err != nil {
			return fmt.Errorf("waiting for the leaf's KEEPALIVE: %w", err)
		}
		if typ == gobgp.BGP_MSG_NOTIFICATION {
			return fmt.Errorf("the leaf sent a NOTIFICATION: % x", body)
		}
		if typ == gobgp.BGP_MSG_KEEPALIVE {
			break
		}
	}
	conn.SetReadDeadline(time.Time{})
	f.lastHeard = time.Now()
	f.done.Add(2)
	go f.keepalives()
	go f.drain(r)
	return nil
}

// keepalives every 3 s, the guide's keepalive timer.
func (f *rawFabric) keepalives() {
	defer f.done.Done()
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.send(gobgp.NewBGPKeepAliveMessage())
		}
	}
}

// drain reads what the leaf sends, counting its EVPN routes and noting
// the longest silence.
func (f *rawFabric) drain(r *bufio.Reader) {
	defer f.done.Done()
	for {
		typ, body, err := readMessage(r)
		now := time.Now()
		f.readMu.Lock()
		if gap := now.Sub(f.lastHeard); gap > f.maxSilent {
			f.maxSilent = gap
		}
		f.lastHeard = now
		if err == nil && typ == gobgp.BGP_MSG_NOTIFICATION {
			err = fmt.Errorf("NOTIFICATION % x", body)
		}
		if err == nil && typ == gobgp.BGP_MSG_UPDATE {
			f.heard.Add(int64(evpnNLRIs(body, gobgp.BGP_ATTR_TYPE_MP_REACH_NLRI)))
			f.unheard.Add(int64(evpnNLRIs(body, gobgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI)))
		}
		if err != nil {
			f.closed = err
			f.readMu.Unlock()
			return
		}
		f.readMu.Unlock()
	}
}

func (f *rawFabric) send(m *gobgp.BGPMessage) error {
	data, err := m.Serialize()
	if err != nil {
		return err
	}
	return f.write(data)
}

// write sends data whole; the keepalives wait their turn (a keepalive in
// the middle of an UPDATE would corrupt the stream).
func (f *rawFabric) write(data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.conn.Write(data)
	return err
}

// Announce writes every route, in writes of about 1 MiB so that keepalives
// can go between them.
func (f *rawFabric) Announce() error { return f.chunked(f.announce) }

// Withdraw withdraws every route.
func (f *rawFabric) Withdraw() error { return f.chunked(f.withdraw) }

func (f *rawFabric) chunked(stream []byte) error {
	for len(stream) > 0 {
		// Cut at a message boundary near 1 MiB.
		end := 0
		for end < len(stream) && end < 1<<20 {
			end += int(binary.BigEndian.Uint16(stream[end+16:]))
		}
		if err := f.write(stream[:end]); err != nil {
			return err
		}
		stream = stream[end:]
	}
	return nil
}

// Silence is the longest time the leaf's side sent nothing, and why it
// ended if it did.
func (f *rawFabric) Silence() (time.Duration, error) {
	f.readMu.Lock()
	defer f.readMu.Unlock()
	gap := max(f.maxSilent, time.Since(f.lastHeard))
	return gap, f.closed
}

func (f *rawFabric) Close() {
	close(f.stop)
	f.ln.Close()
	if f.conn != nil {
		f.conn.Close()
	}
	f.done.Wait()
}

// readMessage reads one BGP message: its type and body.
func readMessage(r io.Reader) (uint8, []byte, error) {
	hdr := make([]byte, 19)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, nil, err
	}
	size := int(binary.BigEndian.Uint16(hdr[16:18]))
	if size < 19 {
		return 0, nil, fmt.Errorf("message of %d bytes", size)
	}
	body := make([]byte, size-19)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return hdr[18], body, nil
}
