package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/imcd-sip/imcd/pkg/logging"
)

// Level is a log level named the way OpenSIPS names its own (log_level):
// alert (-3), crit (-2), error (-1), warn (1), notice (2), info (3),
// debug (4); numbers are accepted too.
type Level int

// OpenSIPS's levels.
const (
	LevelAlert  Level = -3
	LevelCrit   Level = -2
	LevelError  Level = -1
	LevelWarn   Level = 1
	LevelNotice Level = 2
	LevelInfo   Level = 3
	LevelDebug  Level = 4
)

var levelNames = map[Level]string{
	LevelAlert: "alert", LevelCrit: "crit", LevelError: "error", LevelWarn: "warn",
	LevelNotice: "notice", LevelInfo: "info", LevelDebug: "debug",
}

func (l Level) String() string {
	if s, ok := levelNames[l]; ok {
		return s
	}
	return strconv.Itoa(int(l))
}

// ParseLevel parses a level name or OpenSIPS number.
func ParseLevel(s string) (Level, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for l, n := range levelNames {
		if s == n {
			return l, nil
		}
	}
	switch s {
	case "warning":
		return LevelWarn, nil
	case "err":
		return LevelError, nil
	case "critical":
		return LevelCrit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < -3 || n > 4 || n == 0 {
		return 0, fmt.Errorf("unknown log level %q (alert, crit, error, warn, notice, info, debug or -3..4)", s)
	}
	return Level(n), nil
}

// LevelNoticeSlog is the slog level imcd uses for OpenSIPS's "notice":
// between slog's Info and Warn (logging.LevelNotice).
const LevelNoticeSlog = logging.LevelNotice

// Slog maps the level onto log/slog's scale: debug → Debug, info → Info,
// notice → Info+2, warn → Warn, error → Error, crit/alert → above Error.
func (l Level) Slog() slog.Level {
	switch {
	case l >= LevelDebug:
		return slog.LevelDebug
	case l == LevelInfo:
		return slog.LevelInfo
	case l == LevelNotice:
		return LevelNoticeSlog
	case l == LevelWarn:
		return slog.LevelWarn
	case l == LevelError:
		return slog.LevelError
	case l == LevelCrit:
		return slog.LevelError + 4
	default:
		return slog.LevelError + 8
	}
}
