package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"github.com/mqttgen/mqttgen/backup/backuptest"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var created = time.Date(2026, 11, 22, 0, 54, 1, 0, time.UTC)

func sample() (*Manifest, []File) {
	m := &Manifest{Project: "home-mqtt", Created: created, Reason: "test", Broker: Broker{Container: "home-mqtt-broker-1", DataDir: "/mosquitto/data"}}
	files := []File{
		{Path: "config/mosquitto.conf", Mode: 0o644, UID: 1883, GID: 1883, Data: []byte("listener 1883\npersistence true\n")},
		{Path: "config/passwd", Mode: 0o600, UID: 1883, GID: 1883, Data: []byte("admin:$7$1000$salt$hash\n")},
		{Path: "data/mosquitto.db", Mode: 0o600, UID: 1883, GID: 1883, Data: bytes.Repeat([]byte("retained and queued messages "), 200)},
		{Path: "state/certs/ca.crt", Mode: 0o644, Data: []byte("-----BEGIN CERTIFICATE-----\n")},
	}
	return m, files
}

func archiveBytes(t *testing.T) []byte {
	t.Helper()
	m, files := sample()
	var b bytes.Buffer
	if err := write(&b, m, files); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := archiveBytes(t)
	a, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	_, files := sample()
	if len(a.Files) != len(files) {
		t.Fatalf("%d files, want %d", len(a.Files), len(files))
	}
	for i, f := range files {
		g := a.Files[i]
		if g.Path != f.Path || !bytes.Equal(g.Data, f.Data) || g.Mode != f.Mode || g.UID != f.UID {
			t.Errorf("file %d: %s %o %d, want %s %o %d", i, g.Path, g.Mode, g.UID, f.Path, f.Mode, f.UID)
		}
		if e := a.Manifest.Entries[i]; e.SHA256 != digest(f.Data) || e.Size != int64(len(f.Data)) {
			t.Errorf("manifest entry %d: %+v", i, e)
		}
	}
	if got := a.Under(DataPrefix); len(got) != 1 || got[0].Path != "mosquitto.db" {
		t.Errorf("Under(data/): %+v", got)
	}
}

// TestTruncated: an archive cut anywhere is refused.
func TestTruncated(t *testing.T) {
	data := archiveBytes(t)
	for n := 0; n < len(data); n += max(1, len(data)/97) {
		_, err := Read(bytes.NewReader(data[:n]))
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("cut at %d of %d bytes: %v, want a CorruptError", n, len(data), err)
		}
	}
	_, err := Read(bytes.NewReader(data[:len(data)-1]))
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("cut by one byte: %v", err)
	}
}

// TestAltered: any flipped byte of the file is refused (by the gzip CRC,
// deflate, or the manifest's digests).
func TestAltered(t *testing.T) {
	data := archiveBytes(t)
	// The gzip header's time and name are covered by no checksum and read
	// by nothing: start after them.
	header := 10 + len(Name("home-mqtt", created)) + 1
	for i := header; i < len(data); i += max(1, len(data)/211) {
		bad := slices.Clone(data)
		bad[i] ^= 0x20
		if _, err := Read(bytes.NewReader(bad)); err == nil && !bytes.Equal(gunzip(t, bad), gunzip(t, data)) {
			// (A flip in the unused bits after deflate's last block
			// changes nothing, and is accepted.)
			t.Fatalf("byte %d of %d flipped: accepted", i, len(data))
		}
	}
}

// repack rewrites the archive entry by entry (backuptest.Repack).
func repack(t *testing.T, data []byte, edit func(name string, body []byte) ([]byte, bool)) []byte {
	return backuptest.Repack(t, data, edit)
}

