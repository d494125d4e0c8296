package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as a Go duration string
// ("90s", "1h", "168h").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

var durationType = reflect.TypeFor[Duration]()

// decoder walks a yaml.Node tree into a struct strictly: every key must be
// a field of the target (by its yaml tag), keys appear once, and scalars
// must parse as the field's type. It records the line of every path it sets
// so that validation can point at the line of a bad value.
type decoder struct {
	problems []Problem
	lines    map[string]int
}

func (d *decoder) fail(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.AliasNode {
		d.fail(n.Line, path, "YAML aliases are not supported in %s", describe(path))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default in place
	}
	switch {
	case v.Type() == durationType:
		d.scalar(n, path, func(s string) error {
			dur, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s must be a duration such as 90s, 1h or 168h, not %q", describe(path), s)
			}
			v.SetInt(int64(dur))
			return nil
		})
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n.Line, path, "%s must be a list", describe(path))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case v.Kind() == reflect.String:
		d.scalar(n, path, func(s string) error { v.SetString(s); return nil })
	case v.Kind() == reflect.Bool:
		d.scalar(n, path, func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil || n.Tag != "!!bool" {
				return fmt.Errorf("%s must be true or false, not %q", describe(path), s)
			}
			v.SetBool(b)
			return nil
		})
	case v.Kind() == reflect.Int:
		d.scalar(n, path, func(s string) error {
			i, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%s must be a whole number, not %q", describe(path), s)
			}
			v.SetInt(int64(i))
			return nil
		})
	default:
		panic(fmt.Sprintf("config: no decoder for %s", v.Type())) // a programming error in this package
	}
}

func (d *decoder) scalar(n *yaml.Node, path string, set func(string) error) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, path, "%s must be a single value, not a %s", describe(path), kindName(n.Kind))
		return
	}
	if err := set(n.Value); err != nil {
		d.fail(n.Line, path, "%s", err)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "%s must be a mapping of keys to values, not a %s", describe(path), kindName(n.Kind))
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" {
			d.fail(k.Line, path, "YAML merge keys (<<) are not supported")
			continue
		}
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k.Line, join(path, k.Value), "unknown key %q in %s%s", k.Value, describe(path), suggest(k.Value, fields))
			continue
		}
		if seen[k.Value] {
			d.fail(k.Line, join(path, k.Value), "key %q appears twice in %s", k.Value, describe(path))
			continue
		}
		seen[k.Value] = true
		d.lines[join(path, k.Value)] = k.Line
		d.decode(val, v.Field(idx), join(path, k.Value))
	}
}

func describe(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	}
	return "YAML node"
}

// suggest names the closest known key when the unknown one looks like a
// misspelling of it.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if dist := editDistance(key, f); dist < bestDist {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return " (known keys: " + strings.Join(names, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
