// Package boundedread reads files named in home.cue (password files,
// certificates) with a limit: a file that is larger, or endless
// (/dev/zero), is refused after reading one byte more than the limit,
// instead of being read into memory whole.
package boundedread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// File reads the file at path, refusing it when it holds more than max
// bytes. Errors name the path once, without Go's "open" prefix.
func File(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %v", path, pe.Err)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %v", path, pe.Err)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes, more than such a file ever holds", path, max)
	}
	return data, nil
}
