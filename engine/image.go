package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// ImageFile is one entry of an image built from scratch.
type ImageFile struct {
	// Path is absolute in the image.
	Path     string
	Mode     fs.FileMode // fs.ModeDir for a folder, fs.ModeSymlink for a link
	UID, GID int
	Data     []byte
	// Link is the target of a symlink.
	Link string
}

// ImageConfig is what the Dockerfile says besides the files.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	Expose     []string // "1883/tcp"
	Volumes    []string
	Labels     map[string]string
}

// BuildScratchImage builds an image FROM scratch holding files and tags it.
// The engine imports a tar made here (POST /images/create?fromSrc=-, as
// `docker import` does) with the owners and modes of its headers, and
// applies cfg as Dockerfile instructions (ENV, EXPOSE, VOLUME, LABEL,
// ENTRYPOINT, CMD): one layer, no registry, no docker CLI. It is what
// `FROM scratch` + `ADD rootfs.tar /` + those instructions build, several
// times faster than the classic builder, which commits a container for
// each instruction (measured here: 0.3 s against 7.7 s for the 36 MB
// mqttgen binary).
func BuildScratchImage(ctx context.Context, cli *client.Client, tag string, files []ImageFile, cfg ImageConfig) error {
	rootfs, err := imageTar(files)
	if err != nil {
		return err
	}
	jsonList := func(v []string) string { b, _ := json.Marshal(v); return string(b) }
	var changes []string
	for _, e := range cfg.Env {
		k, v, _ := strings.Cut(e, "=")
		changes = append(changes, fmt.Sprintf("ENV %s=%s", k, strconv.Quote(v)))
	}
	if len(cfg.Expose) > 0 {
		changes = append(changes, "EXPOSE "+strings.Join(cfg.Expose, " "))
	}
	if len(cfg.Volumes) > 0 {
		changes = append(changes, "VOLUME "+jsonList(cfg.Volumes))
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Labels)) {
		changes = append(changes, fmt.Sprintf("LABEL %s=%s", strconv.Quote(k), strconv.Quote(cfg.Labels[k])))
	}
	if len(cfg.Entrypoint) > 0 {
		changes = append(changes, "ENTRYPOINT "+jsonList(cfg.Entrypoint))
	}
	if len(cfg.Cmd) > 0 {
		changes = append(changes, "CMD "+jsonList(cfg.Cmd))
	}
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, tag,
		client.ImageImportOptions{Changes: changes, Message: "built by mqttgen"})
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	defer res.Close()
	if err := readBuildStream(res); err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	return nil
}

// readBuildStream reads the engine's JSON messages to the end and returns
// the error one of them carries.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	var log strings.Builder
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Status      string `json:"status"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" {
			return fmt.Errorf("%s\n%s", msg.Error, strings.TrimSpace(log.String()))
		}
	}
}

// imageTar writes files as a tar, parents first, each folder once.
func imageTar(files []ImageFile) ([]byte, error) {
	byPath := map[string]ImageFile{}
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean(f.Path), "/")
		byPath[p] = f
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = ImageFile{Mode: fs.ModeDir | 0o755}
			}
		}
	}
	names := slices.Sorted(maps.Keys(byPath))
	slices.SortStableFunc(names, func(a, b string) int { return strings.Count(a, "/") - strings.Count(b, "/") })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		f := byPath[name]
		h := &tar.Header{Name: name, Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0)}
		switch {
		case f.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case f.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
