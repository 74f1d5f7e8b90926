package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// source is where the setup lives and how its paths map to this machine.
type source struct {
	conf string // the mosquitto.conf, a path on this machine
	// mounts map folders as the broker sees them (container paths) to
	// folders here, from the compose file's volumes.
	mounts []mount
	// compose is the compose file, when SOURCE was one.
	compose *composeService
	// resolved lists paths found elsewhere than written: {written, here}.
	resolved [][2]string
	seen     map[string]bool
}

type mount struct{ container, host string }

type composeService struct {
	file    string
	name    string
	image   string
	imageAt int
	ports   []composePort
	volumes []composeVolume
}

type composeVolume struct {
	line         int
	spec, target string
}

type composePort struct {
	line              int
	hostIP            string
	host, container   int
	spec              string
	published, proto_ string
}

// containerConf is where the eclipse-mosquitto image reads its configuration.
const containerConf = "/mosquitto/config/mosquitto.conf"

// locate finds the mosquitto.conf of SOURCE: the file itself, the one in a
// folder (or in its config/ or mosquitto/config/), or the one a compose
// file's Mosquitto service mounts.
func locate(src string) (*source, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, pathError(err)
	}
	if st.IsDir() {
		for _, c := range []string{"mosquitto.conf", "config/mosquitto.conf", "mosquitto/config/mosquitto.conf"} {
			if p := filepath.Join(src, c); isFile(p) {
				return &source{conf: p, seen: map[string]bool{}}, nil
			}
		}
		for _, c := range []string{"docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"} {
			if p := filepath.Join(src, c); isFile(p) {
				return fromCompose(p)
			}
		}
		return nil, fmt.Errorf("%s: no mosquitto.conf, config/mosquitto.conf or compose file in this folder", src)
	}
	if ext := filepath.Ext(src); ext == ".yml" || ext == ".yaml" {
		return fromCompose(src)
	}
	return &source{conf: src, seen: map[string]bool{}}, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func fromCompose(file string) (*source, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, pathError(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty compose file", file)
	}
	services := mapValue(doc.Content[0], "services")
	if services == nil || services.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: no services", file)
	}
	var svc, name *yaml.Node
	for i := 0; i+1 < len(services.Content); i += 2 {
		img := mapValue(services.Content[i+1], "image")
		if img != nil && strings.Contains(img.Value, "mosquitto") {
			if svc != nil {
				return nil, fmt.Errorf("%s:%d: a second Mosquitto service, %s (the first is %s): import one setup at a time", file, services.Content[i].Line, services.Content[i].Value, name.Value)
			}
			svc, name = services.Content[i+1], services.Content[i]
		}
	}
	if svc == nil {
		return nil, fmt.Errorf("%s: no service runs a Mosquitto image (eclipse-mosquitto)", file)
	}
	dir := filepath.Dir(file)
	s := &source{compose: &composeService{file: file, name: name.Value}, seen: map[string]bool{}}
	if img := mapValue(svc, "image"); img != nil {
		s.compose.image, s.compose.imageAt = img.Value, img.Line
	}
	if vols := mapValue(svc, "volumes"); vols != nil {
		for _, v := range vols.Content {
			var src, dst string
			switch v.Kind {
			case yaml.ScalarNode:
				parts := strings.Split(v.Value, ":")
				if len(parts) >= 2 {
					src, dst = parts[0], parts[1]
				}
			case yaml.MappingNode:
				if n := mapValue(v, "source"); n != nil {
					src = n.Value
				}
				if n := mapValue(v, "target"); n != nil {
					dst = n.Value
				}
			}
			if dst != "" && !strings.HasPrefix(path.Clean(dst), "/mosquitto/config") {
				s.compose.volumes = append(s.compose.volumes, composeVolume{line: v.Line, spec: src + ":" + dst, target: path.Clean(dst)})
			}
			// Named volumes (no path) hold data, not configuration.
			if dst == "" || !(strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~")) {
				continue
			}
			if !filepath.IsAbs(src) {
				src = filepath.Join(dir, src)
			}
			s.mounts = append(s.mounts, mount{container: path.Clean(dst), host: src})
		}
	}
	if ports := mapValue(svc, "ports"); ports != nil {
		for _, p := range ports.Content {
			cp, err := parsePort(p)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", file, p.Line, err)
			}
			s.compose.ports = append(s.compose.ports, cp)
		}
	}
	confIn := containerConf
	if cmd := mapValue(svc, "command"); cmd != nil {
		var words []string
		if cmd.Kind == yaml.ScalarNode {
			words = strings.Fields(cmd.Value)
		} else {
			for _, w := range cmd.Content {
				words = append(words, w.Value)
			}
		}
		for i, w := range words {
			if (w == "-c" || w == "--config-file") && i+1 < len(words) {
				confIn = words[i+1]
			}
		}
	}
	s.conf = s.resolve(confIn, "")
	if !isFile(s.conf) {
		return nil, fmt.Errorf("%s: the service %s reads %s, which is %s here and does not exist", file, name.Value, confIn, s.conf)
	}
	return s, nil
}

