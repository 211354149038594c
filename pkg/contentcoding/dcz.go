package contentcoding

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// HeaderLen is the length of the dcz header: a zstd skippable frame (magic
// 0x184D2A5E, frame size 32) holding the dictionary's sha-256.
const HeaderLen = 8 + digest.Size

// dczMagic is the skippable frame's magic number and size, little endian.
var dczMagic = [8]byte{0x5e, 0x2a, 0x4d, 0x18, 0x20, 0x00, 0x00, 0x00}

// ErrDictionary says a dcz stream names another dictionary than the one
// given, or is not dcz at all.
var ErrDictionary = errors.New("contentcoding: dcz header does not name the given dictionary")

// dczHeader returns the header of a dcz stream against dictionary dict.
func dczHeader(dict digest.Digest) []byte {
	h := make([]byte, 0, HeaderLen)
	h = append(h, dczMagic[:]...)
	return append(h, dict[:]...)
}

// readDczHeader reads and checks the header of a dcz stream.
func readDczHeader(r io.Reader, dict digest.Digest) error {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return fmt.Errorf("contentcoding: read dcz header: %w", err)
	}
	if !bytes.Equal(h[:8], dczMagic[:]) || !bytes.Equal(h[8:], dict[:]) {
		return ErrDictionary
	}
	return nil
}

// maxAvailableDictionary bounds the Available-Dictionary value: ":" +
// base64 of 32 bytes (44) + ":" and some whitespace.
const maxAvailableDictionary = 64

// ParseAvailableDictionary reads an Available-Dictionary value
// (":<base64 sha-256>:"); ok is false for anything else.
func ParseAvailableDictionary(v string) (d digest.Digest, ok bool) {
	v = strings.TrimSpace(v)
	if len(v) > maxAvailableDictionary || len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return d, false
	}
	b, err := base64.StdEncoding.DecodeString(v[1 : len(v)-1])
	if err != nil || len(b) != digest.Size {
		return d, false
	}
	copy(d[:], b)
	return d, true
}

// FormatAvailableDictionary is the Available-Dictionary value naming d.
func FormatAvailableDictionary(d digest.Digest) string {
	return ":" + base64.StdEncoding.EncodeToString(d[:]) + ":"
}

// Accept is what a request allows: the codings it accepts and the
// dictionary it holds.
type Accept struct {
	Zstd, Dcz bool
	// Dict is the Available-Dictionary blob; zero when none (then Dcz is
	// false).
	Dict digest.Digest
}

// maxAcceptEncoding bounds the Accept-Encoding value that is parsed; a
// longer one accepts identity only.
const maxAcceptEncoding = 512

// ParseAccept reads Accept-Encoding and Available-Dictionary. A coding
// with q=0 is not accepted; a malformed value accepts identity only.
func ParseAccept(acceptEncoding, availableDictionary string) Accept {
	var a Accept
	if len(acceptEncoding) > maxAcceptEncoding {
		return a
	}
	for item := range strings.SplitSeq(acceptEncoding, ",") {
		name, params, _ := strings.Cut(item, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != wire.CodingZstd && name != wire.CodingDcz {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(q), 64); err != nil || f <= 0 {
				continue
			}
		}
		if name == wire.CodingZstd {
			a.Zstd = true
		} else {
			a.Dcz = true
		}
	}
	if a.Dcz {
		a.Dict, a.Dcz = ParseAvailableDictionary(availableDictionary)
	}
	return a
}
