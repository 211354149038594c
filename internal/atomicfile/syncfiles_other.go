//go:build !linux

package atomicfile

import "os"

// syncFiles fsyncs each file (no syncfs here).
func syncFiles(_ string, files map[string]*os.File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}
