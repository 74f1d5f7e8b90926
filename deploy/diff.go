package deploy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// redactedLines turns a file into the lines a plan may show: password hashes,
// bridge passwords and private keys are replaced by a short digest (so that
// a change still shows), certificates by their subject and expiry.
func redactedLines(p string, data []byte) []string {
	if data == nil {
		return nil
	}
	text := string(data)
	switch {
	case strings.Contains(text, "PRIVATE KEY-----"):
		return []string{fmt.Sprintf("(private key redacted, %s)", digest(data))}
	case strings.Contains(text, "-----BEGIN CERTIFICATE-----"):
		return certLines(data)
	}
	base := path.Base(p)
	if base == generators.ExporterSecret {
		return []string{fmt.Sprintf("(password redacted, %s)", digest(data))}
	}
	if strings.HasSuffix(base, ".conf") {
		text = string(redactConf(p, data))
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		switch {
		case base == "passwd":
			if user, hash, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
				lines[i] = fmt.Sprintf("%s:(hash redacted, %s)", user, digest([]byte(hash)))
			}
		case base == generators.ProbeLoginName:
			if pw, ok := strings.CutPrefix(l, "-P "); ok {
				lines[i] = fmt.Sprintf("-P (redacted, %s)", digest([]byte(pw)))
			}
		case strings.HasSuffix(base, ".env"):
			if k, v, ok := strings.Cut(l, "="); ok {
				lines[i] = fmt.Sprintf("%s=(redacted, %s)", k, digest([]byte(v)))
			}
		}
	}
	return lines
}

// redactConf replaces the value of each secret option of a mosquitto.conf
// by a digest of it.
func redactConf(p string, data []byte) []byte {
	out, _ := conf.Redact(p, data, func(d conf.Directive) string {
		return fmt.Sprintf("(redacted, %s)", digest([]byte(d.Value)))
	})
	return out
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256 " + hex.EncodeToString(sum[:4])
}

// certLines describes each certificate of a PEM file on one line.
func certLines(data []byte) []string {
	var out []string
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			out = append(out, fmt.Sprintf("(%s block that does not parse: %v, %s)", b.Type, err, digest(b.Bytes)))
			continue
		}
		out = append(out, fmt.Sprintf("certificate %q issued by %q, valid until %s, %s",
			c.Subject.String(), c.Issuer.String(), c.NotAfter.UTC().Format("2006-01-02"), digest(b.Bytes)))
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("(no PEM block, %d bytes, %s)", len(data), digest(data)))
	}
	return out
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// unifiedDiff is a unified diff of two versions of a file with three lines
// of context, on redacted lines; "" when they show the same.
func unifiedDiff(p string, old, want []byte) string {
	a, b := redactedLines(p, old), redactedLines(p, want)
	if len(a)*len(b) > 4_000_000 {
		return fmt.Sprintf("(too large to show: %d lines -> %d lines)\n", len(a), len(b))
	}
	edits := lcsDiff(a, b)
	if len(edits) == 0 {
		return ""
	}
	const context = 3
	var out bytes.Buffer
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", label(p, old, "deployed"), label(p, want, "home.cue"))
	// Group edits into hunks.
	for i := 0; i < len(edits); {
		if edits[i].op == ' ' {
			i++
			continue
		}
		start := max(0, i-context)
		end := i
		for j := i; j < len(edits); j++ {
			if edits[j].op != ' ' {
				end = j
			} else if j-end > 2*context {
				break
			}
		}
		stop := min(len(edits), end+context+1)
		var aStart, bStart, aLen, bLen int
		aStart, bStart = edits[start].a, edits[start].b
		for _, e := range edits[start:stop] {
			if e.op != '+' {
				aLen++
			}
			if e.op != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, e := range edits[start:stop] {
			fmt.Fprintf(&out, "%c%s\n", e.op, e.text)
		}
		i = stop
	}
	return out.String()
}

func label(p string, data []byte, side string) string {
	if data == nil {
		return "/dev/null"
	}
	return p + " (" + side + ")"
}

func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

type edit struct {
	op   byte // ' ', '-', '+'
	text string
	a, b int // line index in a and b where this edit stands
}

// lcsDiff is a line diff by longest common subsequence; the files diffed
// here are small.
func lcsDiff(a, b []string) []edit {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []edit
	changed := false
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, edit{' ', a[i], i, j})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] > lcs[i+1][j]):
			out = append(out, edit{'+', b[j], i, j})
			changed = true
			j++
		default:
			out = append(out, edit{'-', a[i], i, j})
			changed = true
			i++
		}
	}
	if !changed {
		return nil
	}
	return out
}

// redactEnv hides the values of variables that hold secrets.
// A value redacted already (a container's io.mqttgen.spec label) stays as
// it is, so that it compares equal with the same value redacted now.
func redactEnv(env []string) []string {
	if env == nil {
		return nil
	}
	out := make([]string, len(env))
	for i, e := range env {
		k, v, _ := strings.Cut(e, "=")
		u := strings.ToUpper(k)
		if (strings.Contains(u, "PASS") || strings.Contains(u, "SECRET") || strings.Contains(u, "TOKEN") || strings.Contains(u, "KEY")) && !isRedacted(v) {
			e = fmt.Sprintf("%s=(redacted, %s)", k, digest([]byte(v)))
		}
		out[i] = e
	}
	return out
}

// isRedacted says v is what redactEnv made of a value.
func isRedacted(v string) bool {
	d, ok := strings.CutPrefix(v, "(redacted, sha256 ")
	return ok && len(d) == 9 && d[8] == ')' && strings.Trim(d[:8], "0123456789abcdef") == ""
}