func parsePort(n *yaml.Node) (composePort, error) {
	cp := composePort{line: n.Line}
	if n.Kind == yaml.MappingNode {
		t, p := mapValue(n, "target"), mapValue(n, "published")
		if t == nil {
			return cp, errors.New("a port without target")
		}
		cp.container = atoi(t.Value)
		cp.host = cp.container
		if p != nil {
			cp.host = atoi(p.Value)
		}
		if ip := mapValue(n, "host_ip"); ip != nil {
			cp.hostIP = ip.Value
		}
		cp.spec = fmt.Sprintf("%d:%d", cp.host, cp.container)
		return cp, nil
	}
	spec, _, _ := strings.Cut(n.Value, "/")
	cp.spec = n.Value
	parts := strings.Split(spec, ":")
	var err error
	switch len(parts) {
	case 1:
		cp.container, err = strconv.Atoi(parts[0])
		cp.host = cp.container
	case 2:
		cp.host, err = strconv.Atoi(parts[0])
		if err == nil {
			cp.container, err = strconv.Atoi(parts[1])
		}
	case 3:
		cp.hostIP = parts[0]
		cp.host, err = strconv.Atoi(parts[1])
		if err == nil {
			cp.container, err = strconv.Atoi(parts[2])
		}
	default:
		err = errors.New("unreadable")
	}
	if err != nil {
		return cp, fmt.Errorf("port %q: want [HOST_IP:]HOST:CONTAINER (ranges are not imported)", n.Value)
	}
	return cp, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// resolve maps a path as the broker sees it to this machine: through the
// compose file's mounts (the longest that holds it), else as written
// (relative to the file naming it); and when that does not exist, the file
// of that name beside the file naming it or beside the conf (a setup copied
// off its machine). from is the file naming the path. Every path found
// elsewhere than written is recorded, for the report.
func (s *source) resolve(p, from string) string {
	written := p
	var best *mount
	for i := range s.mounts {
		m := &s.mounts[i]
		if (p == m.container || strings.HasPrefix(p, m.container+"/")) && (best == nil || len(m.container) > len(best.container)) {
			best = m
		}
	}
	if best != nil {
		p = filepath.Join(best.host, strings.TrimPrefix(p, best.container))
	} else if !filepath.IsAbs(p) && from != "" {
		p = filepath.Join(filepath.Dir(from), p)
	}
	if !exists(p) {
		for _, dir := range []string{filepath.Dir(from), filepath.Dir(s.conf)} {
			if beside := filepath.Join(dir, filepath.Base(p)); exists(beside) {
				p = beside
				break
			}
		}
	}
	if p != written && s.seen != nil && !s.seen[written] {
		s.seen[written] = true
		s.resolved = append(s.resolved, [2]string{written, p})
	}
	return p
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// pathError drops the "open" of a PathError: "PATH: permission denied".
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

// readFile reads a file the setup names, at the directive that names it.
func readFile(p, at string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", at, pathError(err))
	}
	return bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), nil
}
