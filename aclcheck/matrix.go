package aclcheck

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/schema"
)

// Matrix is what every account may do under each topic root: the rows are
// the accounts (and anonymous clients when a listener admits them), the
// columns the roots the home's rules name (<devices_topic>/<device> for
// devices, the first level otherwise, and $SYS).
type Matrix struct {
	Roots []string `json:"roots"`
	Rows  []Row    `json:"rows"`
}

// Row is one account's cells, in the order of Roots.
type Row struct {
	As    string `json:"as"`
	Kind  string `json:"kind"`
	Cells []Cell `json:"cells"`
}

// Cell says how much of a root an account may read and write: "all",
// "some" or "none" of the topics the home's rules name under it.
type Cell struct {
	Read   string   `json:"read"`
	Write  string   `json:"write"`
	Probes []string `json:"probes"`
}

// Short is the cell in two letters: R or W for all, r or w for some, - for
// none.
func (c Cell) Short() string {
	letter := func(v string, all, some byte) byte {
		switch v {
		case "all":
			return all
		case "some":
			return some
		}
		return '-'
	}
	return string([]byte{letter(c.Read, 'R', 'r'), letter(c.Write, 'W', 'w')})
}

// Label is the cell in words, for the HTML page.
func (c Cell) Label() string {
	switch {
	case c.Read == "none" && c.Write == "none":
		return "deny"
	case c.Read == "all" && c.Write == "all":
		return "readwrite"
	case c.Write == "none":
		return part("read", c.Read)
	case c.Read == "none":
		return part("write", c.Write)
	}
	return part("read", c.Read) + " " + part("write", c.Write)
}

func part(word, v string) string {
	if v == "some" {
		return word + " (some)"
	}
	return word
}

// Matrix computes the matrix. Each cell decides the topics the home's
// rules name under the root (wildcards filled in with "x", %u and %c with
// each account's name).
func (h *Home) Matrix() Matrix {
	var whos []Who
	for _, a := range h.Config.Accounts() {
		whos = append(whos, Who{Name: a.Name, ClientID: a.Name})
	}
	if h.anonymousAllowed() {
		whos = append(whos, Who{Name: schema.AnonymousName})
	}
	f := h.ACL.File
	topics := map[string]bool{SysProbe: true}
	addFilter := func(filter string) {
		t := concrete(filter)
		topics[t] = true
	}
	for _, r := range f.Anonymous {
		addFilter(r.Topic)
	}
	for _, s := range f.Users {
		for _, r := range s.Rules {
			addFilter(r.Topic)
		}
	}
	for _, r := range f.Patterns {
		for _, w := range whos {
			if w.Anonymous() && strings.Contains(r.Topic, "%u") {
				continue
			}
			addFilter(acl.Expand(r.Topic, w.Client()))
		}
	}
	byRoot := map[string][]string{}
	for t := range topics {
		if t == "x" || strings.HasPrefix(t, "x/") {
			continue // a filter starting with a wildcard names no root
		}
		root := h.root(t)
		byRoot[root] = append(byRoot[root], t)
	}
	m := Matrix{}
	for root, list := range byRoot {
		slices.Sort(list)
		byRoot[root] = slices.Compact(list)
		m.Roots = append(m.Roots, root)
	}
	slices.SortFunc(m.Roots, func(a, b string) int {
		// $SYS last, then by name.
		if (a == "$SYS") != (b == "$SYS") {
			if a == "$SYS" {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, w := range whos {
		row := Row{As: w.Name, Kind: h.Kind(w.Name)}
		for _, root := range m.Roots {
			var reads, writes int
			probes := byRoot[root]
			for _, t := range probes {
				if f.Check(w.Client(), t, acl.Read) {
					reads++
				}
				if f.Check(w.Client(), t, acl.Write) {
					writes++
				}
			}
			row.Cells = append(row.Cells, Cell{Read: share(reads, len(probes)), Write: share(writes, len(probes)), Probes: probes})
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

func share(n, of int) string {
	switch {
	case n == 0:
		return "none"
	case n == of:
		return "all"
	}
	return "some"
}

// concrete turns a filter into a topic it matches: each wildcard becomes
// the level "x".
func concrete(filter string) string {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" || l == "" {
			levels[i] = "x"
		}
	}
	return strings.Join(levels, "/")
}

// root is the column of a topic.
func (h *Home) root(topic string) string {
	if strings.HasPrefix(topic, "$") {
		first, _, _ := strings.Cut(topic, "/")
		return first
	}
	levels := strings.Split(topic, "/")
	if levels[0] == h.Config.DevicesTopic && len(levels) > 2 && hasKey(h.Config.Devices, levels[1]) {
		return levels[0] + "/" + levels[1]
	}
	return levels[0]
}

// WriteText writes the matrix as a table with a legend.
func (m Matrix) WriteText(w io.Writer) error {
	width := len("account")
	for _, r := range m.Rows {
		width = max(width, len(r.As))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", width, "account")
	widths := make([]int, len(m.Roots))
	for i, root := range m.Roots {
		widths[i] = max(len(root), 2)
		fmt.Fprintf(&b, "  %-*s", widths[i], root)
	}
	b.WriteString("\n")
	for _, r := range m.Rows {
		fmt.Fprintf(&b, "%-*s", width, r.As)
		for i, c := range r.Cells {
			fmt.Fprintf(&b, "  %-*s", widths[i], c.Short())
		}
		b.WriteString("\n")
	}
	b.WriteString("R/W: reads/writes every topic the rules name under the root; r/w: some of them; -: none\n")
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

// WriteHTML writes the matrix as one self-contained HTML page: no script,
// no external style sheet or font. Each cell carries data-as, data-root
// and data-access (the label) for tools, and a title listing the topics it
// decided.
func (m Matrix) WriteHTML(w io.Writer, title string) error {
	return pageTemplate.Execute(w, struct {
		Title string
		M     Matrix
	}{title, m})
}

var pageTemplate = template.Must(template.New("matrix").Funcs(template.FuncMap{
	"class": func(c Cell) string {
		switch {
		case c.Read == "none" && c.Write == "none":
			return "deny"
		case c.Read == "all" && c.Write == "all":
			return "rw"
		case c.Write == "none":
			return "r"
		case c.Read == "none":
			return "w"
		}
		return "mixed"
	},
	"root": func(m Matrix, i int) string { return m.Roots[i] },
	"join": func(s []string) string { return strings.Join(s, "\n") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: .4em .7em; text-align: center; white-space: nowrap; }
th.as { text-align: left; }
td.rw { background: #b7e1b0; }
td.r { background: #cfe3f7; }
td.w { background: #f7e3b5; }
td.mixed { background: #e6d3f0; }
td.deny { background: #eee; color: #888; }
.kind { color: #888; font-size: .8em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<table id="matrix">
<thead><tr><th class="as">account</th>{{range .M.Roots}}<th scope="col">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- $m := .M}}
{{range .M.Rows}}{{$as := .As}}<tr><th class="as" scope="row">{{.As}}{{if ne .Kind .As}} <span class="kind">{{.Kind}}</span>{{end}}</th>{{range $i, $c := .Cells}}<td class="{{class $c}}" data-as="{{$as}}" data-root="{{root $m $i}}" data-access="{{$c.Label}}" title="{{join $c.Probes}}">{{$c.Label}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
<p>Each cell decides, with the broker's own semantics, the topics the home's rules name under the root (wildcards as "x"); "(some)": only some of them. Hover a cell for its topics. <code>mqttgen acl explain ACCOUNT TOPIC</code> names the rule.</p>
</body>
</html>
`))
