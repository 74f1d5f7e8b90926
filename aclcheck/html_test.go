package aclcheck

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// chromium returns Debian's Chromium, or skips (fails under CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install chromium): the matrix page cannot be checked in a browser")
		}
		t.Skip("chromium is not installed")
	}
	return p
}

func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --no-sandbox: the tests may run as root, where Chromium's sandbox
	// refuses to start. The page is our own file.
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

var cellRE = regexp.MustCompile(`<td class="([a-z]+)" data-as="([^"]+)" data-root="([^"]+)" data-access="([^"]+)"[^>]*>([^<]*)</td>`)

// TestMatrixPageInChromium opens the page in headless Chromium: the DOM it
// builds holds every cell of the matrix with its label, and the screenshot
// shows the cells coloured (the style sheet is inside the page).
func TestMatrixPageInChromium(t *testing.T) {
	bin := chromium(t)
	h := testHome(t)
	m := h.Matrix()
	dir := t.TempDir()
	page := filepath.Join(dir, "matrix.html")
	var b bytes.Buffer
	if err := m.WriteHTML(&b, "MQTT access"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	dom := headless(t, bin, "--dump-dom", "file://"+page)
	want := map[[2]string]string{}
	for _, r := range m.Rows {
		for i, c := range r.Cells {
			want[[2]string{r.As, m.Roots[i]}] = c.Label()
		}
	}
	got := map[[2]string]string{}
	for _, sm := range cellRE.FindAllStringSubmatch(string(dom), -1) {
		if sm[4] != sm[5] {
			t.Errorf("cell %s %s shows %q but says %q", sm[2], sm[3], sm[5], sm[4])
		}
		got[[2]string{sm[2], sm[3]}] = sm[5]
	}
	if len(got) != len(want) || len(want) != len(m.Rows)*len(m.Roots) {
		t.Errorf("the DOM holds %d cells, the matrix %d (%d rows x %d roots)", len(got), len(want), len(m.Rows), len(m.Roots))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("cell %s under %s: %q in the DOM, want %q", k[0], k[1], got[k], w)
		}
	}
	for _, c := range []struct{ as, root, label string }{
		{"admin", "home/lamp", "readwrite"},
		{"sensor", "home/sensor", "write"},
		{"sensor", "home/lamp", "deny"},
		{"viewer", "home", "read (some)"},
		{"anonymous", "public", "read (some)"},
	} {
		if got[[2]string{c.as, c.root}] != c.label {
			t.Errorf("cell %s under %s: %q, want %q", c.as, c.root, got[[2]string{c.as, c.root}], c.label)
		}
	}

	shot := filepath.Join(dir, "matrix.png")
	headless(t, bin, "--window-size=1400,800", "--screenshot="+shot, "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 800 {
		t.Errorf("screenshot %v, want 1400x800", b)
	}
	// The readwrite green (#b7e1b0) and the deny grey (#eee) are painted.
	colours := map[[3]uint32]int{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 2 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}]++
		}
	}
	for name, c := range map[string][3]uint32{"readwrite green": {0xb7, 0xe1, 0xb0}, "deny grey": {0xee, 0xee, 0xee}, "read blue": {0xcf, 0xe3, 0xf7}} {
		if colours[c] < 500 {
			t.Errorf("the screenshot shows little %s (%d pixels): the page's style did not apply", name, colours[c])
		}
	}
	if dst := os.Getenv("MQTTGEN_KEEP_SCREENSHOT"); dst != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(dst, data, 0o644)
	}
}
