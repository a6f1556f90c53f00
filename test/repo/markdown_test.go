package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

const referencePath = "docs/reference.md"

// section is the text under one heading of a markdown file, up to the next heading of the same or
// a higher level.
type section struct {
	level int
	title string
	body  []string
	// line is the 1-based line of the heading.
	line int
}

// sections splits a markdown file into its headings (fenced code is not scanned for headings).
func sections(text string) []section {
	var out []section
	cur := section{title: "", line: 0}
	fenced := false
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(l, "#") {
			level := len(l) - len(strings.TrimLeft(l, "#"))
			if level > 0 && level < len(l) && l[level] == ' ' {
				out = append(out, cur)
				cur = section{level: level, title: strings.TrimSpace(l[level:]), line: i + 1}
				continue
			}
		}
		cur.body = append(cur.body, l)
	}
	return append(out, cur)
}

// subtree returns the body of the section titled title and of every section below it.
func subtree(secs []section, title string) (lines []string, found bool) {
	for i, s := range secs {
		if s.title != title {
			continue
		}
		lines = append(lines, s.body...)
		for _, sub := range secs[i+1:] {
			if sub.level <= s.level {
				break
			}
			lines = append(lines, "#"+sub.title)
			lines = append(lines, sub.body...)
		}
		return lines, true
	}
	return nil, false
}

// tableRows returns the cells of every table row in lines (header and separator rows skipped).
func tableRows(lines []string) [][]string {
	var rows [][]string
	header := true
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "|") {
			header = true
			continue
		}
		if header { // the first row of a table is its header
			header = false
			continue
		}
		if strings.HasPrefix(t, "|---") || strings.HasPrefix(t, "| ---") {
			continue
		}
		cells := strings.Split(strings.Trim(t, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

// codeSpans returns the `code` spans of a table cell.
func codeSpans(cell string) []string {
	var out []string
	parts := strings.Split(cell, "`")
	for i := 1; i < len(parts); i += 2 {
		out = append(out, parts[i])
	}
	return out
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}
