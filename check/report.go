package check

import (
	"fmt"
	"html/template"
	"os"
	"strings"
)

// replayCommand is the command line that replays the run's fault schedule.
func (r *Report) replayCommand() string {
	c := r.Config
	return fmt.Sprintf("synod check --nodes %d --duration %v --nemesis %s --workload %s --seed %d",
		c.Nodes, c.Duration, orNone(c.Nemeses), c.Workloads, c.Seed)
}

// reportView is what the HTML template renders.
type reportView struct {
	Line     string
	Verdict  string
	Replay   string
	Dir      string
	DataKept bool
	Elapsed  string
	Cluster  []string
	Results  []resultView
	Faults   []faultView
}

type resultView struct {
	Result
	Vis string // porcupine's HTML, for an iframe's srcdoc
}

type faultView struct {
	Nemesis, Desc, Err string
	Start, End         string
}

// WriteHTML writes the report to path.
func (r *Report) WriteHTML(path string) error {
	v := reportView{Line: r.Line(), Verdict: string(r.Verdict), Replay: r.replayCommand(), Dir: r.Dir,
		DataKept: r.Config.KeepData || r.Verdict != VerdictOK, Elapsed: r.Elapsed.Round(1e6).String(), Cluster: r.Cluster}
	for _, res := range r.Results {
		v.Results = append(v.Results, resultView{Result: res, Vis: string(res.Visualization)})
	}
	for _, f := range r.Faults {
		v.Faults = append(v.Faults, faultView{Nemesis: f.Nemesis, Desc: f.Desc, Err: f.Err,
			Start: fmt.Sprintf("%.2fs", float64(f.Start)/1e9), End: fmt.Sprintf("%.2fs", float64(f.End)/1e9)})
	}
	var b strings.Builder
	if err := reportTemplate.Execute(&b, v); err != nil {
		return fmt.Errorf("check: report: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("check: report: %w", err)
	}
	return nil
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>synod check: {{.Verdict}}</title>
<style>
body { font-family: sans-serif; margin: 2em; }
.ok { color: #155724; } .FAIL { color: #721c24; } .unknown { color: #856404; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
code, pre { background: #f4f4f4; }
iframe { width: 100%; height: 700px; border: 1px solid #ccc; }
</style></head><body>
<h1 class="{{.Verdict}}">{{.Line}}</h1>
<p>Replay the same fault schedule and operation choices: <code>{{.Replay}}</code>
(process timing is not replayed, so a replay reproduces the conditions, not necessarily the exact interleaving).</p>
<p>Run took {{.Elapsed}}. Member data and logs: <code>{{.Dir}}</code>{{if not .DataKept}} (removed; use --keep-data){{end}}.</p>
{{if .Cluster}}<h2 class="FAIL">Cluster anomalies</h2><ul>{{range .Cluster}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Workloads</h2>
<table><tr><th>workload</th><th>verdict</th><th>figures</th><th>anomalies</th></tr>
{{range .Results}}<tr><td>{{.Workload}}</td><td class="{{.Verdict}}">{{.Verdict}}</td><td>{{.Summary}}</td>
<td>{{if .Anomalies}}<ul>{{range .Anomalies}}<li>{{.}}</li>{{end}}</ul>{{else}}none{{end}}
{{if .Notes}}<p>Expected, not anomalies:</p><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}</td></tr>
{{end}}</table>
<h2>Fault timeline</h2>
{{if .Faults}}<table><tr><th>start</th><th>end</th><th>nemesis</th><th>what</th></tr>
{{range .Faults}}<tr><td>{{.Start}}</td><td>{{.End}}</td><td>{{.Nemesis}}</td><td>{{.Desc}}{{if .Err}} <em>{{.Err}}</em>{{end}}</td></tr>
{{end}}</table>{{else}}<p>No faults (--nemesis none).</p>{{end}}
{{range .Results}}{{if .Vis}}<h2>{{.Workload}}: porcupine's view</h2>
<p>Each row is a client (a client that saw an unknown outcome continues as a new row); faults are shown as annotations.
For a non-linearizable key, porcupine shows the longest linearizable prefix and the operation that cannot follow it.</p>
<iframe srcdoc="{{.Vis}}"></iframe>{{end}}{{end}}
</body></html>
`))
