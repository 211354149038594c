// Keys as file names: LocalPath, for writing an object under a directory
// on any of the systems agents run on.
package cleanpath

import (
	"path/filepath"
	"strings"
)

var (
	errColon       = bad("colon (a drive or an alternate data stream on Windows)")
	errWindowsChar = bad(`character Windows does not allow in a name (< > " | ? *)`)
	errTrailing    = bad("segment ending in a dot or a space (Windows drops them)")
	errDevice      = bad("Windows device name (CON, NUL, COM1, …)")
)

// LocalPath turns key, an object key, into a relative path of this
// operating system (filepath.FromSlash), safe to open below a directory
// as a plain file. It refuses, on every system alike, a key that some
// system agents run on (Linux, macOS, Windows) would read as another name
// or not as a file name at all, so that one catalog writes the same files
// everywhere:
//   - whatever Key refuses: backslashes, "." and "..", empty segments,
//     control characters, invalid UTF-8, a first segment like "C:";
//   - a colon anywhere: "C:x" is relative to a drive on Windows, "a:b" is
//     the stream b of the file a on NTFS;
//   - the characters < > " | ? *, which Windows does not allow in names
//     (its file APIs read some of them as wildcards);
//   - a segment ending in "." or " ", which Windows drops ("a." is "a");
//   - a Windows device name as a segment, with or without an extension
//     (CON, PRN, AUX, NUL, COM0–COM9, LPT0–LPT9, COM¹²³, LPT¹²³, CONIN$,
//     CONOUT$: "nul.txt" is the null device before Windows 11).
//
// Names that differ only in case are accepted: they are two files on
// Linux and one on macOS and Windows, which is for the caller to mind.
// The error wraps ErrBadPath.
func LocalPath(key string) (string, error) {
	if err := check(key); err != nil {
		return "", err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := checkPortable(seg); err != nil {
			return "", err
		}
	}
	return filepath.FromSlash(key), nil
}

// checkPortable checks one segment that check accepted (so it is not
// empty).
func checkPortable(seg string) error {
	if i := strings.IndexAny(seg, `:<>"|?*`); i >= 0 {
		if seg[i] == ':' {
			return errColon
		}
		return errWindowsChar
	}
	if c := seg[len(seg)-1]; c == '.' || c == ' ' {
		return errTrailing
	}
	if isDeviceName(seg) {
		return errDevice
	}
	return nil
}

// isDeviceName reports whether Windows may read seg as a device: a
// reserved name, whatever its case, followed by nothing, by spaces, or by
// an extension. (Windows 11 reads "con.txt" as a file; older ones do not.)
func isDeviceName(seg string) bool {
	base, _, _ := strings.Cut(seg, ".")
	base = strings.TrimRight(base, " ")
	if len(base) < 3 || len(base) > 7 {
		return false
	}
	switch upper(base) {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	switch upper(base[:3]) {
	case "COM", "LPT":
		switch n := base[3:]; n {
		case "¹", "²", "³":
			return true
		default:
			return len(n) == 1 && '0' <= n[0] && n[0] <= '9'
		}
	}
	return false
}

// upper upper-cases the ASCII letters of s and nothing else: Windows
// compares device names in ASCII, and Unicode folding would match the
// Kelvin sign to a K.
func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
