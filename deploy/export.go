package deploy

// What the Kubernetes target (package kube, and the reloader in its pod)
// shares with the Docker path: one redaction for plans, one check before a
// reload.

// RedactedDiff is the unified diff a plan shows of a changed file: password
// hashes, bridge passwords and private keys replaced by a short digest,
// certificates by their subject and expiry. p names the file (its base
// name says how to redact it); "" when both show the same.
func RedactedDiff(p string, old, want []byte) string { return unifiedDiff(p, old, want) }

// ValidateFiles checks the files of a config folder (by path in it:
// "acl", "passwd", "certs/server.crt"...) as apply does before every
// SIGHUP: an acl or passwd that does not parse, or a certificate that
// does not match its key, is refused.
func ValidateFiles(files map[string][]byte) error { return validateFiles(files) }

// ReloadedOnSIGHUP says the engine (a conf.TableKey) reads the file of its
// config folder at path p (not mosquitto.conf) again on SIGHUP, so that a
// change of it needs no new process.
func ReloadedOnSIGHUP(key, p string) bool {
	return fileForcesRestart(key, p, []byte{0}, []byte{1}) == ""
}
