package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/xleaf/xleaf/test/netns"
)

// Probe is a steady UDP flow from one host to another: datagrams numbered
// in sending order, each due at a fixed interval after the first, from a
// socket opened in the source host's namespace to one opened in the
// destination's. A run of missing numbers is a stretch of time the path
// was broken.
type Probe struct {
	From, To string
	V6       bool // between the hosts' IPv6 addresses

	interval time.Duration
	id       uint32
	tx, rx   *net.UDPConn
	start    time.Time // when number 0 was due
	stop     chan struct{}
	sending  sync.WaitGroup
	reading  sync.WaitGroup

	mu      sync.Mutex
	sent    int
	arrived []time.Time // by number; zero: not (yet) received
	newest  int         // highest number received, -1 before any
}

// probeMagic starts every probe datagram, so a stray one is not counted.
const probeMagic = 0x786c7072 // "xlpr"

// probeSize: magic, flow id, sequence number.
const probeSize = 16

// StartProbe starts a flow of rate datagrams a second from host from to
// host to, on UDP port, over IPv6 if v6. The sockets keep the namespaces
// they were opened in, so this process needs to enter each only once.
func (l *Lab) StartProbe(from, to string, port, rate int, v6 bool) (*Probe, error) {
	addr, network := HostAddr(to), "udp4"
	if v6 {
		addr, network = HostAddr6(to), "udp6"
	}
	dst, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("probe to %s: no such host", to)
	}
	if rate <= 0 {
		return nil, fmt.Errorf("probe rate %d: must be positive", rate)
	}
	p := &Probe{From: from, To: to, V6: v6, interval: time.Second / time.Duration(rate), id: uint32(port),
		stop: make(chan struct{}), newest: -1}
	err = netns.Enter(l.ns(to), func() error {
		p.rx, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(port))))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("probe receiver on %s: %w", to, err)
	}
	err = netns.Enter(l.ns(from), func() error {
		p.tx, err = net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(port))))
		return err
	})
	if err != nil {
		p.rx.Close()
		return nil, fmt.Errorf("probe sender on %s: %w", from, err)
	}
	p.start = time.Now()
	p.reading.Go(p.read)
	p.sending.Go(p.send)
	return p, nil
}

// send keeps to the schedule: a datagram late (the process was not
// scheduled) goes out at once, so a number always stands for its time.
// One that cannot be sent (an ICMP error came back) still uses its number.
func (p *Probe) send() {
	buf := make([]byte, probeSize)
	binary.BigEndian.PutUint32(buf[0:], probeMagic)
	binary.BigEndian.PutUint32(buf[4:], p.id)
	for seq := 0; ; seq++ {
		if wait := time.Until(p.due(seq)); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case <-p.stop:
			return
		default:
		}
		binary.BigEndian.PutUint64(buf[8:], uint64(seq))
		p.tx.Write(buf)
		p.mu.Lock()
		p.sent = seq + 1
		p.mu.Unlock()
	}
}

func (p *Probe) read() {
	buf := make([]byte, 64)
	for {
		n, err := p.rx.Read(buf)
		now := time.Now()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n != probeSize || binary.BigEndian.Uint32(buf[0:]) != probeMagic || binary.BigEndian.Uint32(buf[4:]) != p.id {
			continue
		}
		seq := int(binary.BigEndian.Uint64(buf[8:]))
		p.mu.Lock()
		if seq <= p.sent { // a number not yet sent is not ours
			for len(p.arrived) <= seq {
				p.arrived = append(p.arrived, time.Time{})
			}
			if p.arrived[seq].IsZero() {
				p.arrived[seq] = now
			}
			p.newest = max(p.newest, seq)
		}
		p.mu.Unlock()
	}
}

func (p *Probe) due(seq int) time.Time { return p.start.Add(time.Duration(seq) * p.interval) }

// Next is the number the next datagram will carry.
func (p *Probe) Next() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// NewestSent is when the newest datagram received was due to be sent
// (zero before any): the path worked at that time.
func (p *Probe) NewestSent() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.newest < 0 {
		return time.Time{}
	}
	return p.due(p.newest)
}

// Clean says whether every datagram due in the window before the last
// 200 ms (room for those still on their way) arrived.
func (p *Probe) Clean(window time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	end := time.Since(p.start) - 200*time.Millisecond
	if end < window {
		return false
	}
	for seq := int((end - window) / p.interval); seq < int(end/p.interval); seq++ {
		if seq >= len(p.arrived) || p.arrived[seq].IsZero() {
			return false
		}
	}
	return true
}

// Stop ends the flow, gives the last datagrams time to arrive, and returns
// what was seen.
func (p *Probe) Stop() Record {
	close(p.stop)
	p.sending.Wait()
	time.Sleep(300 * time.Millisecond)
	p.rx.Close()
	p.reading.Wait()
	p.tx.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	arrived := make([]time.Time, p.sent)
	copy(arrived, p.arrived)
	return Record{Start: p.start, Interval: p.interval, Arrived: arrived}
}

// Record is what a probe saw: the schedule, and when each datagram
// arrived (zero: lost), by number.
type Record struct {
	Start    time.Time
	Interval time.Duration
	Arrived  []time.Time
}

// Due is when datagram seq was sent.
func (r Record) Due(seq int) time.Time { return r.Start.Add(time.Duration(seq) * r.Interval) }

// Loss is what a flow lost around an event.
type Loss struct {
	Sent    int           // datagrams counted
	Lost    int           // of which never arrived
	Outage  time.Duration // the longest run of lost datagrams × the interval
	Stray   int           // lost outside that run: a second, later or scattered loss
	Back    time.Duration // from the event's end to the first arrival after the longest run that ended; 0 if none did, negative if it ended before the event did
	Dead    bool          // it ends inside a run of DeadAfter or more: the path did not come back
	OutFrom time.Time     // when the longest run began (its first datagram was due)
}

// DeadAfter is how long a run of losses at the end of a record must be
// for the path to count as dead: the last datagrams are never lost in
// flight, since Stop waits for them, so a few are a hiccup, this many a
// path that did not come back.
const DeadAfter = time.Second

// Loss counts the datagrams from number from on; up is when the event
// ended (the link came back, the agent was started again).
func (r Record) Loss(from int, up time.Time) Loss {
	var l Loss
	from = max(from, 0)
	if from >= len(r.Arrived) {
		return l
	}
	l.Sent = len(r.Arrived) - from
	// The longest run followed by an arrival, [end-longest, end); and the
	// run the record ends in, which has no arrival after it.
	longest, end, run := 0, 0, 0
	for seq := from; seq < len(r.Arrived); seq++ {
		if r.Arrived[seq].IsZero() {
			l.Lost++
			run++
			continue
		}
		if run > longest {
			longest, end = run, seq
		}
		run = 0
	}
	if longest > 0 {
		l.Outage = time.Duration(longest) * r.Interval
		l.OutFrom = r.Due(end - longest)
		l.Back = r.Arrived[end].Sub(up)
	}
	if trailing := time.Duration(run) * r.Interval; run > 0 && trailing >= l.Outage {
		l.Outage, l.OutFrom = trailing, r.Due(len(r.Arrived)-run)
		l.Dead = trailing >= DeadAfter
		if l.Dead {
			l.Back = 0
		}
	}
	l.Stray = l.Lost - int(l.Outage/r.Interval)
	return l
}
