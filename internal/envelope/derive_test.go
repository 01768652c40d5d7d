package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func TestDeriveTenantKeyBindsEveryInput(t *testing.T) {
	c, p := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	base := must(DeriveTenantKey(c, p, "tenant", CustomerManaged, 1))
	if len(base) != KeySize {
		t.Fatalf("key is %d bytes, want %d", len(base), KeySize)
	}
	c2 := bytes.Clone(c)
	c2[31] ^= 1
	variants := map[string][]byte{
		"customer share": must(DeriveTenantKey(c2, p, "tenant", CustomerManaged, 1)),
		"platform share": must(DeriveTenantKey(c, c2, "tenant", CustomerManaged, 1)),
		"shares swapped": must(DeriveTenantKey(p, c, "tenant", CustomerManaged, 1)),
		"tenant":         must(DeriveTenantKey(c, p, "tenanT", CustomerManaged, 1)),
		"kind":           must(DeriveTenantKey(c, p, "tenant", PlatformManaged, 1)),
		"epoch":          must(DeriveTenantKey(c, p, "tenant", CustomerManaged, 2)),
	}
	for name, k := range variants {
		if bytes.Equal(k, base) {
			t.Errorf("changing the %s did not change the key", name)
		}
	}
	if again := must(DeriveTenantKey(c, p, "tenant", CustomerManaged, 1)); !bytes.Equal(again, base) {
		t.Error("derivation is not deterministic")
	}
}

func TestDeriveTenantKeyErrors(t *testing.T) {
	k := bytes.Repeat([]byte{1}, KeySize)
	cases := []struct {
		name, arg string
		err       error
	}{
		{"short customer share", "customer share", second(DeriveTenantKey(k[:31], k, "t", 1, 1))},
		{"long platform share", "platform share", second(DeriveTenantKey(k, append(k, 0), "t", 1, 1))},
		{"nil platform share", "platform share", second(DeriveTenantKey(k, nil, "t", 1, 1))},
		{"empty tenant", "tenant id", second(DeriveTenantKey(k, k, "", 1, 1))},
		{"long tenant", "tenant id", second(DeriveTenantKey(k, k, tooLong, 1, 1))},
		{"kind 0", "kind", second(DeriveTenantKey(k, k, "t", 0, 1))},
		{"kind 3", "kind", second(DeriveTenantKey(k, k, "t", 3, 1))},
		{"epoch 0", "epoch", second(DeriveTenantKey(k, k, "t", 1, 0))},
	}
	for _, c := range cases {
		var ie *InputError
		if !errors.As(c.err, &ie) || ie.Arg != c.arg {
			t.Errorf("%s: got %v, want an *InputError on %q", c.name, c.err, c.arg)
		}
	}
}
