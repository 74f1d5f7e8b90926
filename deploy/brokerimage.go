package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
)

// BrokerBinary returns the path of the mqttgen binary the bundled broker's
// image is built from (broker.engine "mqttgen"): the one running. Tests,
// whose executable is a test binary, point it at a mqttgen they built.
var BrokerBinary = os.Executable

// Build says that apply builds the service's image itself, FROM scratch,
// from a mqttgen binary: the bundled broker's (broker.engine "mqttgen").
type Build struct {
	// Binary is the path of the mqttgen binary on this host.
	Binary string `json:"binary"`
	// Digest is its SHA-256, hex.
	Digest string `json:"digest"`
	// Arch is its architecture in Go's names (amd64, arm64, ...).
	Arch string `json:"arch"`
}

// ShortDigest is how a plan shows the binary.
func (b *Build) ShortDigest() string { return "sha256 " + b.Digest[:12] }

// staticHint is what to do about a binary the image cannot run.
const staticHint = "build mqttgen with CGO_ENABLED=0, as `make build` does"

// InspectBinary reads the mqttgen binary at path: its digest, and whether
// it can run in an image FROM scratch. It must be a static Linux ELF
// executable: a dynamically linked one (with a PT_INTERP program header,
// the path of the dynamic loader) needs the loader and the C library, which
// the image does not have.
func InspectBinary(path string) (*Build, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the bundled broker's image is built from the mqttgen binary: %w", err)
	}
	b, err := inspectBinary(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b.Binary = path
	return b, nil
}

func inspectBinary(data []byte) (*Build, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a Linux executable (%v): the bundled broker's image runs the mqttgen binary that builds it, so run mqttgen built for Linux (GOOS=linux); %s", err, staticHint)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
		return nil, fmt.Errorf("mqttgen is dynamically linked (it needs the loader %s), so it cannot run in the bundled broker's image, which is FROM scratch: %s",
			strings.TrimRight(string(interp), "\x00"), staticHint)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("not an executable (ELF type %s)", f.Type)
	}
	arch := elfArch(f)
	if arch == "" {
		return nil, fmt.Errorf("an executable for %s, which mqttgen does not know", f.Machine)
	}
	sum := sha256.Sum256(data)
	return &Build{Digest: hex.EncodeToString(sum[:]), Arch: arch}, nil
}

// elfArch is Go's name of the binary's architecture, as the engine reports
// its own.
func elfArch(f *elf.File) string {
	le := f.ByteOrder.String() == "LittleEndian"
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_AARCH64:
		return "arm64"
	case elf.EM_386:
		return "386"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_RISCV:
		return "riscv64"
	case elf.EM_PPC64:
		if le {
			return "ppc64le"
		}
		return "ppc64"
	case elf.EM_S390:
		return "s390x"
	case elf.EM_LOONGARCH:
		return "loong64"
	}
	return ""
}

// caBundles are where Linux distributions keep the system's CA certificates
// (as Go's crypto/x509 looks for them). The first found goes into the
// image, so that a bridge with TLS and no ca_file (bridge_capath
// /etc/ssl/certs) verifies its remote there as on the host.
var caBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// brokerImageFiles are the files of the bundled broker's image: the binary,
// user and group mosquitto 1883:1883 (the broker drops to it, as Mosquitto
// does in eclipse-mosquitto), /mosquitto/config, data and log owned by it,
// /tmp, /run/secrets (the exporter's password), and the CA certificates of
// this host.
func brokerImageFiles(binary, caBundle []byte) []engine.ImageFile {
	dir := func(p string, uid int, mode fs.FileMode) engine.ImageFile {
		return engine.ImageFile{Path: p, Mode: fs.ModeDir | mode, UID: uid, GID: uid}
	}
	files := []engine.ImageFile{
		{Path: generators.BrokerBinaryPath, Mode: 0o755, Data: binary},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				fmt.Sprintf("mosquitto:x:%d:%d:mosquitto:/var/empty:/sbin/nologin\n", brokerUID, brokerUID))},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\n" + fmt.Sprintf("mosquitto:x:%d:\n", brokerUID))},
		dir("/mosquitto", brokerUID, 0o755),
		dir("/mosquitto/config", brokerUID, 0o755),
		dir("/mosquitto/data", brokerUID, 0o755),
		dir("/mosquitto/log", brokerUID, 0o755),
		dir("/etc/ssl/certs", 0, 0o755),
		// Where `mqttgen exporter` finds its password, written by apply
		// before the container starts (compose mounts its secret there).
		dir("/run", 0, 0o755),
		dir(generators.ExporterSecretDir, brokerUID, 0o700),
	}
	if caBundle != nil {
		files = append(files, engine.ImageFile{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: caBundle})
	}
	return files
}

// BuildBrokerImage builds the bundled broker's image, tagged tag, from the
// mqttgen binary b names, through the engine's API (no registry, no docker
// CLI): FROM scratch, entrypoint `mqttgen broker -c
// /mosquitto/config/mosquitto.conf`, volumes data and log, and the label
// engine.LabelBinaryDigest. The binary must still be the one of b (a saved plan
// made by another binary is refused) and of the engine's architecture.
func BuildBrokerImage(ctx context.Context, cli *client.Client, tag string, b *Build) error {
	data, err := os.ReadFile(b.Binary)
	if err != nil {
		return fmt.Errorf("the bundled broker's image is built from the mqttgen binary: %w", err)
	}
	got, err := inspectBinary(data)
	if err != nil {
		return fmt.Errorf("%s: %w", b.Binary, err)
	}
	if got.Digest != b.Digest {
		return fmt.Errorf("%s changed since the plan was made (sha256 %s, the plan has %s): run mqttgen plan again", b.Binary, got.Digest[:12], b.Digest[:12])
	}
	if v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil && v.Arch != "" && v.Arch != b.Arch {
		return fmt.Errorf("%s is built for %s and the Docker engine runs %s: build mqttgen for %s (GOARCH=%s CGO_ENABLED=0) to deploy the bundled broker there", b.Binary, b.Arch, v.Arch, v.Arch, v.Arch)
	}
	var ca []byte
	for _, p := range caBundles {
		if ca, err = os.ReadFile(p); err == nil {
			break
		}
		ca = nil
	}
	return engine.BuildScratchImage(ctx, cli, tag, brokerImageFiles(data, ca), engine.ImageConfig{
		Entrypoint: []string{generators.BrokerBinaryPath, "broker"},
		Cmd:        []string{"-c", generators.ContainerLayout.ConfigDir + "/mosquitto.conf"},
		Env:        []string{"PATH=/usr/bin:/bin"},
		Expose:     []string{"1883"},
		Volumes:    []string{generators.ContainerLayout.DataDir, generators.ContainerLayout.LogDir},
		Labels: map[string]string{
			engine.LabelBinaryDigest: b.Digest,
			generators.LabelEngine:   "mqttgen",
		},
	})
}

// removeStaleImage removes an image apply built before, once nothing uses
// it and no tag names it (the tag has moved to the new build). Anything
// else is left alone.
func removeStaleImage(ctx context.Context, cli *client.Client, id string) {
	img, err := cli.ImageInspect(ctx, id)
	if err != nil || len(img.RepoTags) > 0 || img.Config == nil || img.Config.Labels[engine.LabelBinaryDigest] == "" {
		return
	}
	// A conflict (a container still uses it) leaves it for the next apply.
	cli.ImageRemove(ctx, id, client.ImageRemoveOptions{PruneChildren: true})
}
