package dataplane

import "fmt"

// Reason is why a packet got its verdict; every packet is counted under one.
type Reason uint32

const (
	ReasonPass          = Reason(xleafReasonREASON_PASS)
	ReasonPassHost      = Reason(xleafReasonREASON_PASS_HOST)
	ReasonFwdRemote     = Reason(xleafReasonREASON_FWD_REMOTE)
	ReasonFwdLocal      = Reason(xleafReasonREASON_FWD_LOCAL)
	ReasonMalformed     = Reason(xleafReasonREASON_DROP_MALFORMED)
	ReasonBadVXLAN      = Reason(xleafReasonREASON_DROP_BAD_VXLAN)
	ReasonUnknownVNI    = Reason(xleafReasonREASON_DROP_UNKNOWN_VNI)
	ReasonBadRouterMAC  = Reason(xleafReasonREASON_DROP_BAD_RMAC)
	ReasonUnsupported   = Reason(xleafReasonREASON_DROP_UNSUPPORTED)
	ReasonTTL           = Reason(xleafReasonREASON_DROP_TTL)
	ReasonNoRoute       = Reason(xleafReasonREASON_DROP_NO_ROUTE)
	ReasonBlackhole     = Reason(xleafReasonREASON_DROP_BLACKHOLE)
	ReasonNoNeighbor    = Reason(xleafReasonREASON_DROP_NO_NEIGH)
	ReasonNoUnderlay    = Reason(xleafReasonREASON_DROP_NO_UNDERLAY)
	ReasonUnderlayNeigh = Reason(xleafReasonREASON_DROP_UNDERLAY_NEIGH)
	ReasonMTU           = Reason(xleafReasonREASON_DROP_MTU)
	ReasonBadNexthop    = Reason(xleafReasonREASON_DROP_BAD_NEXTHOP)
	ReasonNoVRF         = Reason(xleafReasonREASON_DROP_NO_VRF)
	ReasonError         = Reason(xleafReasonREASON_DROP_ERROR)
	ReasonBadChecksum   = Reason(xleafReasonREASON_DROP_BAD_CSUM)
	ReasonHostOverVXLAN = Reason(xleafReasonREASON_DROP_HOST_VXLAN)
	ReasonScope         = Reason(xleafReasonREASON_DROP_SCOPE)
	reasonMax           = Reason(xleafReasonREASON_MAX)
)

// ReasonSlots is each VRF's share of the counters map (REASON_SLOTS; a
// counter's key is VRF * ReasonSlots + reason):
// room for reasons to come, so the pinned map survives their addition.
const ReasonSlots = 32

var reasonNames = [...]string{
	ReasonPass:          "pass",
	ReasonPassHost:      "pass-host",
	ReasonFwdRemote:     "forward-remote",
	ReasonFwdLocal:      "forward-local",
	ReasonMalformed:     "drop-malformed",
	ReasonBadVXLAN:      "drop-bad-vxlan",
	ReasonUnknownVNI:    "drop-unknown-vni",
	ReasonBadRouterMAC:  "drop-bad-router-mac",
	ReasonUnsupported:   "drop-unsupported",
	ReasonTTL:           "drop-ttl",
	ReasonNoRoute:       "drop-no-route",
	ReasonBlackhole:     "drop-blackhole",
	ReasonNoNeighbor:    "drop-no-neighbor",
	ReasonNoUnderlay:    "drop-no-underlay-route",
	ReasonUnderlayNeigh: "drop-no-underlay-neighbor",
	ReasonMTU:           "drop-mtu",
	ReasonBadNexthop:    "drop-bad-nexthop",
	ReasonNoVRF:         "drop-no-vrf",
	ReasonError:         "drop-error",
	ReasonBadChecksum:   "drop-bad-checksum",
	ReasonHostOverVXLAN: "drop-host-over-vxlan",
	ReasonScope:         "drop-ipv6-scope",
}

// Reasons lists every reason, in counter order.
func Reasons() []Reason {
	rs := make([]Reason, reasonMax)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint32(r))
}

// Dropped says whether packets with this reason were dropped.
func (r Reason) Dropped() bool {
	return r >= ReasonMalformed
}

// CounterKey indexes the data path's counters.
type CounterKey struct {
	VRF    VRFID
	Reason Reason
}

// Counter is a packet and byte count, summed over CPUs.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

func (c Counter) plus(o Counter) Counter {
	return Counter{Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes}
}
