package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ecloud-io/ecloud/test/netns"
)

// prometheusAddr is where hack/cluster/up.sh runs Prometheus, in the control plane's namespace.
const prometheusAddr = "10.250.0.1:9090"

// ecloudJobs are the scrape jobs (app.kubernetes.io/name of the components) the alerting rules
// expect, and whether the component runs on every node.
var ecloudJobs = map[string]bool{
	"ecloud-scheduler": false, "ecloud-controller": false, "ecloud-ip-controller": false, "ecloud-location-relay": false,
	"ecloud-netd": true, "ecloud-node-agent": true,
}

// promClient queries the local cluster's Prometheus from inside the control plane's namespace.
type promClient struct{ http *http.Client }

func newPromClient(t *testing.T, c *cluster) *promClient {
	f, err := os.Open("/run/netns/" + c.prefix + "-cp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tr := &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		return netns.Dial(f, addr, 3*time.Second)
	}}
	return &promClient{http: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
}

// get decodes the data of a Prometheus API answer.
func (p *promClient) get(path string, params url.Values, data any) error {
	resp, err := p.http.Get("http://" + prometheusAddr + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, tail(string(body), 3))
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s %v: %s", path, params, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
}

// query runs an instant query and returns its series.
func (p *promClient) query(q string) ([]promSeries, error) {
	var d struct {
		ResultType string       `json:"resultType"`
		Result     []promSeries `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &d); err != nil {
		return nil, err
	}
	return d.Result, nil
}

// dashboardQueries returns "panel title" -> its queries, from manifests/dashboards/ecloud.json.
func dashboardQueries(t *testing.T, root string) map[string][]string {
	b, err := os.ReadFile(filepath.Join(root, "manifests", "dashboards", "ecloud.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("manifests/dashboards/ecloud.json: %v", err)
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

// rdtQuery says whether q reads RDT monitoring, which only hosts with resctrl have.
func rdtQuery(q string) bool {
	return strings.Contains(q, "container_llc_occupancy_bytes") || strings.Contains(q, "container_memory_bandwidth")
}

// checkPrometheus: the cluster's Prometheus scrapes every ecloud component (netd and node-agent
// on every node), has loaded manifests/prometheus' rules and evaluates them without error, and
// every query of the dashboard returns series.
func checkPrometheus(t *testing.T, c *cluster, nodeCount int) {
	p := newPromClient(t, c)
	t.Run("every component scraped and up", func(t *testing.T) {
		poll(t, 2*time.Minute, "every ecloud job up on its targets", func(context.Context) (bool, error) {
			series, err := p.query(`up == 1`)
			if err != nil {
				return false, err
			}
			up := map[string]int{}
			for _, s := range series {
				up[s.Metric["job"]]++
			}
			for job, perNode := range ecloudJobs {
				want := 1
				if perNode {
					want = nodeCount
				}
				if up[job] < want {
					return false, fmt.Errorf("job %s: %d target(s) up, want %d (up: %v)", job, up[job], want, up)
				}
			}
			return true, nil
		})
	})
	t.Run("alerting rules loaded and evaluated", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(c.root, "manifests", "prometheus", "ecloud-alerts.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, g := range file.Groups {
			for _, r := range g.Rules {
				want[r.Alert] = true
			}
		}
		poll(t, time.Minute, "every alerting rule evaluated healthy", func(context.Context) (bool, error) {
			var d struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			}
			if err := p.get("/api/v1/rules", url.Values{"type": {"alert"}}, &d); err != nil {
				return false, err
			}
			seen := map[string]bool{}
			for _, g := range d.Groups {
				for _, r := range g.Rules {
					if r.Health != "ok" {
						return false, fmt.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
					}
					seen[r.Name] = true
				}
			}
			for a := range want {
				if !seen[a] {
					return false, fmt.Errorf("rule %s not loaded (%d loaded)", a, len(seen))
				}
			}
			return true, nil
		})
	})
	t.Run("every dashboard query returns data", func(t *testing.T) {
		rdtSeries, err := p.query(`node_agent_rdt_available == 1`)
		if err != nil {
			t.Fatal(err)
		}
		for title, queries := range dashboardQueries(t, c.root) {
			t.Run(title, func(t *testing.T) {
				for _, q := range queries {
					if rdtQuery(q) && len(rdtSeries) == 0 {
						// The panel's other query (node_agent_rdt_available) shows why it is empty.
						t.Logf("%s not asked: no node has RDT (node_agent_rdt_available is 0 everywhere)", q)
						continue
					}
					poll(t, 3*time.Minute, q, func(context.Context) (bool, error) {
						series, err := p.query(q)
						if err != nil {
							return false, err
						}
						if len(series) == 0 {
							return false, fmt.Errorf("no series")
						}
						return true, nil
					})
				}
			})
		}
	})
}
