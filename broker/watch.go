package broker

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// kubeletData is the symlink through which a Kubernetes Secret or
// ConfigMap volume shows its files: the kubelet writes an update into a
// new hidden folder and renames a new ..data symlink over the old one, so
// the whole folder changes at once.
const kubeletData = "..data"

// watchInterval is how often watchSwaps looks at ..data.
var watchInterval = time.Second

// watchSwaps reloads b each time the ..data symlink of dir points to a new
// folder, until ctx ends: a Secret or ConfigMap update in a pod. The rule
// of SIGHUP holds (Reload): an update that does not load is refused and the
// previous passwords, rules and certificates stay in force. In a folder
// without ..data it returns at once.
func watchSwaps(ctx context.Context, dir string, b *Broker) {
	link := filepath.Join(dir, kubeletData)
	seen, err := os.Readlink(link)
	if err != nil {
		return
	}
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := os.Readlink(link)
		if err != nil || now == seen {
			continue
		}
		seen = now
		b.log.logf(logNotice, "The config folder was updated (%s is now %s): reloading.", kubeletData, now)
		b.Reload() // failures are logged; the previous rules stay
	}
}
