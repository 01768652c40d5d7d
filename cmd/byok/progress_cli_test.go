package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbyok/byok/client"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		j    client.Job
		want int
	}{
		{client.Job{State: "pending", Total: 1000}, 0},
		{client.Job{State: "running", Done: 420, Total: 1000}, 42},
		{client.Job{State: "running", Done: 1000, Total: 1000}, 99}, // not done until the job says so
		{client.Job{State: "running", Done: 1500, Total: 1000}, 99}, // the total is an estimate
		{client.Job{State: "running", Done: 5}, 0},
		{client.Job{State: "done", Done: 3, Total: 7}, 100},
		{client.Job{State: "done"}, 100},
		{client.Job{State: "failed", Done: 1, Total: 4}, 25},
	} {
		if got := percent(tc.j); got != tc.want {
			t.Errorf("percent(%+v) = %d, want %d", tc.j, got, tc.want)
		}
	}
}

// TestProgressPlain checks the form of a non-terminal: one line per
// percentage change, and the last state always.
func TestProgressPlain(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b)
	if p.tty {
		t.Fatal("a strings.Builder is taken for a terminal")
	}
	for _, j := range []client.Job{
		{ID: "j1", Kind: "rekey", State: "pending", Total: 200},
		{ID: "j1", Kind: "rekey", State: "running", Done: 1, Total: 200},
		{ID: "j1", Kind: "rekey", State: "running", Done: 100, Total: 200},
		{ID: "j1", Kind: "rekey", State: "running", Done: 101, Total: 200},
		{ID: "j1", Kind: "rekey", State: "done", Done: 200, Total: 200},
	} {
		p.update(j)
	}
	want := "rekey j1: 0% (0/200) pending\nrekey j1: 50% (100/200) running\nrekey j1: 100% (200/200) done\n"
	if b.String() != want {
		t.Fatalf("plain progress:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestProgressBar checks the form of a terminal: a bar redrawn in place,
// ended by a newline when the job finishes.
func TestProgressBar(t *testing.T) {
	var b strings.Builder
	p := &progress{w: &b, tty: true, last: -1}
	p.update(client.Job{Kind: "rekey", State: "running", Done: 50, Total: 100})
	p.update(client.Job{Kind: "rekey", State: "done", Done: 100, Total: 100})
	frames := strings.Split(b.String(), "\r")
	if len(frames) != 3 || frames[0] != "" {
		t.Fatalf("bar output %q: want two frames, each starting with \\r", b.String())
	}
	half := strings.Repeat("█", barWidth/2) + strings.Repeat("·", barWidth/2)
	if !strings.Contains(frames[1], "["+half+"]") || !strings.Contains(frames[1], " 50%") || strings.Contains(frames[1], "\n") {
		t.Fatalf("frame at 50%% = %q", frames[1])
	}
	if !strings.Contains(frames[2], "["+strings.Repeat("█", barWidth)+"]") || !strings.HasSuffix(frames[2], "done\n") {
		t.Fatalf("last frame = %q; want a full bar and a newline", frames[2])
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&strings.Builder{}) {
		t.Fatal("a regular file or a buffer is taken for a terminal")
	}
}

func TestJobError(t *testing.T) {
	if err := jobError(client.Job{State: "done"}); err != nil {
		t.Fatalf("jobError of a done job = %v", err)
	}
	err := jobError(client.Job{ID: "j1", Kind: "rekey", State: "failed", Attempts: 10, Error: "store: disk full"})
	if err == nil || !strings.Contains(err.Error(), "rekey job j1 failed after 10 attempt(s): store: disk full") || exitCode(err) != 1 {
		t.Fatalf("jobError of a failed job = %v; want its kind, id, attempts and error, exit code 1", err)
	}
}
