package repoconfig

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Problem is one thing wrong with a config file, located as precisely as the YAML allows.
type Problem struct {
	File   string
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown (YAML syntax errors only carry a line)
	Field  string // path of the field, e.g. "environments[1].apply_on"; empty for syntax errors
	Msg    string
}

// Error renders "file:line: field: message", leaving out the parts that are unknown.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// maxRenderedProblems bounds Error() so that a badly broken file still fits in a PR comment.
const maxRenderedProblems = 50

// Error is every problem found in one config file. Parse returns it as *Error.
type Error struct {
	Problems []Problem // sorted by line, then column
}

// Error renders one problem per line, ready to be put in a PR comment (inside a code block).
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i == maxRenderedProblems {
			fmt.Fprintf(&b, "\n… and %d more problems", len(e.Problems)-i)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// problems collects what is wrong while a file is decoded and validated.
type problems struct {
	file string
	list []Problem
}

func (ps *problems) add(a at, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: a.Line, Column: a.Column, Field: a.Path, Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sorted := append([]Problem(nil), ps.list...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Line != sorted[j].Line {
			return sorted[i].Line < sorted[j].Line
		}
		return sorted[i].Column < sorted[j].Column
	})
	return &Error{Problems: sorted}
}

// quote shows a user's value in a message, shortened so that a huge value cannot flood a PR comment.
func quote(s string) string {
	const limit = 60
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
