package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
// The build runs on the engine (POST /build) from a context made here: a
// Dockerfile and rootfs.tar, which ADD unpacks with the owners and modes of
// its headers, so that no registry and no local docker CLI are needed.
func BuildScratchImage(ctx context.Context, cli *client.Client, tag string, files []ImageFile, cfg ImageConfig) error {
	rootfs, err := imageTar(files)
	if err != nil {
		return err
	}
	var df strings.Builder
	df.WriteString("FROM scratch\nADD rootfs.tar /\n")
	jsonList := func(v []string) string { b, _ := json.Marshal(v); return string(b) }
	for _, e := range cfg.Env {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&df, "ENV %s=%s\n", k, strconv.Quote(v))
	}
	if len(cfg.Expose) > 0 {
		fmt.Fprintf(&df, "EXPOSE %s\n", strings.Join(cfg.Expose, " "))
	}
	if len(cfg.Volumes) > 0 {
		fmt.Fprintf(&df, "VOLUME %s\n", jsonList(cfg.Volumes))
	}
	for _, k := range sortedKeys(cfg.Labels) {
		fmt.Fprintf(&df, "LABEL %s=%s\n", strconv.Quote(k), strconv.Quote(cfg.Labels[k]))
	}
	if len(cfg.Entrypoint) > 0 {
		fmt.Fprintf(&df, "ENTRYPOINT %s\n", jsonList(cfg.Entrypoint))
	}
	if len(cfg.Cmd) > 0 {
		fmt.Fprintf(&df, "CMD %s\n", jsonList(cfg.Cmd))
	}

	var buildCtx bytes.Buffer
	tw := tar.NewWriter(&buildCtx)
	now := time.Unix(0, 0)
	for _, f := range []struct {
		name string
		data []byte
	}{{"Dockerfile", []byte(df.String())}, {"rootfs.tar", rootfs}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}

	res, err := cli.ImageBuild(ctx, &buildCtx, client.ImageBuildOptions{
		Tags:        []string{tag},
		Remove:      true,
		ForceRemove: true,
		Dockerfile:  "Dockerfile",
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	defer res.Body.Close()
	if err := readBuildStream(res.Body); err != nil {
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
	names := sortedKeys(byPath)
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
