package group

import (
	"log"
	"strings"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/ratelog"
)

// memberlistLogger adapts memberlist's "[LEVEL] memberlist: msg" lines
// to l; each Write of a log.Logger is one line. Warnings and errors go
// through lim: what a stranger's packets cause (garbage, another label,
// undecryptable or undecodable messages) is one key, logged as a warning
// once per interval with the count of the lines held back, so a flood of
// packets cannot flood the log.
func memberlistLogger(l zerolog.Logger, lim *ratelog.Limiter) *log.Logger {
	return log.New(zlogWriter{l: l, lim: lim}, "", 0)
}

type zlogWriter struct {
	l   zerolog.Logger
	lim *ratelog.Limiter
}

func (w zlogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	lvl := zerolog.InfoLevel
	switch {
	case strings.Contains(line, "[DEBUG]"):
		lvl = zerolog.DebugLevel
	case strings.Contains(line, "[WARN]"):
		lvl = zerolog.WarnLevel
	case strings.Contains(line, "Conflicting address"):
		// A duplicate node name, at every gossip round: NotifyConflict
		// says it once (conflict.go).
		lvl = zerolog.DebugLevel
	case strings.Contains(line, "[ERR]"):
		lvl = zerolog.ErrorLevel
	}
	if i := strings.Index(line, "memberlist: "); i >= 0 {
		line = line[i+len("memberlist: "):]
	}
	if lvl < zerolog.WarnLevel {
		w.l.WithLevel(lvl).Str("from", "memberlist").Msg(line)
		return len(p), nil
	}
	key := memberlistKey(line)
	if strings.HasPrefix(key, badPacket) {
		// Bad input from the network, not a fault of this relay.
		lvl = zerolog.WarnLevel
	}
	w.lim.Event(&w.l, lvl, key).Str("from", "memberlist").Msg(line)
	return len(p), nil
}

// badPacket starts the keys of lines about a packet or message that came
// in broken or from outside the group.
const badPacket = "memberlist: bad packet: "

// memberlistKey is the limiter key of a memberlist warning or error. Bad
// packets (the line names their sender, "from=host:port", or a packet)
// have three keys, whatever the wording and sender: another group's label,
// undecryptable (another gossip key), and malformed; an operator sees
// which of the three is arriving. Other lines are keyed by their first
// words with digits dropped, so lines that differ only in addresses,
// names or numbers share a key.
func memberlistKey(line string) string {
	if strings.Contains(line, "from=") || strings.Contains(line, "packet") {
		switch {
		case strings.Contains(line, "label"):
			return badPacket + "label"
		case strings.Contains(line, "ecrypt"):
			return badPacket + "decrypt"
		}
		return badPacket + "malformed"
	}
	words := strings.Fields(line)
	key := strings.Join(words[:min(len(words), 4)], " ")
	return "memberlist: " + strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, key)
}
