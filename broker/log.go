package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// Log types, as Mosquitto's log_type names them.
const (
	logError       = "error"
	logWarning     = "warning"
	logNotice      = "notice"
	logInfo        = "information"
	logDebug       = "debug"
	logSubscribe   = "subscribe"
	logUnsubscribe = "unsubscribe"
	logWebsockets  = "websockets"
)

// logTopicLevel is the last level of $SYS/broker/log/<level> for log_dest
// topic, as Mosquitto publishes them.
var logTopicLevel = map[string]string{
	logError: "E", logWarning: "W", logNotice: "N", logInfo: "I", logDebug: "D",
	logSubscribe: "M", logUnsubscribe: "U", logWebsockets: "WS",
}

// logger writes Mosquitto-style log lines to the log_dest destinations.
type logger struct {
	mu       sync.Mutex
	types    atomic.Pointer[conf.LogTypes]
	stamp    bool
	format   string
	writers  []io.Writer
	file     *os.File
	filePath string
	syslog   *syslog.Writer
	// topic publishes to $SYS/broker/log/...; set once the server runs.
	topic     atomic.Pointer[func(topic, msg string)]
	wantTopic bool
	// publishing is set while a log line is published to $SYS, so that a
	// line logged by that publish is not published in turn.
	publishing atomic.Bool
	now        func() time.Time
}

// newLogger opens the destinations of c. stdout and stderr are the
// process's unless replaced.
func newLogger(c *conf.Config, stdout, stderr io.Writer) (*logger, error) {
	l := &logger{stamp: c.LogTimestamp, format: c.LogTimestampFormat, now: time.Now}
	l.setTypes(c.LogTypes)
	for _, d := range c.LogDest {
		switch d.Kind {
		case "stdout":
			l.writers = append(l.writers, stdout)
		case "stderr":
			l.writers = append(l.writers, stderr)
		case "file":
			f, err := os.OpenFile(d.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("log_dest file: %w", err)
			}
			l.file, l.filePath = f, d.Path
			l.writers = append(l.writers, f)
		case "syslog":
			w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "mqttgen-broker")
			if err != nil {
				// As Mosquitto: a missing syslog daemon is not fatal.
				fmt.Fprintf(stderr, "Warning: log_dest syslog: %v\n", err)
				continue
			}
			l.syslog = w
		case "topic":
			l.wantTopic = true
		}
	}
	return l, nil
}

// reopen reopens the log file, for log rotation on SIGHUP.
func (l *logger) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	f, err := os.OpenFile(l.filePath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	for i, w := range l.writers {
		if w == io.Writer(l.file) {
			l.writers[i] = f
		}
	}
	l.file.Close()
	l.file = f
	return nil
}

func (l *logger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
	if l.syslog != nil {
		l.syslog.Close()
	}
}

func (l *logger) setTypes(t conf.LogTypes) { l.types.Store(&t) }

func (l *logger) enabled(typ string) bool { return (*l.types.Load()).Has(typ) }

// logf logs a message of type typ.
func (l *logger) logf(typ, format string, args ...any) {
	if !l.enabled(typ) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	var line string
	if l.stamp {
		now := l.now()
		if l.format != "" {
			line = conf.Strftime(now, l.format) + ": " + msg + "\n"
		} else {
			line = fmt.Sprintf("%d: %s\n", now.Unix(), msg)
		}
	} else {
		line = msg + "\n"
	}
	l.mu.Lock()
	for _, w := range l.writers {
		io.WriteString(w, line)
	}
	if l.syslog != nil {
		switch typ {
		case logError:
			l.syslog.Err(msg)
		case logWarning:
			l.syslog.Warning(msg)
		case logNotice:
			l.syslog.Notice(msg)
		case logDebug:
			l.syslog.Debug(msg)
		default:
			l.syslog.Info(msg)
		}
	}
	l.mu.Unlock()
	if l.wantTopic {
		if pub := l.topic.Load(); pub != nil && l.publishing.CompareAndSwap(false, true) {
			(*pub)("$SYS/broker/log/"+logTopicLevel[typ], msg)
			l.publishing.Store(false)
		}
	}
}

// slogHandler routes mochi's own log records into the logger: its errors
// and warnings as such, everything else as debug.
type slogHandler struct {
	l     *logger
	attrs []slog.Attr
}

func (h *slogHandler) Enabled(_ context.Context, level slog.Level) bool {
	return h.l.enabled(h.typ(level))
}

func (h *slogHandler) typ(level slog.Level) string {
	switch {
	case level >= slog.LevelError:
		return logError
	case level >= slog.LevelWarn:
		return logWarning
	}
	return logDebug
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("mochi: ")
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		if a.Key == "" {
			return true
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Any())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.l.logf(h.typ(r.Level), "%s", b.String())
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &slogHandler{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *slogHandler) WithGroup(string) slog.Handler { return h }
