package ovs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quote makes a value safe for ovs-vsctl's key=value syntax (a JSON string is valid there).
func quote(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func parseOFPort(s string) (int, error) {
	s = strings.Trim(s, "[] ")
	if s == "" {
		return 0, fmt.Errorf("no ofport yet")
	}
	return strconv.Atoi(s)
}

// ovsTable is `ovs-vsctl --format=json list <table>` output.
type ovsTable struct {
	Headings []string            `json:"headings"`
	Data     [][]json.RawMessage `json:"data"`
}

func (t *ovsTable) rows() ([]map[string]json.RawMessage, error) {
	rows := make([]map[string]json.RawMessage, 0, len(t.Data))
	for _, d := range t.Data {
		if len(d) != len(t.Headings) {
			return nil, fmt.Errorf("row with %d cells under %d headings", len(d), len(t.Headings))
		}
		r := make(map[string]json.RawMessage, len(d))
		for i, h := range t.Headings {
			r[h] = d[i]
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// ovsdbString decodes an OVSDB JSON string, or an empty set as "".
func ovsdbString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// ovsdbInt decodes an OVSDB integer, or an empty set as 0.
func ovsdbInt(raw json.RawMessage) int {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	return 0
}

// ovsdbMap decodes ["map", [[k, v], ...]].
func ovsdbMap(raw json.RawMessage) (map[string]string, error) {
	var v []json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 2 || ovsdbString(v[0]) != "map" {
		return nil, fmt.Errorf("not an OVSDB map: %s", raw)
	}
	var pairs [][2]string
	if err := json.Unmarshal(v[1], &pairs); err != nil {
		return nil, fmt.Errorf("OVSDB map %s: %w", raw, err)
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[p[0]] = p[1]
	}
	return m, nil
}

func decodeTable(out string) ([]map[string]json.RawMessage, error) {
	var t ovsTable
	if err := json.Unmarshal([]byte(out), &t); err != nil {
		return nil, fmt.Errorf("decode ovs-vsctl JSON: %w", err)
	}
	return t.rows()
}

// parseListPorts decodes the three JSON tables listPortsArgs prints (one per line): the
// bridge's port UUIDs, the Port rows and the Interface rows; it joins them by name and keeps
// the bridge's ports whose external_ids contain match. Like ovs-vsctl list-ports, it leaves
// out the bridge's own (local) port.
func parseListPorts(out, bridge string, match map[string]string) ([]Port, error) {
	docs := strings.Split(strings.TrimSpace(out), "\n")
	if len(docs) != 3 {
		return nil, fmt.Errorf("ovs-vsctl printed %d tables, want 3 (Bridge, Port, Interface)", len(docs))
	}
	brows, err := decodeTable(docs[0])
	if err != nil || len(brows) != 1 {
		return nil, fmt.Errorf("reading the Bridge table (%d rows): %v", len(brows), err)
	}
	members, err := ovdbUUIDSet(brows[0]["ports"])
	if err != nil {
		return nil, fmt.Errorf("reading the Bridge ports: %w", err)
	}
	prows, err := decodeTable(docs[1])
	if err != nil {
		return nil, fmt.Errorf("Port table: %w", err)
	}
	var names []string
	for _, r := range prows {
		if u, err := ovsdbUUID(r["_uuid"]); err == nil && members[u] && ovsdbString(r["name"]) != bridge {
			names = append(names, ovsdbString(r["name"]))
		}
	}
	return joinPorts(names, docs[1], docs[2], match)
}

// ovsdbUUID decodes ["uuid", "…"].
func ovsdbUUID(raw json.RawMessage) (string, error) {
	var v []string
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 2 || v[0] != "uuid" {
		return "", fmt.Errorf("not an OVSDB uuid: %s", raw)
	}
	return v[1], nil
}

// ovdbUUIDSet decodes a set of UUIDs: ["set", [["uuid", …], …]] or a single ["uuid", …].
func ovdbUUIDSet(raw json.RawMessage) (map[string]bool, error) {
	out := map[string]bool{}
	if u, err := ovsdbUUID(raw); err == nil {
		out[u] = true
		return out, nil
	}
	var v []json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 2 || ovsdbString(v[0]) != "set" {
		return nil, fmt.Errorf("not an OVSDB set: %s", raw)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v[1], &elems); err != nil {
		return nil, err
	}
	for _, e := range elems {
		u, err := ovsdbUUID(e)
		if err != nil {
			return nil, err
		}
		out[u] = true
	}
	return out, nil
}

// joinPorts joins the Port and Interface rows of the named ports and keeps those whose
// external_ids contain match.
func joinPorts(names []string, portJSON, ifJSON string, match map[string]string) ([]Port, error) {
	prows, err := decodeTable(portJSON)
	if err != nil {
		return nil, fmt.Errorf("Port table: %w", err)
	}
	irows, err := decodeTable(ifJSON)
	if err != nil {
		return nil, fmt.Errorf("reading the Interface table: %w", err)
	}
	ifaces := make(map[string]map[string]json.RawMessage, len(irows))
	for _, r := range irows {
		ifaces[ovsdbString(r["name"])] = r
	}
	var ports []Port
	for _, r := range prows {
		name := ovsdbString(r["name"])
		if !slices.Contains(names, name) {
			continue
		}
		ext, err := ovsdbMap(r["external_ids"])
		if err != nil {
			return nil, fmt.Errorf("port %s external_ids: %w", name, err)
		}
		if !containsAll(ext, match) {
			continue
		}
		p := Port{Name: name, Tag: ovsdbInt(r["tag"]), ExternalIDs: ext}
		if ir, ok := ifaces[name]; ok {
			p.Type = ovsdbString(ir["type"])
			p.OFPort = ovsdbInt(ir["ofport"])
			p.OFPortRequest = ovsdbInt(ir["ofport_request"])
			p.MAC = ovsdbString(ir["mac"])
			if p.Options, err = ovsdbMap(ir["options"]); err != nil {
				return nil, fmt.Errorf("interface %s options: %w", name, err)
			}
		}
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b Port) int { return strings.Compare(a.Name, b.Name) })
	return ports, nil
}

func containsAll(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
