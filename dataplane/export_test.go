package dataplane

import "net/netip"

// UnderlayPos is a VTEP's position in underlay_index, for tests that need
// VTEPs to share one.
func UnderlayPos(vtep netip.Addr) int { return underlayPos(be32(vtep)) }

// Sizes of the underlay store, for tests that fill or churn it.
const (
	MaxUnderlayHops = maxUnderlayHops
	UnderlaySlots   = underlaySlots
	VNIIndexSize    = vniIndexSize
)
