package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func cgroup(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFromCgroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"v2 limit", map[string]string{"memory.max": "536870912\n"}, 536870912, true},
		{"v2 no limit", map[string]string{"memory.max": "max\n"}, 0, false},
		{"v1 limit", map[string]string{"memory/memory.limit_in_bytes": "1073741824\n"}, 1 << 30, true},
		{"v1 no limit", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"v2 wins over v1", map[string]string{"memory.max": "268435456", "memory/memory.limit_in_bytes": "1073741824"}, 1 << 28, true},
		{"no control group", nil, 0, false},
		{"garbage", map[string]string{"memory.max": "lots"}, 0, false},
	} {
		got, ok := FromCgroup(cgroup(t, tc.files))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: FromCgroup = %d, %t; want %d, %t", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSet(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	root := cgroup(t, map[string]string{"memory.max": "536870912"})
	none := func(string) string { return "" }

	if got := Set(func(k string) string { return map[string]string{"GOMEMLIMIT": "300MiB"}[k] }, root); got != 0 {
		t.Errorf("with GOMEMLIMIT set: Set = %d, want 0 (left alone)", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set: runtime limit %d, want unchanged", got)
	}
	if got := Set(none, t.TempDir()); got != 0 {
		t.Errorf("without a control group limit: Set = %d, want 0", got)
	}
	want := For(536870912)
	if want != 483183820 {
		t.Fatalf("For(512 MiB) = %d, want 483183820", want)
	}
	if got := Set(none, root); got != want {
		t.Errorf("Set = %d, want %d", got, want)
	}
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("runtime limit %d, want %d", got, want)
	}
}
