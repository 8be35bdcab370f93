// Package dataplane loads xleaf's XDP program, attaches it, and is the only
// code that programs its maps: VRFs, routes, nexthop groups, neighbours.
package dataplane
