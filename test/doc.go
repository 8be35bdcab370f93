// Package test holds xleaf's network-namespace integration tests; its
// subpackages are the helpers they and the dataplane tests share.
package test
