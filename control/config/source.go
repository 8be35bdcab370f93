package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// A path is one key of NVUE's tree, as the tokens of an `nv set` line
// (without "nv set"), with where it was written. Both file formats are
// reduced to paths so that one schema reads them.
type path struct {
	pos    Position
	tokens []string
	shown  string // how an error quotes it: the line as written, or the YAML keys
}

// key is the path as one string; tokens that need it are quoted, as NVUE
// quotes them in `nv config show -o commands`.
func (p path) key() string { return joinKey(p.tokens) }

func joinKey(tokens []string) string {
	var b strings.Builder
	for i, t := range tokens {
		if i > 0 {
			b.WriteByte(' ')
		}
		if t == "" || strings.ContainsAny(t, " \t'\"\\#") {
			b.WriteString("'" + strings.ReplaceAll(t, "'", `'\''`) + "'")
			continue
		}
		b.WriteString(t)
	}
	return b.String()
}

// readPaths turns a file of either format into paths. Errors carry
// positions; reading goes on past a bad line so that all are reported.
func readPaths(file string, data []byte) ([]path, []error) {
	if isYAML(file, data) {
		return readYAML(file, data)
	}
	return readCommands(file, data)
}

// prompt matches a shell prompt pasted above a listing, such as
// "cumulus@borderleaf01:mgmt:~$ nv config show -o commands".
var prompt = regexp.MustCompile(`^\S+@\S+[$#](\s|$)`)

// isYAML decides the format from the first line that is not blank or a
// comment; a file with no such line is read as commands (and is empty).
func isYAML(file string, data []byte) bool {
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case line == "nv" || strings.HasPrefix(line, "nv ") || strings.HasPrefix(line, "nv\t") || prompt.MatchString(line):
			return false
		case strings.HasPrefix(line, "-") || strings.HasPrefix(line, "%YAML") || strings.HasPrefix(line, "set:") || strings.HasPrefix(line, "header:"):
			return true
		}
		break
	}
	ext := strings.ToLower(filepath.Ext(file))
	return ext == ".yaml" || ext == ".yml"
}

// readCommands reads an `nv config show -o commands` listing.
func readCommands(file string, data []byte) ([]path, []error) {
	var paths []path
	var errs []error
	first := true
	for i, line := range strings.Split(string(data), "\n") {
		pos := Position{File: file, Line: i + 1}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		wasFirst := first
		first = false
		if wasFirst && prompt.MatchString(line) {
			continue
		}
		words, err := splitWords(line)
		if err != nil {
			errs = append(errs, posErrorf(pos, "%q: %v", line, err))
			continue
		}
		if len(words) < 2 || words[0] != "nv" || words[1] != "set" {
			errs = append(errs, posErrorf(pos, "%q: expected an \"nv set ...\" line", line))
			continue
		}
		if len(words) == 2 {
			errs = append(errs, posErrorf(pos, "%q: nv set needs a key", line))
			continue
		}
		paths = append(paths, path{pos: pos, tokens: words[2:], shown: line})
	}
	return paths, errs
}

// splitWords splits a command line as a POSIX shell would: 'single' and
// "double" quotes group words, a backslash escapes the next character.
// Any Unicode space separates words: pasted listings carry no-break
// spaces (the guide ends every line with one).
func splitWords(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case r == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("unterminated ' quote")
			}
			word.WriteString(string(rs[i+1 : j]))
			i = j
			inWord = true
		case r == '"':
			i++
			for ; i < len(rs) && rs[i] != '"'; i++ {
				if rs[i] == '\\' && i+1 < len(rs) && strings.ContainsRune("\"\\$`", rs[i+1]) {
					i++
				}
				word.WriteRune(rs[i])
			}
			if i >= len(rs) {
				return nil, fmt.Errorf("unterminated \" quote")
			}
			inWord = true
		case r == '\\':
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			word.WriteRune(rs[i])
			inWord = true
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// yamlLine finds the line number in a yaml.v3 error message.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// readYAML reads NVUE's startup.yaml: a list of items, each `set:` with a
// tree (or the `header:` NVUE writes first). A key whose value is `{}` or
// empty is a leaf token; a scalar value is the last token.
func readYAML(file string, data []byte) ([]path, []error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // nothing but comments
		}
		line := 0
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", line))
		return nil, []error{posErrorf(Position{File: file, Line: line}, "bad YAML: %s", msg)}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, []error{posErrorf(Position{File: file, Line: more.Line}, "bad YAML: a second document; NVUE's file has one")}
	}
	top := &doc
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind != yaml.SequenceNode {
		return nil, []error{posErrorf(Position{File: file, Line: top.Line}, "bad YAML: expected NVUE's list of \"- set:\" items")}
	}
	var paths []path
	var errs []error
	for _, item := range top.Content {
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			errs = append(errs, posErrorf(Position{File: file, Line: item.Line}, "bad YAML: expected a \"- set:\" item with one key"))
			continue
		}
		k, v := item.Content[0], item.Content[1]
		switch k.Value {
		case "header":
			continue // NVUE's metadata: model, version, rev-id
		case "set":
			p, e := flatten(file, nil, v, k)
			paths = append(paths, p...)
			errs = append(errs, e...)
		default:
			errs = append(errs, posErrorf(Position{File: file, Line: k.Line}, "bad YAML: %q item: only \"set\" (and \"header\") are read", k.Value))
		}
	}
	return paths, errs
}

