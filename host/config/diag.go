package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error is every problem found in a config file, each an hcl.Diagnostic with its
// position. Its message has one line per diagnostic,
// "file:line:col: summary; detail".
type Error struct {
	// Diagnostics are the errors, in file order.
	Diagnostics hcl.Diagnostics
}

// Error renders each diagnostic on its own line.
func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		lines = append(lines, FormatDiagnostic(d))
	}
	return strings.Join(lines, "\n")
}

// FormatDiagnostic renders one diagnostic as "file:line:col: summary; detail" on
// one line (a diagnostic without a position gets just "file: " or nothing).
func FormatDiagnostic(d *hcl.Diagnostic) string {
	var b strings.Builder
	if s := d.Subject; s != nil {
		switch {
		case s.Start.Line > 0:
			fmt.Fprintf(&b, "%s:%d:%d: ", s.Filename, s.Start.Line, s.Start.Column)
		case s.Filename != "":
			b.WriteString(s.Filename + ": ")
		}
	}
	if d.Severity == hcl.DiagWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(oneLine(d.Summary))
	if d.Detail != "" {
		b.WriteString("; " + oneLine(d.Detail))
	}
	return b.String()
}

// oneLine folds a multi-line text into one line.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
}

// sortDiagnostics orders diagnostics by file position; those without a position
// go last, in the order they were found.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		aPos, bPos := a != nil && a.Start.Line > 0, b != nil && b.Start.Line > 0
		if !aPos || !bPos {
			return aPos && !bPos
		}
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Start.Line != b.Start.Line {
			return a.Start.Line < b.Start.Line
		}
		return a.Start.Column < b.Start.Column
	})
}

// errorsOnly returns the error diagnostics of diags.
func errorsOnly(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}

// warningsOnly returns the warning diagnostics of diags.
func warningsOnly(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			out = append(out, d)
		}
	}
	return out
}

// quoteList renders names as `a, b, c` for "expected one of: ..." details.
func quoteList(names []string) string { return strings.Join(names, ", ") }
