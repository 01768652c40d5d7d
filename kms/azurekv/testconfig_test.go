package azurekv

import (
	"fmt"
	"strings"
	"testing"
)

func dump(r Report) string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-18s %-4s %s | %s | %s\n", c.Name, c.Status, c.Value, c.Reason, c.Remedy)
	}
	return b.String()
}

func TestConfigurationHappySecret(t *testing.T) {
	e := newEnv(t)
	r := TestConfiguration(bg, e.config(contoso+"/keys/cmk"))
	t.Log("\n" + dump(r))
	if !r.OK() {
		t.Fatal("not ok")
	}
}
