package ovs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// DefaultPriority is the priority OpenFlow gives a flow that names none.
const DefaultPriority = 32768

// String renders f in ovs-ofctl add-flow syntax.
func (f Flow) String() string { return string(f.AppendTo(nil)) }

// AppendTo appends f in ovs-ofctl add-flow syntax to b.
func (f Flow) AppendTo(b []byte) []byte {
	b = append(b, "cookie=0x"...)
	b = strconv.AppendUint(b, f.Cookie, 16)
	b = append(b, ",table="...)
	b = strconv.AppendInt(b, int64(f.Table), 10)
	b = append(b, ",priority="...)
	b = strconv.AppendInt(b, int64(f.Priority), 10)
	if f.Match != "" {
		b = append(b, ',')
		b = append(b, f.Match...)
	}
	b = append(b, ",actions="...)
	if f.Actions == "" {
		return append(b, "drop"...)
	}
	return append(b, f.Actions...)
}

func formatFlows(flows []Flow) string {
	var b []byte
	for _, f := range flows {
		b = append(f.AppendTo(b), '\n')
	}
	return string(b)
}

// writeFlow writes f as one line in ovs-ofctl add-flows syntax, with b as scratch space; it
// returns b for the next flow.
func writeFlow(w *bufio.Writer, b []byte, f Flow) ([]byte, error) {
	b = append(f.AppendTo(b[:0]), '\n')
	_, err := w.Write(b)
	return b, err
}

// cookieMatch is the del-flows/dump-flows match for exactly one cookie.
func cookieMatch(cookie uint64) string { return fmt.Sprintf("cookie=%#x/-1", cookie) }

// parseFlows parses `ovs-ofctl --no-stats --no-names dump-flows` output. Lines look like
//
//	cookie=0xec10, table=10, priority=100,arp,reg0=0x64 actions=IN_PORT
//
// where cookie 0, table 0 and priority 32768 are left out.
func parseFlows(out string) ([]Flow, error) {
	var flows []Flow
	for _, line := range strings.Split(out, "\n") {
		if err := eachFlow(line, func(f Flow) { flows = append(flows, f) }); err != nil {
			return nil, err
		}
	}
	return flows, nil
}

// eachFlow parses one line of dump-flows output and passes its flow to fn; a header or empty
// line has none.
func eachFlow(line string, fn func(Flow)) error {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "OFPST_") || strings.HasPrefix(line, "NXST_") {
		return nil
	}
	f, err := parseFlow(line)
	if err != nil {
		return err
	}
	fn(f)
	return nil
}

// lineCookie is the cookie of a line of dump-flows output (0 when it names none, as
// ovs-ofctl leaves cookie 0 out), read without making a string of the line.
func lineCookie(line []byte) (uint64, bool) {
	line = bytes.TrimSpace(line)
	v, ok := bytes.CutPrefix(line, []byte("cookie=0x"))
	if !ok {
		return 0, !bytes.HasPrefix(line, []byte("cookie="))
	}
	var c uint64
	for i, ch := range v {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'f':
			d = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			d = ch - 'A' + 10
		case ch == ',' && i > 0:
			return c, true
		default:
			return 0, false
		}
		if i >= 16 {
			return 0, false
		}
		c = c<<4 | uint64(d)
	}
	return 0, false
}

func parseFlow(line string) (Flow, error) {
	head, actions, ok := strings.Cut(line, " actions=")
	if !ok {
		if strings.HasPrefix(line, "actions=") {
			head, actions = "", strings.TrimPrefix(line, "actions=")
		} else {
			return Flow{}, fmt.Errorf("flow %q: no actions", line)
		}
	}
	f := Flow{Priority: DefaultPriority, Actions: actions}
	var match []string
	for _, tok := range strings.Split(head, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		k, v, _ := strings.Cut(tok, "=")
		var err error
		switch k {
		case "cookie":
			f.Cookie, err = strconv.ParseUint(v, 0, 64)
		case "table":
			f.Table, err = strconv.Atoi(v)
		case "priority":
			f.Priority, err = strconv.Atoi(v)
		default:
			match = append(match, tok)
		}
		if err != nil {
			return Flow{}, fmt.Errorf("flow %q: field %s: %w", line, k, err)
		}
	}
	f.Match = strings.Join(match, ",")
	return f, nil
}

// Key identifies a flow in its table (what a strict delete matches on).
func (f Flow) Key() string {
	return fmt.Sprintf("table=%d,priority=%d,%s", f.Table, f.Priority, f.Match)
}

// formatBundle renders an ovs-ofctl bundle file: deletes first, then adds.
func formatBundle(add, del []Flow) string {
	var b strings.Builder
	for _, f := range del {
		b.WriteString("flow delete_strict " + strings.TrimSuffix(f.Key(), ",") + "\n")
	}
	for _, f := range add {
		b.WriteString("flow add " + f.String() + "\n")
	}
	return b.String()
}
