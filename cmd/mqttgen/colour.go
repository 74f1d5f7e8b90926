package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ANSI colours of Terraform's plan: green to add, yellow to change, red to
// destroy; errors red, warnings yellow.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// colourOn reports whether w is a terminal that wants colour: not when
// NO_COLOR is set to anything (no-color.org), nor for TERM=dumb, nor into a
// pipe or a file.
func colourOn(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// colourWriter colours whole lines by what they say: a plan's + ~ - -/+
// resources and diff lines, "Plan:", "Apply complete!", errors and warnings.
type colourWriter struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
}

func (c *colourWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := string(c.partial[:i])
		c.partial = c.partial[i+1:]
		if _, err := io.WriteString(c.w, colourLine(line)+"\n"); err != nil {
			return 0, err
		}
	}
	// A question waits for its answer without a newline: write it now.
	if len(c.partial) > 0 && bytes.HasSuffix(c.partial, []byte(": ")) {
		if _, err := c.w.Write(c.partial); err != nil {
			return 0, err
		}
		c.partial = c.partial[:0]
	}
	return len(p), nil
}

// Flush writes a last line without a newline.
func (c *colourWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		io.WriteString(c.w, colourLine(string(c.partial)))
		c.partial = nil
	}
}

func colourLine(line string) string {
	t := strings.TrimLeft(line, " ")
	var col string
	switch {
	case strings.HasPrefix(t, "-/+ "):
		col = yellow
	case strings.HasPrefix(t, "+"):
		col = green
	case strings.HasPrefix(t, "~ "):
		col = yellow
	case strings.HasPrefix(t, "-"):
		col = red
	case strings.HasPrefix(line, "Plan:"), strings.HasPrefix(line, "No changes."), strings.Contains(line, " complete!"):
		col = bold
	case strings.HasPrefix(line, "mqttgen: "), strings.Contains(line, ": error: "):
		col = red
	case strings.Contains(line, "warning: "), strings.HasPrefix(line, "Warning: "):
		col = yellow
	default:
		return line
	}
	return col + line + reset
}

// diagColour colours one diagnostic line for stderr.
func diagColour(line string, warning bool) string {
	if warning {
		return yellow + line + reset
	}
	return red + line + reset
}