func TestManifestChecks(t *testing.T) {
	data := archiveBytes(t)
	cases := []struct {
		name string
		edit func(string, []byte) ([]byte, bool)
		want string
	}{
		{"an entry's content", func(n string, b []byte) ([]byte, bool) {
			if n == "data/mosquitto.db" {
				b = bytes.Replace(b, []byte("queued"), []byte("QUEUED"), 1)
			}
			return b, true
		}, "data/mosquitto.db has SHA-256"},
		{"an entry's size", func(n string, b []byte) ([]byte, bool) {
			if n == "config/passwd" {
				b = append(b, "eve:$7$1$x$y\n"...)
			}
			return b, true
		}, "config/passwd has"},
		{"a missing entry", func(n string, b []byte) ([]byte, bool) { return b, n != "data/mosquitto.db" }, "1 entries of the manifest are missing (data/mosquitto.db)"},
		{"an extra entry", func(n string, b []byte) ([]byte, bool) {
			if n == "state/certs/ca.crt" {
				return b, true
			}
			return b, true
		}, ""},
		{"the manifest's version", func(n string, b []byte) ([]byte, bool) {
			if n == ManifestName {
				b = bytes.Replace(b, []byte(`"version": 1`), []byte(`"version": 2`), 1)
			}
			return b, true
		}, "format version 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(repack(t, data, c.edit)))
			if c.want == "" {
				if err != nil {
					t.Fatalf("unchanged repack refused: %v", err)
				}
				return
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want a CorruptError saying %q", err, c.want)
			}
		})
	}
	// An entry the manifest does not name.
	extra := repack(t, data, func(n string, b []byte) ([]byte, bool) { return b, true })
	zr, _ := gzip.NewReader(bytes.NewReader(extra))
	raw, _ := io.ReadAll(zr)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "data/evil.db", Size: 1, Mode: 0o600})
	tw.Write([]byte("x"))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	if _, err := Read(&gz); err == nil || !strings.Contains(err.Error(), "data/evil.db is not in the manifest") {
		t.Errorf("an extra entry: %v", err)
	}
}

func TestNames(t *testing.T) {
	n := Name("home-mqtt", created)
	if n != "home-mqtt-20261122T005401Z.tar.gz" {
		t.Fatalf("Name: %s", n)
	}
	p, tm, ok := ParseName("/backups/" + n)
	if !ok || p != "home-mqtt" || !tm.Equal(created) {
		t.Fatalf("ParseName: %s %s %v", p, tm, ok)
	}
	for _, bad := range []string{"home-mqtt.tar.gz", "home-mqtt-2026.tar.gz", "home-mqtt-20261122T005401Z.tar", "20261122T005401Z.tar.gz"} {
		if _, _, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%s) accepted", bad)
		}
	}
}

// TestPrune keeps exactly keep archives of the project, the newest, and
// never touches another project's (even one whose name extends it) or
// other files.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ {
		touch(Name("home", created.Add(time.Duration(i)*time.Hour)))
		touch(Name("home-mqtt", created.Add(time.Duration(i)*time.Hour)))
	}
	touch("home-notes.txt")
	touch(".home-20261122T055401Z.tar.gz.tmp123")
	removed, err := Prune(dir, "home", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 4 {
		t.Errorf("removed %d, want 4: %v", len(removed), removed)
	}
	list, _ := List(dir, "home")
	if len(list) != 2 || !list[0].Time.Equal(created.Add(5*time.Hour)) || !list[1].Time.Equal(created.Add(4*time.Hour)) {
		t.Errorf("kept %+v, want the two newest", list)
	}
	if other, _ := List(dir, "home-mqtt"); len(other) != 6 {
		t.Errorf("another project's archives: %d left, want 6", len(other))
	}
	for _, f := range []string{"home-notes.txt", ".home-20261122T055401Z.tar.gz.tmp123"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s removed", f)
		}
	}
	// A protected archive stays even when it is old.
	old := filepath.Join(dir, Name("home-mqtt", created))
	removed, _ = Prune(dir, "home-mqtt", 1, old)
	if len(removed) != 4 || slices.Contains(removed, old) {
		t.Errorf("with a protected archive: removed %v", removed)
	}
	if _, err := Prune(dir, "home", 0); err == nil {
		t.Error("keep 0 accepted")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	m, files := sample()
	p, size, err := writeFile(dir, m, files)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != size {
		t.Fatalf("archive %s: %v %v size %d want %d", p, err, st.Mode(), st.Size(), size)
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Errorf("backup folder mode %v, want 0700", dst.Mode().Perm())
	}
	if _, _, err := writeFile(dir, m, files); !errors.Is(err, os.ErrExist) {
		t.Errorf("a second archive of the same second: %v, want ErrExist", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in the folder, want 1 (no temporary file left)", len(ents))
	}
	if _, err := Open(p); err != nil {
		t.Errorf("Open: %v", err)
	}
}

func TestSecrets(t *testing.T) {
	m, files := sample()
	secret := []File{
		{Path: "config/certs/server.key", Mode: 0o600, UID: 1883, GID: 1883, Data: []byte("-----BEGIN PRIVATE KEY-----\nKEY\n")},
		{Path: "state/passwords/admin", Mode: 0o600, Data: []byte("correct horse battery staple")},
	}
	if _, _, err := seal(secret, "short", m.Project, m.Created); err == nil {
		t.Fatal("a short passphrase accepted")
	}
	info, blob, err := seal(secret, "a passphrase long enough", m.Project, m.Created)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("correct horse")) || bytes.Contains(blob, []byte("PRIVATE KEY")) {
		t.Fatal("secrets.enc holds plaintext")
	}
	m.Secrets = info
	var b bytes.Buffer
	if err := write(&b, m, append(files, File{Path: SecretsName, Mode: 0o600, Data: blob})); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("correct horse")) {
		t.Fatal("the archive holds a plaintext password")
	}
	a, err := Read(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Secrets("the wrong passphrase!"); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	got, err := a.Secrets("a passphrase long enough")
	if err != nil || len(got) != 2 || string(got[1].Data) != "correct horse battery staple" || got[0].UID != 1883 {
		t.Fatalf("secrets: %v %+v", err, got)
	}
	// The secrets of one archive do not open in another's manifest.
	a.Manifest.Project = "other"
	if _, err := a.Secrets("a passphrase long enough"); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("secrets moved to another archive: %v", err)
	}
	// Inside secrets.enc too, only what a backup keeps there.
	for _, p := range []string{"data/mosquitto.db", "state/passwords/.hidden", "state/passwords/a/b", "state/passwd.hashes", "state/elsewhere"} {
		m, files := sample()
		info, blob, err := seal([]File{{Path: p, Mode: 0o600, Data: []byte("x")}}, "a passphrase long enough", m.Project, m.Created)
		if err != nil {
			t.Fatal(err)
		}
		m.Secrets = info
		var b bytes.Buffer
		if err := write(&b, m, append(files, File{Path: SecretsName, Mode: 0o600, Data: blob})); err != nil {
			t.Fatal(err)
		}
		a, err := Read(&b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Secrets("a passphrase long enough"); err == nil || !strings.Contains(err.Error(), "is not a file a backup keeps there") {
			t.Errorf("secrets.enc holding %s: %v", p, err)
		}
	}
}

