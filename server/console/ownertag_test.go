package console_test

import (
	"strings"
	"testing"
)

// TestSetupShowsOwnerTag: next to the admin-consent link the setup page
// shows the tag byok-tenant=<tenant> that the platform's app requires.
func TestSetupShowsOwnerTag(t *testing.T) {
	f := newFixture(t, false)
	u := f.newUser()
	u.signIn(f.tokens[contoso])
	code, body := u.get("/t/contoso/setup")
	if code != 200 || !strings.Contains(body, `id="consent-link"`) {
		t.Fatalf("setup page: %d, consent link shown %v", code, strings.Contains(body, `id="consent-link"`))
	}
	for _, want := range []string{"<code>byok-tenant</code> with the value <code>contoso</code>", "--tags byok-tenant=contoso"} {
		if !strings.Contains(body, want) {
			t.Errorf("the setup page lacks %q", want)
		}
	}
}
