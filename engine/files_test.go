package engine

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"testing"
)

func TestTarAndDeployed(t *testing.T) {
	files := []File{{Path: "mosquitto.conf", Mode: 0o644, UID: 1883, GID: 1883, Data: []byte("listener 1883\n")}, {Path: "certs/server.key", Mode: 0o600, Data: []byte("key")}}
	data, err := Tar("config", File{Mode: 0o750, UID: 1883, GID: 1884}, files)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
		if h.Name == "config/certs/" && (h.Mode != 0o750 || h.Uid != 1883 || h.Gid != 1884) {
			t.Errorf("folder %s: mode %o owner %d:%d", h.Name, h.Mode, h.Uid, h.Gid)
		}
	}
	if want := []string{"config/", "config/mosquitto.conf", "config/certs/", "config/certs/server.key"}; !slices.Equal(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	if _, err := Tar("config", File{}, []File{{Path: "../etc/passwd"}}); err == nil {
		t.Error("a path outside the folder was written")
	}
	listed := append(files, File{Path: "old"}, File{Path: ManifestName, Data: []byte("mosquitto.conf\ncerts/server.key\n")})
	var kept []string
	for _, f := range Deployed(listed) {
		kept = append(kept, f.Path)
	}
	if !slices.Equal(kept, []string{"mosquitto.conf", "certs/server.key"}) {
		t.Errorf("deployed %q", kept)
	}
	if len(Deployed(files)) != 2 {
		t.Error("without a manifest, every file is deployed")
	}
}