func TestRedactAndComplete(t *testing.T) {
	conf := []byte("listener 1883\nconnection cloud\naddress cloud.example.com:8883\nremote_username home\nremote_password hunter2-long\n")
	red, what := redactConf(conf)
	if bytes.Contains(red, []byte("hunter2")) || len(what) != 1 || what[0] != "remote_password (bridge cloud)" {
		t.Fatalf("redact: %q %v", red, what)
	}
	if r2, w2 := redactConf([]byte("listener 1883\n")); w2 != nil || string(r2) != "listener 1883\n" {
		t.Fatalf("a conf without secrets changed: %q", r2)
	}
	key := []byte("-----BEGIN PRIVATE KEY-----\nKEY\n")
	a := &Archive{
		Manifest: Manifest{Omitted: []Omitted{{Path: "config/certs/server.key", Reason: "a private key", SHA256: digest(key), Mode: "0600", UID: 1883, GID: 1883}}},
		Files: []File{
			{Path: "config/mosquitto.conf", Mode: 0o644, UID: 1883, GID: 1883, Data: red, Redacted: what},
			{Path: "config/acl", Mode: 0o600, UID: 1883, GID: 1883, Data: []byte("user admin\n")},
		},
	}
	if _, _, err := a.ConfigFiles(nil); !errors.As(err, new(*IncompleteError)) {
		t.Fatalf("no source: %v", err)
	}
	other := []byte("-----BEGIN PRIVATE KEY-----\nOTHER\n")
	_, _, err := a.ConfigFiles(nil, Source{Name: "home.cue", Files: []File{{Path: "certs/server.key", Data: other}, {Path: "mosquitto.conf", Data: conf}}})
	if err == nil || !strings.Contains(err.Error(), "certs/server.key") || strings.Contains(err.Error(), "mosquitto.conf") {
		t.Fatalf("another key only: %v", err)
	}
	files, done, err := a.ConfigFiles(nil,
		Source{Name: "the running broker", Files: []File{{Path: "mosquitto.conf", Data: []byte("listener 1884\n")}}},
		Source{Name: "home.cue", Files: []File{{Path: "certs/server.key", Data: key}, {Path: "mosquitto.conf", Data: conf}}})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	if !bytes.Equal(byPath["mosquitto.conf"].Data, conf) || !bytes.Equal(byPath["certs/server.key"].Data, key) || byPath["certs/server.key"].UID != 1883 || byPath["certs/server.key"].Mode != 0o600 {
		t.Fatalf("completed files: %+v", byPath)
	}
	if len(done) != 2 || !strings.Contains(done[0].From, "home.cue") {
		t.Errorf("completed: %+v", done)
	}
	// With decrypted secrets, those come first.
	files, done, err = a.ConfigFiles([]File{{Path: "config/certs/server.key", Data: key}, {Path: "config/mosquitto.conf", Data: conf}})
	if err != nil || len(files) != 3 || done[0].From != "the archive's encrypted secrets" {
		t.Fatalf("from secrets: %v %+v", err, done)
	}
}

