// Output helpers shared by the commands.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// printJSON writes v to w as one line of JSON, for scripts (--json).
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// isTerminal reports whether w is a terminal: progress bars and colors
// are for people, plain lines for logs and pipes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
