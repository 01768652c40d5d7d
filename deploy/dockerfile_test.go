package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// stage is one build stage: its FROM and what follows it.
type stage struct {
	image, name string
	ins         []instruction
}

// parseDockerfile splits a Dockerfile into instructions (comments and
// parser directives dropped, backslash continuations joined) and stages.
// It is enough for the Dockerfile this repository ships, not a general
// parser (no heredocs, no escape directive).
func parseDockerfile(t *testing.T, text string) (global []instruction, stages []stage) {
	t.Helper()
	var cur strings.Builder
	start := 0
	var all []instruction
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		all = append(all, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued instruction: %q", cur.String())
	}
	for _, in := range all {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=...
			}
			s := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	return global, stages
}

// execForm decodes a JSON-array (exec form) argument, failing on the shell form.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("line %d: %s %s is not in exec form (a JSON array): %v", in.line, in.cmd, in.args, err)
	}
	return v
}

// secretName matches the names of variables and build arguments that look
// like they carry a secret.
var secretName = regexp.MustCompile(`(?i)secret|passw|token|credential|api_?key|private_?key|access_?key|client_?secret|^pg_?pass|conn(ection)?_?str`)

// envNames returns the variable names an ENV or ARG sets (both the
// "ENV A=1 B=2" and the legacy "ENV A 1" forms).
func envNames(in instruction) []string {
	if in.cmd == "ENV" && !strings.Contains(strings.Fields(in.args)[0], "=") {
		return []string{strings.Fields(in.args)[0]}
	}
	var names []string
	for _, f := range strings.Fields(in.args) {
		name, _, _ := strings.Cut(f, "=")
		names = append(names, name)
	}
	return names
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	global, stages := parseDockerfile(t, string(data))
	if len(stages) < 2 {
		t.Fatalf("%d stage(s); want a multi-stage build (a Go build stage and a runtime stage)", len(stages))
	}

	// Every instruction is checked for secrets, including global ARGs.
	all := append([]instruction(nil), global...)
	for _, s := range stages {
		all = append(all, s.ins...)
	}
	for _, in := range all {
		if in.cmd != "ENV" && in.cmd != "ARG" {
			continue
		}
		for _, name := range envNames(in) {
			if secretName.MatchString(name) {
				t.Errorf("line %d: %s %s looks like a secret: an image holds no secret (they are in every layer and every pull)", in.line, in.cmd, name)
			}
		}
	}
	for _, in := range all {
		if (in.cmd == "COPY" || in.cmd == "ADD") && regexp.MustCompile(`(?i)\.(key|pem|token|db)\b|\.env\b|pgpass`).MatchString(in.args) {
			t.Errorf("line %d: %s %s copies a secret-looking file into the image", in.line, in.cmd, in.args)
		}
	}

	// The build: a Go stage building ./cmd/byok with cgo off.
	built := false
	for _, s := range stages[:len(stages)-1] {
		cgoOff, stageBuilds := false, false
		for _, in := range s.ins {
			if (in.cmd == "ENV" || in.cmd == "ARG") && regexp.MustCompile(`\bCGO_ENABLED=0\b`).MatchString(in.args) {
				cgoOff = true
			}
			if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
				continue
			}
			if !strings.Contains(in.args, "./cmd/byok") {
				t.Errorf("line %d: go build does not build ./cmd/byok: %s", in.line, in.args)
			}
			if !cgoOff && !regexp.MustCompile(`\bCGO_ENABLED=0\b`).MatchString(in.args) {
				t.Errorf("line %d: go build runs without CGO_ENABLED=0: the binary would not be static", in.line)
			}
			built, stageBuilds = true, true
		}
		if stageBuilds && !strings.HasPrefix(s.image, "golang:") {
			t.Errorf("the build stage is FROM %s; want a golang image", s.image)
		}
	}
	if !built {
		t.Error("no build stage runs go build")
	}

	// The runtime: distroless/static or scratch, non-root, exec-form entrypoint.
	final := stages[len(stages)-1]
	if !(final.image == "scratch" || strings.HasPrefix(final.image, "gcr.io/distroless/static")) {
		t.Errorf("the final stage is FROM %s; want gcr.io/distroless/static* or scratch", final.image)
	}
	var user, entrypoint, cmd *instruction
	for i, in := range final.ins {
		switch in.cmd {
		case "USER":
			user = &final.ins[i]
		case "ENTRYPOINT":
			entrypoint = &final.ins[i]
		case "CMD":
			cmd = &final.ins[i]
		case "RUN":
			t.Errorf("line %d: RUN in the final stage: a distroless image has no shell, and the final stage should only copy the binary", in.line)
		case "VOLUME":
			t.Errorf("line %d: VOLUME in the image; the deployment chooses its volumes", in.line)
		}
	}
	if user == nil {
		t.Error("the final stage sets no USER: it would run as the base image's user")
	} else {
		uid, gid, hasGID := strings.Cut(user.args, ":")
		n, err := strconv.Atoi(uid)
		if err != nil || n == 0 {
			t.Errorf("line %d: USER %s; want a numeric non-root uid (e.g. 65532), which Kubernetes' runAsNonRoot can verify", user.line, user.args)
		}
		if hasGID {
			if g, err := strconv.Atoi(gid); err != nil || g == 0 {
				t.Errorf("line %d: USER %s; want a numeric non-root gid", user.line, user.args)
			}
		}
	}
	if entrypoint == nil {
		t.Error("no ENTRYPOINT in the final stage")
	} else if got := execForm(t, *entrypoint); strings.Join(got, " ") != "byok" {
		t.Errorf("ENTRYPOINT %q; want [\"byok\"]", got)
	}
	if cmd == nil {
		t.Error("no CMD in the final stage")
	} else if got := execForm(t, *cmd); strings.Join(got, " ") != "serve --config /etc/byok/config.yaml" {
		t.Errorf("CMD %q; want [\"serve\", \"--config\", \"/etc/byok/config.yaml\"]", got)
	}
}

func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns[line] = true
		}
	}
	// VCS data and local state (keys, databases, tokens) never reach the
	// build context.
	for _, want := range []string{".git", "**/*.key", "**/*.db", "**/*.token", "**/*.pem"} {
		if !patterns[want] {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	// What the build needs stays in.
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "*.go", "**/*.go", "server", "store"} {
		if patterns[needed] {
			t.Errorf(".dockerignore excludes %s, which the build needs", needed)
		}
	}
}
