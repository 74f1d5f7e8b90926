// Package deploytest builds the images tests need on an engine that reaches
// no registry, and finds a Docker engine for tests.
package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
)

// MosquittoUID is the uid and gid of user mosquitto in eclipse-mosquitto.
const MosquittoUID = 1883

// hostPrograms are put into the image, at the path of the image from the
// path on this host: the broker, the client its healthcheck runs, and a
// shell for CMD-SHELL healthchecks.
var hostPrograms = [][2]string{
	{"/usr/sbin/mosquitto", "/usr/sbin/mosquitto"},
	{"/usr/bin/mosquitto_sub", "/usr/bin/mosquitto_sub"},
	{"/bin/sh", "/usr/bin/dash"},
}

// MosquittoImage builds an image that behaves like eclipse-mosquitto from
// this host's Mosquitto (Debian's /usr/sbin/mosquitto), FROM scratch: the
// binaries and the shared libraries ldd names with the dynamic loader,
// /etc/passwd and /etc/group with user mosquitto 1883:1883, /mosquitto/config,
// data and log owned by it, the volumes and the command of the real image.
func MosquittoImage(ctx context.Context, cli *client.Client, tag string) error {
	var files []engine.ImageFile
	seen := map[string]bool{}
	add := func(dst, src string, mode fs.FileMode) error {
		if seen[dst] {
			return nil
		}
		seen[dst] = true
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		files = append(files, engine.ImageFile{Path: dst, Mode: mode, Data: data})
		return nil
	}
	for _, prog := range hostPrograms {
		dst, src := prog[0], prog[1]
		if err := add(dst, src, 0o755); err != nil {
			return fmt.Errorf("the test image needs Debian's mosquitto, mosquitto-clients and dash on this host: %w", err)
		}
		libs, err := sharedLibraries(src)
		if err != nil {
			return err
		}
		for _, lib := range libs {
			if err := add(lib, lib, 0o755); err != nil {
				return err
			}
		}
	}
	dir := func(p string, uid int) engine.ImageFile {
		return engine.ImageFile{Path: p, Mode: fs.ModeDir | 0o755, UID: uid, GID: uid}
	}
	files = append(files,
		engine.ImageFile{Path: "/etc/passwd", Mode: 0o644, Data: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				fmt.Sprintf("mosquitto:x:%d:%d:mosquitto:/var/empty:/sbin/nologin\n", MosquittoUID, MosquittoUID))},
		engine.ImageFile{Path: "/etc/group", Mode: 0o644, Data: []byte(
			"root:x:0:\n" + fmt.Sprintf("mosquitto:x:%d:\n", MosquittoUID))},
		dir("/mosquitto", MosquittoUID),
		dir("/mosquitto/config", MosquittoUID),
		dir("/mosquitto/data", MosquittoUID),
		dir("/mosquitto/log", MosquittoUID),
		dir("/tmp", 0),
	)
	return engine.BuildScratchImage(ctx, cli, tag, files, engine.ImageConfig{
		Env:     []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Expose:  []string{"1883"},
		Volumes: []string{"/mosquitto/data", "/mosquitto/log"},
		Cmd:     []string{"/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"},
		Labels:  map[string]string{"io.mqttgen.test-image": "mosquitto"},
	})
}

var lddLine = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x`)

// sharedLibraries are the libraries ldd lists for a program, the dynamic
// loader included, at the paths the loader looks them up.
func sharedLibraries(program string) ([]string, error) {
	out, err := exec.Command("ldd", program).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", program, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := lddLine.FindStringSubmatch(sc.Text()); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs, nil
}

// Engine connects to the Docker engine for a test. Without one the test is
// skipped, except under CI=true, where it fails: CI must run these tests.
func Engine(t testing.TB) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cli, err := engine.Connect(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Docker engine: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	return cli
}

// RemoveImage removes a test image, ignoring one already gone.
func RemoveImage(ctx context.Context, cli *client.Client, tag string) error {
	_, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// Tag returns a tag unique to this test run, so that tests never replace an
// image of the same name the user has (e.g. a real eclipse-mosquitto).
func Tag(name string) string {
	return fmt.Sprintf("mqttgen-test/%s:%d", strings.ToLower(name), os.Getpid())
}
