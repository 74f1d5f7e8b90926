package backup

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzSecrets feeds secrets decryption what a tampered archive may hold:
// a manifest's salt, nonce and iteration count, a secrets.enc that is not
// ours, and (sealed properly, so that decryption succeeds) a plaintext that
// is not a tar mqttgen wrote. It never panics, refuses more PBKDF2 rounds
// than mqttgen writes (a tampered manifest could otherwise ask for 2^31),
// and returns only plain file paths.
func FuzzSecrets(f *testing.F) {
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: StatePrefix + "passwords/admin", Mode: 0o600, Size: 3})
	tw.Write([]byte("pw\n"))
	tw.Close()
	f.Add(tarball.Bytes(), []byte("salt-of-16-bytes"), 1, true)
	f.Add([]byte("not a tar"), []byte("s"), 1, true)
	f.Add([]byte{}, []byte{}, 0, false)
	f.Add(tarball.Bytes(), []byte("salt"), 1<<30, false)
	const pass = "a passphrase of some length"
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, plain, salt []byte, iterations int, seal bool) {
		nonce := []byte("twelve bytes")
		blob := plain
		if iterations > 1000 && iterations <= maxSecretsIterations {
			iterations = 1000 // allowed, but slow to fuzz with
		}
		if seal {
			// Decryption must succeed: keep the work per input small.
			iterations = 1
			aead, err := secretsKey(pass, salt, iterations)
			if err != nil {
				return
			}
			blob = aead.Seal(nil, nonce, plain, additionalData("home", created))
		}
		a := &Archive{
			Manifest: Manifest{Project: "home", Created: created, Secrets: &SecretsInfo{
				Cipher: secretsCipher, KDF: secretsKDF, Iterations: iterations,
				Salt: base64.StdEncoding.EncodeToString(salt), Nonce: base64.StdEncoding.EncodeToString(nonce),
			}},
			Files: []File{{Path: SecretsName, Data: blob}},
		}
		start := time.Now()
		files, err := a.Secrets(pass)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("iterations %d: decryption took %v", iterations, d)
		}
		if iterations > maxSecretsIterations && err == nil {
			t.Errorf("%d iterations accepted", iterations)
		}
		if !seal && err == nil && len(files) > 0 {
			t.Errorf("unsealed bytes decrypted")
		}
		if seal && errors.Is(err, ErrPassphrase) {
			t.Errorf("sealed bytes refused: %v", err)
		}
		for _, f := range files {
			if !validPath(f.Path) || strings.Contains(f.Path, "..") {
				t.Errorf("entry %q returned", f.Path)
			}
		}
	})
}
