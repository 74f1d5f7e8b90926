package backup

import (
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// redactedValue replaces a secret option's value in an archive.
const redactedValue = "<redacted by mqttgen backup>"

// isPrivateKey says data is a PEM private key.
func isPrivateKey(data []byte) bool { return bytes.Contains(data, []byte("PRIVATE KEY-----")) }

// isProbeLogin says an archive entry is the healthcheck's login, which
// holds its password in clear (generators.ProbeLoginPath, under
// ConfigPrefix as rendered).
func isProbeLogin(p string) bool { return p == generators.ProbeLoginPath }

// secretFile names what secret an archive entry is, "" for none: a backup
// stores it only with --with-secrets, encrypted.
func secretFile(f File) string {
	switch {
	case isPrivateKey(f.Data):
		return "a private key"
	case isProbeLogin(f.Path):
		return "the healthcheck's password"
	}
	return ""
}

// redactConf replaces the values of secret options of a mosquitto.conf and
// names each one replaced (with its bridge).
func redactConf(data []byte) ([]byte, []string) {
	c := conf.Read("mosquitto.conf", data)
	out, redacted := conf.Redact("mosquitto.conf", data, func(conf.Directive) string { return redactedValue })
	var what []string
	for _, d := range redacted {
		w := d.Key
		if d.Section >= 0 && !c.Sections[d.Section].Listener() {
			w += " (bridge " + c.Sections[d.Section].Name() + ")"
		}
		what = append(what, w)
	}
	return out, what
}

// Source is a set of files restore may complete an archive's config from,
// with its name for messages: the running broker's files, the files
// home.cue renders now, the state directory's keys.
type Source struct {
	Name  string
	Files []File // paths relative to the config folder
}

// Completed is a config file of the archive that restore had to complete,
// and where it came from.
type Completed struct {
	Path string `json:"path"`
	From string `json:"from"`
}

// ConfigFiles returns the archive's config files (paths relative to the
// config folder) as they were deployed. A private key the archive omits is
// taken from the archive's decrypted secrets, else from the first source
// holding a file of the same SHA-256; a mosquitto.conf whose secrets were
// redacted likewise, else from the first source whose file redacts to the
// same text. It fails, naming each file, when one cannot be completed: an
// archive never restores half a config.
func (a *Archive) ConfigFiles(secrets []File, sources ...Source) ([]File, []Completed, error) {
	secret := map[string]File{}
	for _, f := range secrets {
		if rel, ok := strings.CutPrefix(f.Path, ConfigPrefix); ok {
			f.Path = rel
			secret[rel] = f
		}
	}
	var out []File
	var done []Completed
	var missing, paths []string
	fromSources := func(rel string, match func([]byte) bool) (File, string, bool) {
		for _, s := range sources {
			for _, f := range s.Files {
				if f.Path == rel && match(f.Data) {
					return f, s.Name, true
				}
			}
		}
		return File{}, "", false
	}
	for _, f := range a.Under(ConfigPrefix) {
		if len(f.Redacted) == 0 {
			out = append(out, f)
			continue
		}
		if s, ok := secret[f.Path]; ok {
			f.Data, f.Redacted = s.Data, nil
			out = append(out, f)
			done = append(done, Completed{Path: f.Path, From: "the archive's encrypted secrets"})
			continue
		}
		redactedText := f.Data
		if src, name, ok := fromSources(f.Path, func(d []byte) bool { r, _ := redactConf(d); return bytes.Equal(r, redactedText) }); ok {
			done = append(done, Completed{Path: f.Path, From: name + " (the same file but for " + strings.Join(f.Redacted, ", ") + ")"})
			f.Data, f.Redacted = src.Data, nil
			out = append(out, f)
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (its %s was redacted)", f.Path, strings.Join(f.Redacted, ", ")))
		paths = append(paths, f.Path)
	}
	for _, o := range a.Manifest.Omitted {
		rel, ok := strings.CutPrefix(o.Path, ConfigPrefix)
		if !ok {
			continue
		}
		mode, _ := strconv.ParseUint(o.Mode, 8, 32)
		f := File{Path: rel, Mode: fs.FileMode(mode).Perm(), UID: o.UID, GID: o.GID}
		if f.Mode == 0 {
			f.Mode = 0o600
		}
		if s, ok := secret[rel]; ok && digest(s.Data) == o.SHA256 {
			f.Data = s.Data
			out = append(out, f)
			done = append(done, Completed{Path: rel, From: "the archive's encrypted secrets"})
			continue
		}
		if o.SHA256 != "" {
			if src, name, ok := fromSources(rel, func(d []byte) bool { return digest(d) == o.SHA256 }); ok {
				f.Data = src.Data
				out = append(out, f)
				done = append(done, Completed{Path: rel, From: name + " (the same SHA-256)"})
				continue
			}
		}
		missing = append(missing, fmt.Sprintf("%s (%s)", rel, o.Reason))
		paths = append(paths, rel)
	}
	if len(missing) > 0 {
		return nil, nil, &IncompleteError{Missing: missing, Paths: paths, Encrypted: a.Manifest.Secrets != nil && secrets == nil}
	}
	return out, done, nil
}

// IncompleteError says restore cannot rebuild the archive's config.
type IncompleteError struct {
	// Missing are the files with why they are not in the archive, Paths
	// the files alone.
	Missing, Paths []string
	// Encrypted says the archive has secrets that were not opened.
	Encrypted bool
}

func (e *IncompleteError) Error() string {
	if e.Encrypted {
		return fmt.Sprintf("the archive holds %s only in %s, encrypted, and neither the running broker nor home.cue has the same file: give the archive's passphrase (--passphrase-file FILE or $%s)", strings.Join(e.Paths, ", "), SecretsName, PassphraseEnv)
	}
	return fmt.Sprintf("the archive does not hold %s, and neither the running broker nor home.cue nor the state directory has the same file: restore an archive made with --with-secrets (and give its passphrase), or keep the state directory that made the archive", strings.Join(e.Missing, ", "))
}

// StateFiles are the state directory's files the archive holds (paths
// relative to the state directory): the public certificates, and with
// secrets the keys, passwords and hashes.
func (a *Archive) StateFiles(secrets []File) []File {
	out := a.Under(StatePrefix)
	for _, f := range secrets {
		if rel, ok := strings.CutPrefix(f.Path, StatePrefix); ok {
			f.Path = rel
			out = append(out, f)
		}
	}
	return out
}
