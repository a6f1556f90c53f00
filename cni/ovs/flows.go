package ovs

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPriority is the priority OpenFlow gives a flow that names none.
const DefaultPriority = 32768

// String renders f in ovs-ofctl add-flow syntax.
func (f Flow) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cookie=%#x,table=%d,priority=%d", f.Cookie, f.Table, f.Priority)
	if f.Match != "" {
		b.WriteString("," + f.Match)
	}
	actions := f.Actions
	if actions == "" {
		actions = "drop"
	}
	b.WriteString(",actions=" + actions)
	return b.String()
}

func formatFlows(flows []Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
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
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_") || strings.HasPrefix(line, "NXST_") {
			continue
		}
		f, err := parseFlow(line)
		if err != nil {
			return nil, err
		}
		flows = append(flows, f)
	}
	return flows, nil
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
