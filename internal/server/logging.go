package server

import (
	"io"
	"log/slog"
	"os"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/testbedos/testbedos/internal/config"
)

// Rotation of logs/server.log.
const (
	serverLogMaxMB    = 20
	serverLogBackups  = 5
	serverLogMaxDays  = 90
	serverLogCompress = true
)

// NewLogger logs JSON lines to logs/server.log (rotated by size, a bounded
// number of old files kept) and text to stderr. Close the returned closer at
// exit.
func NewLogger(cfg config.Server, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	if err := os.MkdirAll(cfg.LogsDir(), 0o755); err != nil {
		return nil, nil, err
	}
	file := &lumberjack.Logger{
		Filename:   cfg.ServerLog(),
		MaxSize:    serverLogMaxMB,
		MaxBackups: serverLogBackups,
		MaxAge:     serverLogMaxDays,
		Compress:   serverLogCompress,
	}
	level := slog.LevelInfo
	if cfg.Dev {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	h := slog.NewMultiHandler(slog.NewJSONHandler(file, opts), slog.NewTextHandler(stderr, opts))
	return slog.New(h), file, nil
}
