package ovs

import (
	"cmp"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestAddPortArgs(t *testing.T) {
	tests := []struct {
		name string
		port Port
		want string
	}{
		{"plain veth", Port{Name: "ecv1"},
			"--if-exists del-port br-int ecv1 -- add-port br-int ecv1"},
		{"access port with ids", Port{Name: "ecv1", Tag: 100, ExternalIDs: map[string]string{"ecloud-pod": "shop/db-0", "ecloud-ip": "10.1.0.5"}},
			`--if-exists del-port br-int ecv1 -- add-port br-int ecv1 tag=100 external_ids:ecloud-ip="10.1.0.5" external_ids:ecloud-pod="shop/db-0"`},
		{"tunnel", Port{Name: "ect1", Type: "vxlan", Options: map[string]string{"remote_ip": "172.31.0.2", "key": "flow"}},
			`--if-exists del-port br-int ect1 -- add-port br-int ect1 -- set Interface ect1 type=vxlan options:key="flow" options:remote_ip="172.31.0.2"`},
		{"internal with mac", Port{Name: "gw", Type: "internal", MAC: "0a:58:00:00:00:01"},
			`--if-exists del-port br-int gw -- add-port br-int gw -- set Interface gw type=internal mac="0a:58:00:00:00:01"`},
		{"value needing quotes", Port{Name: "p", ExternalIDs: map[string]string{"k": `a "b",c`}},
			`--if-exists del-port br-int p -- add-port br-int p external_ids:k="a \"b\",c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(addPortArgs("br-int", tt.port), " "); got != tt.want {
				t.Errorf("addPortArgs:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEnsureBridgeArgsSetTheDatapath(t *testing.T) {
	for _, dp := range []DatapathType{System, Netdev} {
		got := strings.Join(ensureBridgeArgs("br-int", dp), " ")
		for _, want := range []string{"--may-exist add-br br-int", "datapath_type=" + string(dp), "fail_mode=secure"} {
			if !strings.Contains(got, want) {
				t.Errorf("ensureBridgeArgs(%s) = %q, missing %q", dp, got, want)
			}
		}
	}
}

func TestDatapathTypeValidate(t *testing.T) {
	for _, tt := range []struct {
		dp DatapathType
		ok bool
	}{{System, true}, {Netdev, true}, {"", false}, {"dpdk", false}, {"System", false}} {
		if err := tt.dp.Validate(); (err == nil) != tt.ok {
			t.Errorf("DatapathType(%q).Validate() = %v, want ok=%v", tt.dp, err, tt.ok)
		}
	}
}

func TestParseFlows(t *testing.T) {
	out := ` cookie=0xec10, table=10, priority=100,arp,reg0=0x64,arp_tpa=10.1.0.0/24,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],IN_PORT
 priority=100,ip,in_port=2 actions=resubmit(,20)
 table=20, ip actions=set_field:0x64->tun_id,output:2
 actions=drop
`
	want := []Flow{
		{Cookie: 0xec10, Table: 10, Priority: 100, Match: "arp,reg0=0x64,arp_tpa=10.1.0.0/24,arp_op=1", Actions: "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],IN_PORT"},
		{Priority: 100, Match: "ip,in_port=2", Actions: "resubmit(,20)"},
		{Table: 20, Priority: DefaultPriority, Match: "ip", Actions: "set_field:0x64->tun_id,output:2"},
		{Priority: DefaultPriority, Actions: "drop"},
	}
	got, err := parseFlows(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseFlows:\n got %+v\nwant %+v", got, want)
	}
	if _, err := parseFlows("cookie=zz, table=1 actions=drop"); err == nil {
		t.Error("bad cookie: want an error")
	}
	if _, err := parseFlows("table=1 priority=3"); err == nil {
		t.Error("no actions: want an error")
	}
}

func TestLineCookie(t *testing.T) {
	for _, tt := range []struct {
		line   string
		cookie uint64
		ok     bool
	}{
		{" cookie=0xec10d, table=20, priority=200,ip actions=drop", 0xec10d, true},
		{"cookie=0xFFFFFFFFFFFFFFFF, table=0 actions=drop", 1<<64 - 1, true},
		{" table=20, ip actions=output:2", 0, true}, // cookie 0 is left out
		{" actions=drop", 0, true},
		{"cookie=zz, table=1 actions=drop", 0, false},
		{"cookie=0x, table=1 actions=drop", 0, false},
		{"cookie=0x10000000000000000, table=1 actions=drop", 0, false},
		{"cookie=17, table=1 actions=drop", 0, false},
	} {
		c, ok := lineCookie([]byte(tt.line))
		if c != tt.cookie || ok != tt.ok {
			t.Errorf("lineCookie(%q) = %#x, %v; want %#x, %v", tt.line, c, ok, tt.cookie, tt.ok)
		}
	}
}

func TestFlowStringRoundTrip(t *testing.T) {
	f := Flow{Cookie: 0xec10, Table: 20, Priority: 100, Match: "ip,reg0=0x64,nw_dst=10.1.0.5", Actions: "output:3"}
	s := f.String()
	if s != "cookie=0xec10,table=20,priority=100,ip,reg0=0x64,nw_dst=10.1.0.5,actions=output:3" {
		t.Fatalf("String = %s", s)
	}
	back, err := parseFlow(strings.Replace(s, ",actions=", " actions=", 1))
	if err != nil || !reflect.DeepEqual(back, f) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	for _, f := range []Flow{f, {Cookie: 1<<64 - 1, Table: 254, Priority: 65535, Match: "arp"}, {Table: -1, Priority: -2}} {
		want := fmt.Sprintf("cookie=%#x,table=%d,priority=%d", f.Cookie, f.Table, f.Priority)
		if f.Match != "" {
			want += "," + f.Match
		}
		want += ",actions=" + cmp.Or(f.Actions, "drop")
		if got := f.String(); got != want {
			t.Errorf("String = %s, want %s", got, want)
		}
	}
	if got := (Flow{}).String(); got != "cookie=0x0,table=0,priority=0,actions=drop" {
		t.Errorf("empty flow: %s", got)
	}
}

func TestJoinPorts(t *testing.T) {
	portJSON := `{"data":[["br-int",["set",[]],["map",[]]],["tun1",["set",[]],["map",[["ecloud-node","n2"]]]],["gw0",5,["map",[["a","b"],["c","x y,z"]]]],["other",7,["map",[["a","b"]]]]],"headings":["name","tag","external_ids"]}`
	ifJSON := `{"data":[["tun1","vxlan",2,["map",[["key","flow"],["remote_ip","172.31.0.2"]]],["set",[]]],["gw0","internal",1,["map",[]],"0a:58:00:00:00:01"],["br-int","internal",65534,["map",[]],["set",[]]]],"headings":["name","type","ofport","options","mac"]}`
	got, err := joinPorts([]string{"tun1", "gw0"}, portJSON, ifJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Port{
		{Name: "gw0", Type: "internal", Tag: 5, OFPort: 1, MAC: "0a:58:00:00:00:01", ExternalIDs: map[string]string{"a": "b", "c": "x y,z"}, Options: map[string]string{}},
		{Name: "tun1", Type: "vxlan", OFPort: 2, ExternalIDs: map[string]string{"ecloud-node": "n2"}, Options: map[string]string{"key": "flow", "remote_ip": "172.31.0.2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("joinPorts:\n got %+v\nwant %+v", got, want)
	}
	got, err = joinPorts([]string{"tun1", "gw0", "other"}, portJSON, ifJSON, map[string]string{"a": "b"})
	if err != nil || len(got) != 2 || got[0].Name != "gw0" || got[1].Name != "other" {
		t.Errorf("joinPorts with match a=b: %+v, %v", got, err)
	}
	if _, err := joinPorts(nil, "{", ifJSON, nil); err == nil {
		t.Error("bad JSON: want an error")
	}
}

func TestTunnelTypeValidate(t *testing.T) {
	for _, ok := range []TunnelType{VXLAN, Geneve} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if err := TunnelType("gre").Validate(); err == nil {
		t.Error("gre: want an error")
	}
}

func TestParseListPorts(t *testing.T) {
	out := `{"data":[[["set",[["uuid","a1"],["uuid","d6"]]]]],"headings":["ports"]}
{"data":[[["uuid","d6"],"br-int",["set",[]],["map",[]]],[["uuid","x9"],"br-x",["set",[]],["map",[]]],[["uuid","a1"],"gw0",5,["map",[["a","b"]]]]],"headings":["_uuid","name","tag","external_ids"]}
{"data":[["br-x","internal",65534,["map",[]],["set",[]]],["br-int","internal",65534,["map",[]],["set",[]]],["gw0","internal",1,["map",[]],["set",[]]]],"headings":["name","type","ofport","options","mac"]}
`
	got, err := parseListPorts(out, "br-int", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "gw0" || got[0].Tag != 5 || got[0].OFPort != 1 {
		t.Errorf("parseListPorts: %+v (br-x belongs to another bridge, br-int is the local port)", got)
	}
	single := strings.Replace(out, `["set",[["uuid","a1"],["uuid","d6"]]]`, `["uuid","a1"]`, 1)
	if got, err := parseListPorts(single, "br-int", map[string]string{"a": "b"}); err != nil || len(got) != 1 || got[0].Name != "gw0" {
		t.Errorf("single-port bridge: %+v, %v", got, err)
	}
	if _, err := parseListPorts("{}", "br-int", nil); err == nil {
		t.Error("one table: want an error")
	}
}

func TestFormatBundle(t *testing.T) {
	add := []Flow{{Cookie: 5, Table: 1, Priority: 7, Match: "arp", Actions: "IN_PORT"}}
	del := []Flow{{Cookie: 5, Table: 0, Priority: 5, Match: "ip"}, {Table: 20}}
	want := "flow delete_strict table=0,priority=5,ip\nflow delete_strict table=20,priority=0\nflow add cookie=0x5,table=1,priority=7,arp,actions=IN_PORT\n"
	if got := formatBundle(add, del); got != want {
		t.Errorf("formatBundle:\n%s\nwant\n%s", got, want)
	}
}

func TestUpdatePortsArgs(t *testing.T) {
	got := strings.Join(updatePortsArgs("br-int", []Port{{Name: "a", Tag: 5}, {Name: "b"}}, []string{"c"}), " ")
	want := "--if-exists del-port br-int c -- --if-exists del-port br-int a -- add-port br-int a tag=5 -- --if-exists del-port br-int b -- add-port br-int b"
	if got != want {
		t.Errorf("updatePortsArgs:\n got %s\nwant %s", got, want)
	}
	got = strings.Join(updatePortsArgs("br-int", nil, []string{"c", "d"}), " ")
	want = "--no-wait --if-exists del-port br-int c -- --if-exists del-port br-int d"
	if got != want {
		t.Errorf("updatePortsArgs (deletes only):\n got %s\nwant %s", got, want)
	}
	if len(updatePortsArgs("br-int", nil, nil)) != 0 {
		t.Error("no change: want no arguments")
	}
}
