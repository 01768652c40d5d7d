package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/openbyok/byok/config"
)

// byok aws-emulator prints an aws: block that byok serve's wiring reaches
// it with (endpoint override, CA file, access key from the environment).
func TestAWSEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	out := &lineWatcher{want: "Press Ctrl-C", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := execute(ctx, []string{"aws-emulator", "--addr", "127.0.0.1:0", "--data", dir}, strings.NewReader(""), out, io.Discard)
		done <- err
	}()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("aws-emulator ended before its help: %v\n%s", err, out.String())
	}
	text := out.String()
	block, env := "", map[string]string{}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l == "  aws:" {
			for _, b := range lines[i:] {
				if b == "" {
					break
				}
				block += strings.TrimPrefix(b, "  ") + "\n"
			}
		}
		if rest, ok := strings.CutPrefix(l, "  export BYOK_AWS_KEY_ID="); ok {
			id, secret, _ := strings.Cut(rest, " BYOK_AWS_SECRET=")
			env["BYOK_AWS_KEY_ID"], env["BYOK_AWS_SECRET"] = id, secret
		}
	}
	cfg, err := config.Parse([]byte("version: v1\nstore: {sqlite: x.db}\nplatform_key: {file: p.key}\n" + block))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil || cfg.AWS == nil || cfg.AWS.CAFile == "" {
		t.Fatalf("the printed aws: block does not load: %v\n%s", err, text)
	}
	if _, err := os.Stat(cfg.AWS.CAFile); err != nil {
		t.Fatal(err)
	}
	conn, err := awsConnector(ctx, *cfg.AWS, appOptions{getenv: func(k string) string { return env[k] }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.Platform(ctx); p.Principal != awsEmulatorPlatform {
		t.Fatalf("the platform through the printed configuration: %+v, want %s\n%s", p, awsEmulatorPlatform, text)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
