package main

import (
	"io"
	"log/slog"
	"os"
)

// emulatorLogger is the log of an emulator command: info lines to stderr,
// every request with --verbose.
func emulatorLogger(stderr io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// emulatorDir returns dir, created if needed, or a new temporary directory
// (named after prefix) when dir is empty; cleanup removes the temporary one.
func emulatorDir(dir, prefix string) (_ string, cleanup func(), _ error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o700)
	}
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}
