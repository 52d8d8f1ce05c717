package main

import (
	"fmt"
	"slices"
	"strings"
)

// series is one figure measured over repeated runs.
type series []float64

func (s series) sorted() []float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// median of the runs; 0 for none.
func (s series) median() float64 {
	c := s.sorted()
	switch {
	case len(c) == 0:
		return 0
	case len(c)%2 == 1:
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// spread formats "median (min–max, n runs)" with the given verb.
func (s series) spread(verb string) string {
	if len(s) == 0 {
		return "—"
	}
	c := s.sorted()
	if len(c) == 1 {
		return fmt.Sprintf(verb+" (1 run)", c[0])
	}
	return fmt.Sprintf(verb+" ("+verb+"–"+verb+", %d runs)", s.median(), c[0], c[len(c)-1], len(c))
}

// all lists every run, in run order.
func (s series) all(verb string) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprintf(verb, v)
	}
	return strings.Join(parts, " · ")
}

// ratios divides a by b run by run (the runs were measured side by side).
func ratios(a, b series) series {
	var out series
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// verdict is "met" or "missed" for a target.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
