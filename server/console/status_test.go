package console_test

import (
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/azure"
)

// elementText returns the text of the element with id in body, tags removed.
func elementText(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)id="` + id + `"[^>]*>(.*?)</(dd|span)>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no element #%s in the page:\n%s", id, body)
	}
	return strings.TrimSpace(html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(m[1], "")))
}

// What a customer's admin reads on the status page is plain and complete:
// an activation with no data to move yet says so (not "100 % 0 of 0"), a
// revoked key's last check is the failed one and when it was detected
// (not "—"), and why Disable is off is said without jargon.
func TestStatusPageInPlainWords(t *testing.T) {
	f := newFixture(t, false)
	roleID := f.grantRole()
	admin := audit.Actor{Kind: audit.TenantAdmin, ID: "test"}
	if _, err := f.lc.Configure(f.ctx, admin, contoso, azure.Settings(keyID, azure.Options{DirectoryID: directory, ClientID: f.app.ClientID, Credential: azure.CredentialClientSecret}, lifecycle.NewSecret(f.secret))); err != nil {
		t.Fatal(err)
	}
	if r, err := f.lc.Test(f.ctx, admin, contoso); err != nil || !r.Passed() {
		t.Fatalf("Test configuration: %v, passed %v", err, r.Passed())
	}
	if _, err := f.lc.Proceed(f.ctx, admin, contoso, f.clock.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	f.tick()

	u := f.newUser()
	u.signIn(f.tokens[contoso])
	_, body := u.get("/t/contoso/")
	if got := elementText(t, body, "state"); got != "active" {
		t.Fatalf("state after the enforcement date: %q, want active", got)
	}
	if got := elementText(t, body, "job-count"); got != "done: no data to move yet" {
		t.Errorf("the finished activation with no data shows %q, want \"done: no data to move yet\"", got)
	}
	jobURL := regexp.MustCompile(`data-job-url="/console(/t/contoso/jobs/[^"]+)"`).FindStringSubmatch(body)
	if jobURL == nil {
		t.Fatalf("no job on the status page:\n%s", body)
	}
	if _, js := u.get(jobURL[1]); !strings.Contains(js, `"count":"done: no data to move yet"`) {
		t.Errorf("the job's JSON, which the page polls: %s; want its count in words", js)
	}

	// The customer removes the role; the next check fails closed.
	if err := f.emu.RevokeRole(vaultName, roleID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	f.tick()
	_, body = u.get("/t/contoso/")
	if got := elementText(t, body, "state"); got != "revoked" {
		t.Fatalf("state after the role was removed: %q, want revoked", got)
	}
	check := elementText(t, body, "last-check")
	if check == "—" || !strings.Contains(check, "failed: access to the key was refused, detected "+time.Now().UTC().Format("2006")) {
		t.Errorf("last check of a revoked key: %q, want the failed check and when it was detected", check)
	}
	page := html.UnescapeString(body)
	mustContain(t, "the Disable note of a revoked key", page, "turning BYOK off needs your key one last time", "restore the platform's access to the key in your vault, then disable")
	if strings.Contains(page, "must come before") {
		t.Error("the status page still says \"disable must come before revoke\"")
	}
}
