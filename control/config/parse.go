package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// Load reads a configuration file of either format; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads an NVUE command listing (`nv config show -o commands`) or
// NVUE's startup.yaml, detected from the content, and validates it. file
// names the input in errors. On any error it returns a nil Config and every
// problem found, sorted by line.
func Parse(file string, data []byte) (*Config, error) {
	paths, errs := readPaths(file, data)
	b := newBuilder()
	for _, p := range paths {
		ps, err := expand(p)
		if err != nil {
			errs = append(errs, posErrorf(p.pos, "%q: %v", p.shown, err))
			continue
		}
		for _, q := range ps {
			if err := b.apply(q); err != nil {
				errs = append(errs, err)
			}
		}
	}
	c := b.finish()
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, joinSorted(errs)
}

// posError is an error at a place in a file.
type posError struct {
	pos Position
	msg string
}

func (e *posError) Error() string {
	if e.pos.File == "" && e.pos.Line == 0 {
		return e.msg
	}
	return fmt.Sprintf("%s:%d: %s", e.pos.File, e.pos.Line, e.msg)
}

func posErrorf(pos Position, format string, args ...any) error {
	return &posError{pos: pos, msg: fmt.Sprintf(format, args...)}
}

func (p Position) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// joinSorted joins errors in file and line order, so a user reads them as
// the file reads.
func joinSorted(errs []error) error {
	posOf := func(err error) Position {
		var pe *posError
		if errors.As(err, &pe) {
			return pe.pos
		}
		return Position{}
	}
	slices.SortStableFunc(errs, func(a, b error) int { return comparePos(posOf(a), posOf(b)) })
	return errors.Join(errs...)
}

// slot is a single-valued key's value and where it was set.
type slot struct {
	value string
	pos   Position
}

// builder fills a Config from paths, one schema rule per path.
type builder struct {
	c       *Config
	seen    map[string]bool   // paths applied: a repeated line is no error
	slots   map[string]slot   // single-valued keys, to refuse a second value
	ignored map[*rule]Ignored // the first (lowest) key per ignoring rule
}

func newBuilder() *builder {
	return &builder{
		c: &Config{
			Interfaces: map[string]*Interface{},
			RouteMaps:  map[string]*RouteMap{},
			VRFs:       map[string]*VRF{},
			Default: Default{
				Neighbors:  map[string]*Neighbor{},
				PeerGroups: map[string]*PeerGroup{},
			},
			Where: map[string]Position{},
		},
		seen:    map[string]bool{},
		slots:   map[string]slot{},
		ignored: map[*rule]Ignored{},
	}
}

// apply matches a path against the schema and runs the rule's handler.
func (b *builder) apply(p path) error {
	key := p.key()
	if b.seen[key] {
		return nil
	}
	r, args := lookup(p.tokens)
	if r == nil {
		return posErrorf(p.pos, "unknown key %q", p.shown)
	}
	where := key
	if r.kind == single {
		where = joinKey(p.tokens[:len(p.tokens)-1])
		value := p.tokens[len(p.tokens)-1]
		if s, ok := b.slots[where]; ok && s.value != value {
			return posErrorf(p.pos, "%q: %s is already %q at %s; a second value conflicts", p.shown, where, s.value, s.pos)
		}
	}
	m := &match{b: b, rule: r, path: p, args: args}
	if err := r.apply(m); err != nil {
		return posErrorf(p.pos, "%q: %v", p.shown, err)
	}
	b.seen[key] = true
	if r.kind == single {
		b.slots[where] = slot{value: p.tokens[len(p.tokens)-1], pos: p.pos}
	}
	if _, ok := b.c.Where[where]; !ok {
		b.c.Where[where] = p.pos
	}
	return nil
}

// finish sorts what accumulated, so that the order of keys in the file
// does not show in the model.
func (b *builder) finish() *Config {
	c := b.c
	for _, i := range c.Interfaces {
		sortPrefixes(i.Addresses)
	}
	for _, m := range c.RouteMaps {
		slices.SortFunc(m.Rules, func(x, y RouteMapRule) int { return cmp.Compare(x.Seq, y.Seq) })
	}
	for _, v := range c.VRFs {
		sortPrefixes(v.Aggregates)
		slices.SortFunc(v.ImportRTs, compareRT)
	}
	sortPrefixes(c.Default.Networks)
	for _, ig := range b.ignored {
		c.Ignored = append(c.Ignored, ig)
	}
	slices.SortFunc(c.Ignored, func(x, y Ignored) int { return strings.Compare(x.Key, y.Key) })
	return c
}

func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(x, y netip.Prefix) int {
		return cmp.Or(x.Addr().Compare(y.Addr()), cmp.Compare(x.Bits(), y.Bits()))
	})
}

// compareRT orders ASN:N targets by ASN then value, and ANY:N after them.
func compareRT(x, y RouteTarget) int {
	if x.Any != y.Any {
		if x.Any {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(x.ASN, y.ASN), cmp.Compare(x.Value, y.Value))
}

// ignore records that the matched key is accepted and does nothing: once
// per rule, under the lowest key, so the file's order does not matter.
func (m *match) ignore(reason string) {
	key := m.path.key()
	if ig, ok := m.b.ignored[m.rule]; ok && ig.Key <= key {
		return
	}
	m.b.ignored[m.rule] = Ignored{Pos: m.path.pos, Key: key, Reason: reason}
}
