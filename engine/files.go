package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// File is a regular file in a container, its path relative to the folder
// read or written.
type File struct {
	Path     string
	Mode     fs.FileMode
	UID, GID int
	// ModTime is zero for "now" when written.
	ModTime time.Time
	Data    []byte
}

// ManifestName lists, in a container's config folder, the files mqttgen
// deployed there, one a line: the API cannot delete a file, so one no
// longer wanted is emptied and left out of it.
const ManifestName = ".mqttgen-files"

// ReadDir reads the regular files under dir in a container through the
// API (GET /containers/{id}/archive), with their modes and owners, sorted
// by path; root is dir's own mode and owner. A missing dir has no files.
func ReadDir(ctx context.Context, cli *client.Client, id, dir string) (files []File, root File, err error) {
	root = File{Mode: 0o755}
	res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: dir})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, root, nil
		}
		return nil, root, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, root, err
		}
		// Entries are named <base of dir>/<path>.
		_, rel, _ := strings.Cut(strings.TrimSuffix(h.Name, "/"), "/")
		if rel == "" && h.Typeflag == tar.TypeDir {
			root = File{Mode: fs.FileMode(h.Mode).Perm(), UID: h.Uid, GID: h.Gid}
			continue
		}
		if h.Typeflag != tar.TypeReg || !fs.ValidPath(rel) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, root, err
		}
		files = append(files, File{Path: rel, Mode: fs.FileMode(h.Mode).Perm(), UID: h.Uid, GID: h.Gid, ModTime: h.ModTime, Data: data})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, root, nil
}

// Deployed keeps the files the manifest among them lists (not the manifest
// itself); without a manifest, every file.
func Deployed(files []File) []File {
	i := slices.IndexFunc(files, func(f File) bool { return f.Path == ManifestName })
	if i < 0 {
		return files
	}
	keep := map[string]bool{}
	for _, l := range strings.Split(string(files[i].Data), "\n") {
		keep[l] = true
	}
	return slices.DeleteFunc(slices.Clone(files), func(f File) bool { return !keep[f.Path] })
}

// WriteDir copies files (paths relative to dir) into dir of a container
// through the API (PUT /containers/{id}/archive), with their modes and
// owners; dir and the folders between get root's mode and owner. The
// container may be stopped: its volumes are written all the same.
func WriteDir(ctx context.Context, cli *client.Client, id, dir string, root File, files []File) error {
	data, err := Tar(path.Base(dir), root, files)
	if err != nil {
		return err
	}
	_, err = cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: path.Dir(dir), Content: bytes.NewReader(data)})
	return err
}

// WriteDeployed writes files into dir as WriteDir does, with the manifest
// listing them; emptied are files deployed before that are no longer
// wanted: they are written empty (mode 0600) and left out of the manifest.
func WriteDeployed(ctx context.Context, cli *client.Client, id, dir string, root File, files []File, emptied []string) error {
	var manifest bytes.Buffer
	all := slices.Clone(files)
	for _, f := range files {
		if f.Path == ManifestName {
			return fmt.Errorf("file %q: not a plain relative path", f.Path)
		}
		fmt.Fprintln(&manifest, f.Path)
	}
	for _, p := range emptied {
		all = append(all, File{Path: p, Mode: 0o600, UID: root.UID, GID: root.GID})
	}
	all = append(all, File{Path: ManifestName, Mode: 0o644, UID: root.UID, GID: root.GID, Data: manifest.Bytes()})
	return WriteDir(ctx, cli, id, dir, root, all)
}

// Tar makes a tar of files under base (a folder name without slashes),
// with a header for base and each subfolder, of root's mode and owner.
func Tar(base string, root File, files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	now := time.Now()
	mkdir := func(p string) error {
		if dirs[p] {
			return nil
		}
		dirs[p] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: int64(root.Mode.Perm()), Uid: root.UID, Gid: root.GID, ModTime: now})
	}
	if err := mkdir(base); err != nil {
		return nil, err
	}
	for _, f := range files {
		if !fs.ValidPath(f.Path) {
			return nil, fmt.Errorf("file %q: not a plain relative path", f.Path)
		}
		parts := strings.Split(f.Path, "/")
		for i := range parts[:len(parts)-1] {
			if err := mkdir(path.Join(append([]string{base}, parts[:i+1]...)...)); err != nil {
				return nil, err
			}
		}
		mt := f.ModTime
		if mt.IsZero() {
			mt = now
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(base, f.Path), Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID, Size: int64(len(f.Data)), ModTime: mt}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