func gunzip(t *testing.T, data []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPassphraseFileMode: a passphrase file of one's own that others may
// read or write is refused, as ssh refuses such a private key; the owner's
// own modes, /dev/stdin-like files and the environment are read.
func TestPassphraseFileMode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passphrase")
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o644, false}, {0o640, false}, {0o604, false}, {0o620, false}} {
		if err := os.WriteFile(file, []byte("correct horse battery staple\nsecond line\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, c.mode); err != nil {
			t.Fatal(err)
		}
		pass, err := ReadPassphrase(file)
		switch {
		case c.ok && (err != nil || pass != "correct horse battery staple"):
			t.Errorf("mode %04o: %q, %v", c.mode, pass, err)
		case !c.ok && err == nil:
			t.Errorf("mode %04o: read %q, want a refusal", c.mode, pass)
		case !c.ok && !strings.Contains(err.Error(), fmt.Sprintf("(mode %04o)", c.mode)) || !c.ok && !strings.Contains(err.Error(), "chmod 600 "+file):
			t.Errorf("mode %04o: %v", c.mode, err)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write([]byte("from a pipe, twelve+\n")); w.Close() }()
	if pass, err := ReadPassphrase(fmt.Sprintf("/proc/self/fd/%d", r.Fd())); err != nil || pass != "from a pipe, twelve+" {
		t.Errorf("pipe: %q, %v", pass, err)
	}
	r.Close()
	t.Setenv(PassphraseEnv, "from the environment")
	if pass, err := ReadPassphrase(""); err != nil || pass != "from the environment" {
		t.Errorf("environment: %q, %v", pass, err)
	}
}

// TestRefusedEntries: entries a backup never writes are refused by Read,
// from the manifest, before any entry is read: a 2 GiB entry (such an
// archive took restore to 4.6 GB of memory before its question), entries
// that hold more than an archive may, a password planted in state/ (it
// would be a future device's), a file that is also a folder (the copy into
// the container failed half-way), a private key in clear.
func TestRefusedEntries(t *testing.T) {
	data := archiveBytes(t)
	zeros := make([]byte, 32<<20)
	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"a 2 GiB entry", backuptest.AddEntry(t, data, "data/huge", zeros, 2<<30),
			"entry data/huge has 2.0 GiB, more than the 256.0 MiB an archive entry may hold"},
		{"a large config file", backuptest.AddEntry(t, data, "config/acl.big", zeros[:1<<20], 17<<20),
			"entry config/acl.big has 17.0 MiB, more than the 16.0 MiB an archive entry may hold"},
		{"too much in all", backuptest.AddEntries(t, data, backuptest.Entry{Name: "data/a", Body: zeros, Size: 200 << 20}, backuptest.Entry{Name: "data/b", Body: nil, Size: 200 << 20}, backuptest.Entry{Name: "data/c", Body: nil, Size: 200 << 20}),
			"its entries hold 600.0 MiB, more than the 512.0 MiB an archive may hold"},
		{"a planted password", backuptest.AddEntry(t, data, "state/passwords/porch-sensor", []byte("chosen-by-the-attacker"), 22),
			"entry state/passwords/porch-sensor is not a file a backup writes in clear"},
		{"a planted key", backuptest.AddEntry(t, data, "state/certs/ca.key", []byte("-----BEGIN EC PRIVATE KEY-----\n"), 31),
			"entry state/certs/ca.key is not a file a backup writes in clear"},
		{"a file beside a folder", backuptest.AddEntry(t, backuptest.AddEntry(t, data, "config/certs/ca.crt", []byte("x"), 1), "config/certs", []byte("x"), 1),
			"entry config/certs is a file and the folder of config/certs/ca.crt"},
		{"a private key in clear", backuptest.AddEntry(t, data, "config/certs/server.key", []byte("-----BEGIN PRIVATE KEY-----\n"), 28),
			"entry config/certs/server.key holds a private key in clear"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Read(bytes.NewReader(c.archive))
			runtime.ReadMemStats(&after)
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want a CorruptError saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("not one line: %q", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
				t.Errorf("refusing it allocated %d MiB", n>>20)
			}
		})
	}
	// write never makes what Read refuses.
	m, files := sample()
	files = append(files, File{Path: "state/passwords/admin", Mode: 0o600, Data: []byte("pw")})
	if err := write(io.Discard, m, files); err == nil || !strings.Contains(err.Error(), "state/passwords/admin is not a file a backup writes in clear") {
		t.Errorf("write: %v", err)
	}
}