// flatten turns the tree under prefix into paths; key is the node's key,
// whose line a leaf reports.
func flatten(file string, prefix []string, n, key *yaml.Node) ([]path, []error) {
	pos := Position{File: file, Line: key.Line}
	mk := func(tokens []string) path {
		return path{pos: pos, tokens: tokens, shown: joinKey(tokens)}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			if len(prefix) == 0 {
				return nil, nil
			}
			return []path{mk(prefix)}, nil // "key:" with no value is a leaf, like "key: {}"
		}
		return []path{mk(append(clone(prefix), n.Value))}, nil
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			if len(prefix) == 0 {
				return nil, nil
			}
			return []path{mk(prefix)}, nil
		}
		var paths []path
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				errs = append(errs, posErrorf(Position{File: file, Line: k.Line}, "bad YAML: a key must be a plain string"))
				continue
			}
			p, e := flatten(file, append(clone(prefix), k.Value), v, k)
			paths = append(paths, p...)
			errs = append(errs, e...)
		}
		return paths, errs
	case yaml.AliasNode:
		return nil, []error{posErrorf(Position{File: file, Line: n.Line}, "bad YAML: %q: aliases are not part of NVUE's format", joinKey(prefix))}
	default:
		return nil, []error{posErrorf(Position{File: file, Line: n.Line}, "bad YAML: %q: a list is not part of NVUE's tree; write one key per item", joinKey(prefix))}
	}
}

func clone(s []string) []string { return append([]string(nil), s...) }

// maxRange bounds an interface range, so that swp1-99999999 is an error
// and not an allocation.
const maxRange = 4096

// ifRange matches one element of an interface range: swp1-3, swp1s0-3.
var ifRange = regexp.MustCompile(`^(.*?[^0-9])([0-9]+)-([0-9]+)$`)

// expandRange expands NVUE's interface ranges: "swp1-3,swp5" is swp1,
// swp2, swp3 and swp5.
func expandRange(s string) ([]string, error) {
	var names []string
	for part := range strings.SplitSeq(s, ",") {
		m := ifRange.FindStringSubmatch(part)
		if m == nil {
			if part == "" {
				return nil, fmt.Errorf("empty name in interface list %q", s)
			}
			names = append(names, part)
			continue
		}
		lo, err1 := strconv.Atoi(m[2])
		hi, err2 := strconv.Atoi(m[3])
		if err1 != nil || err2 != nil || lo > hi || hi-lo >= maxRange {
			return nil, fmt.Errorf("bad interface range %q, expected NAME<low>-<high> with low <= high and at most %d names", part, maxRange)
		}
		for i := lo; i <= hi; i++ {
			names = append(names, m[1]+strconv.Itoa(i))
		}
	}
	return names, nil
}

// expand replaces a path naming an interface range by one path per
// interface, so that every later step sees single interfaces.
func expand(p path) ([]path, error) {
	if len(p.tokens) < 2 || p.tokens[0] != "interface" || !strings.ContainsAny(p.tokens[1], ",-") {
		return []path{p}, nil
	}
	names, err := expandRange(p.tokens[1])
	if err != nil {
		return nil, err
	}
	out := make([]path, 0, len(names))
	for _, n := range names {
		q := p
		q.tokens = append([]string{"interface", n}, p.tokens[2:]...)
		out = append(out, q)
	}
	return out, nil
}
