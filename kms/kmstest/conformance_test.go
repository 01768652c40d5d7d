package kmstest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/kms/kmstest"
)

// brokenEnv names the broken provider a child process of
// TestConformanceCatchesBrokenProviders runs the suite on.
const brokenEnv = "KMSTEST_BROKEN_PROVIDER"

// TestConformanceCatchesBrokenProviders runs the suite, in a child
// process, on providers that each have one bug, and expects the subtest
// that covers the bug to fail.
func TestConformanceCatchesBrokenProviders(t *testing.T) {
	if name := os.Getenv(brokenEnv); name != "" {
		runBroken(t, name)
		return
	}
	for _, tt := range []struct{ broken, failing string }{
		{"deterministic", "Randomized"},
		{"unwrap-latest", "Versions"},
		{"versionless-wrap", "RoundTrip"},
		{"plain-ctx-errors", "ContextDone"},
	} {
		t.Run(tt.broken, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceCatchesBrokenProviders$", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tt.broken)
			out, err := cmd.CombinedOutput()
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("the suite did not fail on a provider with bug %q (%v):\n%s", tt.broken, err, out)
			}
			if want := "--- FAIL: TestConformanceCatchesBrokenProviders/" + tt.failing + " "; !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

func runBroken(t *testing.T, name string) {
	f := kmstest.NewFake()
	a, b := f.AddKey("a"), f.AddKey("b")
	var p kms.Provider
	switch name {
	case "deterministic":
		p = &deterministic{Fake: f, seen: map[string]kms.Wrapped{}}
	case "unwrap-latest":
		p = unwrapLatest{f}
	case "versionless-wrap":
		p = versionlessWrap{f}
	case "plain-ctx-errors":
		p = plainCtxErrors{f}
	default:
		t.Fatalf("unknown broken provider %q", name)
	}
	kmstest.RunConformance(t, kmstest.Harness{
		Provider:         p,
		KeyID:            a,
		OtherKeyID:       b,
		UnknownKeyID:     "fake:unknown",
		UnknownVersionID: "fake:a/v999",
		NewVersion:       func(testing.TB) string { return f.Rotate(a) },
	})
}

// deterministic returns the same wrapped value for the same plaintext.
type deterministic struct {
	*kmstest.Fake
	mu   sync.Mutex
	seen map[string]kms.Wrapped
}

func (d *deterministic) Wrap(ctx context.Context, keyID string, pt []byte) (kms.Wrapped, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.seen[keyID+string(pt)]; ok {
		return w, nil
	}
	w, err := d.Fake.Wrap(ctx, keyID, pt)
	if err == nil {
		d.seen[keyID+string(pt)] = w
	}
	return w, err
}

// unwrapLatest unwraps with the current version, whatever w records.
type unwrapLatest struct{ *kmstest.Fake }

func (u unwrapLatest) Unwrap(ctx context.Context, w kms.Wrapped) ([]byte, error) {
	name, _, _ := strings.Cut(w.KeyID, "/")
	if info, err := u.Describe(ctx, name); err == nil {
		w.KeyID = info.KeyID
	}
	return u.Fake.Unwrap(ctx, w)
}

// versionlessWrap records the id it was given.
type versionlessWrap struct{ *kmstest.Fake }

func (v versionlessWrap) Wrap(ctx context.Context, keyID string, pt []byte) (kms.Wrapped, error) {
	w, err := v.Fake.Wrap(ctx, keyID, pt)
	w.KeyID = keyID
	return w, err
}

// plainCtxErrors returns ctx.Err() itself.
type plainCtxErrors struct{ *kmstest.Fake }

func (p plainCtxErrors) Wrap(ctx context.Context, keyID string, pt []byte) (kms.Wrapped, error) {
	if err := ctx.Err(); err != nil {
		return kms.Wrapped{}, err
	}
	return p.Fake.Wrap(ctx, keyID, pt)
}
