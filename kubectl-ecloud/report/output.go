package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Format is an output format of -o.
type Format string

// Output formats: the default table, a wider table, JSON and YAML of the report.
const (
	FormatTable Format = ""
	FormatWide  Format = "wide"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

// ParseFormat validates the value of -o.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatWide, FormatJSON, FormatYAML:
		return f, nil
	}
	return "", fmt.Errorf("output format %q: want wide, json or yaml", s)
}

// Renderer is a report that can print itself as a table.
type Renderer interface {
	// Table writes the human form; wide adds columns.
	Table(w io.Writer, wide bool) error
}

// Write prints r in format f.
func Write(w io.Writer, f Format, r Renderer) error {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatYAML:
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return r.Table(w, f == FormatWide)
}

// table is a tab-aligned table writer.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
