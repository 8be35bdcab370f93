package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// EventKind says what the data path asks the agent to resolve.
type EventKind uint32

const (
	// NeighborMiss: a local host (VRF, Addr) has no neighbour entry.
	NeighborMiss = EventKind(xleafEventKindEVENT_NEIGH_MISS)
	// UnderlayMiss: the underlay next hop Addr on Ifindex is not resolved.
	UnderlayMiss = EventKind(xleafEventKindEVENT_UNDERLAY_MISS)
)

// Event is one miss reported by the data path. Misses repeat for every
// dropped packet until resolved; the reader should coalesce them.
type Event struct {
	Kind    EventKind
	VRF     VRFID
	Ifindex int
	Addr    netip.Addr
}

// EventReader hands over the data path's miss events, one at a time.
type EventReader interface {
	// Read blocks for the next event; after Close it returns an error.
	Read() (Event, error)
	Close() error
}

// Events reads miss events from the data path's ring buffer until Close.
type Events struct{ r *ringbuf.Reader }

var _ EventReader = (*Events)(nil)

// Events opens a reader of the data path's miss events.
func (d *Dataplane) Events() (EventReader, error) {
	r, err := ringbuf.NewReader(d.objs.Events)
	if err != nil {
		return nil, fmt.Errorf("open events: %w", err)
	}
	return &Events{r: r}, nil
}

// Read blocks for the next event; after Close it returns an error wrapping
// ringbuf.ErrClosed.
func (e *Events) Read() (Event, error) {
	rec, err := e.r.Read()
	if err != nil {
		return Event{}, err
	}
	var raw xleafEvent
	if _, err := binary.Decode(rec.RawSample, binary.LittleEndian, &raw); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	ev := Event{Kind: EventKind(raw.Kind), VRF: VRFID(raw.Vrf), Ifindex: int(raw.Ifindex)}
	var b [16]byte
	for i, w := range raw.Addr {
		binary.LittleEndian.PutUint32(b[i*4:], w)
	}
	switch raw.Family {
	case unix.AF_INET:
		ev.Addr = netip.AddrFrom4([4]byte(b[:4]))
	case unix.AF_INET6:
		ev.Addr = netip.AddrFrom16(b)
	default:
		return ev, errors.New("event with unknown address family")
	}
	return ev, nil
}

// SetDeadline makes Read give up at t (os.ErrDeadlineExceeded).
func (e *Events) SetDeadline(t time.Time) { e.r.SetDeadline(t) }

// Close stops Read.
func (e *Events) Close() error { return e.r.Close() }
