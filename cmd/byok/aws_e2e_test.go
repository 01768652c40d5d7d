package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/kms/awskms"
	"github.com/openbyok/byok/server"
	"github.com/openbyok/byok/server/token"
)

const (
	awsPlatform = "arn:aws:iam::999988887777:user/byok-platform" // the platform's principal
	awsCustomer = "111122223333"                                 // the customer's account
	awsRegion   = "eu-west-1"
)

// awsPolicy returns AWS's default key policy of account with the
// statements (JSON arrays, as awskms.KeyPolicyStatement returns them)
// added.
func awsPolicy(t *testing.T, account string, statements ...string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(awsemu.DefaultKeyPolicy(account)), &doc); err != nil {
		t.Fatal(err)
	}
	st, _ := doc["Statement"].([]any)
	for _, s := range statements {
		var more []any
		if err := json.Unmarshal([]byte(s), &more); err != nil {
			t.Fatalf("statements %s: %v", s, err)
		}
		st = append(st, more...)
	}
	doc["Statement"] = st
	b, _ := json.Marshal(doc)
	return string(b)
}

// awsJourney is byok serve's wiring with an aws: block, on a loopback
// port, against awsemu reached through the official AWS SDK (kms/awskms).
type awsJourney struct {
	t        *testing.T
	emu      *awsemu.Emulator
	c        api
	operator string
	logs     *lockedBuffer
}

func startAWSJourney(t *testing.T) *awsJourney {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	emu, err := awsemu.Start(awsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	ak, err := emu.AddUser(awsPlatform, awsemu.AccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Store.SQLite = filepath.Join(dir, "byok.db")
	cfg.PlatformKey.File = filepath.Join(dir, "platform.key")
	cfg.Keyring.CheckInterval = e2eCheckInterval
	cfg.Keyring.MaxStaleness = time.Minute
	cfg.AWS = &config.AWS{Region: awsRegion, Credentials: config.AWSCredentials{AccessKey: &config.AWSAccessKey{IDEnv: "BYOK_AWS_KEY", SecretEnv: "BYOK_AWS_SECRET"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BYOK_AWS_KEY": ak.ID, "BYOK_AWS_SECRET": ak.Secret}
	logs := &lockedBuffer{b: &bytes.Buffer{}}
	a, err := openApp(ctx, cfg, appOptions{awsHTTPClient: emu.HTTPClient(), getenv: func(k string) string { return env[k] }},
		slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, ln, "", "") }()
	t.Cleanup(func() { cancel(); <-done; a.close() })
	operator, _, err := server.IssueToken(ctx, a.db, token.Operator, nil, "e2e", 0)
	if err != nil {
		t.Fatal(err)
	}
	j := &awsJourney{t: t, emu: emu, c: api{t: t, base: "http://" + ln.Addr().String()}, operator: operator, logs: logs}
	t.Cleanup(func() {
		for _, s := range []string{ak.Secret, operator} {
			if strings.Contains(logs.String(), s) {
				t.Error("a secret or token appears in the server's logs")
			}
		}
	})
	return j
}

// tenant creates a tenant with the scopes chat and analytics and returns
// an API client for it with its admin and service tokens.
func (j *awsJourney) tenant(id string) (c api, admin, service string) {
	c = j.c
	c.tenant = id
	c.must(j.operator, "POST", "/v1/tenants", map[string]any{"id": id, "policy": "grace", "scopes": []string{"chat", "analytics"}}, nil)
	var adminTok, serviceTok struct{ Token string }
	c.must(j.operator, "POST", "/v1/tokens", map[string]any{"kind": "tenant-admin", "tenants": []string{id}, "name": "admin"}, &adminTok)
	c.must(j.operator, "POST", "/v1/tokens", map[string]any{"kind": "service", "tenants": []string{id}, "name": "app"}, &serviceTok)
	return c, adminTok.Token, serviceTok.Token
}

type awsReport struct {
	Passed bool
	Checks []struct{ Name, Outcome, Detail, Remedy string }
}

// firstFailure returns the name and remedy of the report's first failed
// check.
func (r awsReport) firstFailure() (name, remedy string) {
	for _, ch := range r.Checks {
		if ch.Outcome == "fail" {
			return ch.Name, ch.Remedy
		}
	}
	return "", ""
}

// data is a tenant's encrypt and decrypt through the API.
type data struct {
	t       *testing.T
	c       api
	service string
}

func (d data) encrypt(scope, msg string) string {
	d.t.Helper()
	var out struct{ Ciphertext string }
	d.c.must(d.service, "POST", "/v1/tenants/"+d.c.tenant+"/encrypt", map[string]any{"scope": scope, "plaintext": base64.StdEncoding.EncodeToString([]byte(msg))}, &out)
	return out.Ciphertext
}

func (d data) decrypt(scope, ct string) (string, int, string) {
	var out struct{ Plaintext string }
	status, code := d.c.call(d.service, "POST", "/v1/tenants/"+d.c.tenant+"/decrypt", map[string]any{"scope": scope, "ciphertext": ct}, &out)
	pt, _ := base64.StdEncoding.DecodeString(out.Plaintext)
	return string(pt), status, code
}

func (d data) mustDecrypt(scope, ct, want string) {
	d.t.Helper()
	if got, status, code := d.decrypt(scope, ct); status != 200 || got != want {
		d.t.Fatalf("decrypt %s: %d %s %q, want %q", scope, status, code, got, want)
	}
}

// failsClosed waits until the covered scope is refused as revoked, within
// the check interval + 5 s, and returns how long it took.
func (d data) failsClosed(what, scope, ct string) time.Duration {
	d.t.Helper()
	return waitFor(d.t, "fail closed after "+what, e2eCheckInterval+5*time.Second, func() bool {
		_, status, code := d.decrypt(scope, ct)
		return status == 403 && code == "key_revoked"
	})
}

// restored waits until the covered scope decrypts again.
func (d data) restored(what, scope, ct string) time.Duration {
	d.t.Helper()
	return waitFor(d.t, "service back after "+what, e2eCheckInterval+5*time.Second, func() bool {
		_, status, _ := d.decrypt(scope, ct)
		return status == 200
	})
}

// rotateNow asks for a rotation to the key's current version (for AWS: the
// key the alias points to now; a new wrap of the share otherwise) and
// waits for the tenant to be active on wantKey. The monitor may have
// started the same rotation first (409): then it waits for that one.
func rotateNow(t *testing.T, c api, admin, wantKey string) {
	t.Helper()
	var job struct{ State string }
	status, code := c.call(admin, "POST", "/v1/tenants/"+c.tenant+"/key/rotate", map[string]any{}, &job)
	switch {
	case status == 409:
	case status >= 300:
		t.Fatalf("POST rotate: %d %s", status, code)
	case job.State != "done":
		t.Fatalf("rotation job: %s", job.State)
	}
	waitFor(t, "rotation to "+wantKey, 30*time.Second, func() bool {
		s := c.status(admin)
		return s.State == "active" && s.CurrentKeyID == wantKey
	})
}

type inventoryRow struct {
	KeyID        string `json:"key_id"`
	Shares       int
	SafeToRetire bool `json:"safe_to_retire"`
}

func inventory(c api, admin string) map[string]inventoryRow {
	var inv struct{ Versions []inventoryRow }
	c.must(admin, "GET", "/v1/tenants/"+c.tenant+"/key/inventory", nil, &inv)
	out := map[string]inventoryRow{}
	for _, v := range inv.Versions {
		out[v.KeyID] = v
	}
	return out
}

// TestEndToEndAWS runs the customer's journey with a key in AWS KMS,
// reached as the platform's own principal that the key policy names,
// through the HTTP API of the real service against awsemu.
func TestEndToEndAWS(t *testing.T) {
	j := startAWSJourney(t)
	emu := j.emu
	// The customer's key, behind an alias, with AWS's default key policy:
	// the platform is not in it yet.
	key1, err := emu.CreateKey(awsemu.KeySpec{Account: awsCustomer, Region: awsRegion, Aliases: []string{"alias/byok"}, Rotation: true})
	if err != nil {
		t.Fatal(err)
	}
	alias := "arn:aws:kms:" + awsRegion + ":" + awsCustomer + ":alias/byok"
	c, admin, service := j.tenant("acme")
	d := data{t: t, c: c, service: service}

	// Configure, then Test: it fails, and its remedy is the statement to
	// paste into the key policy.
	c.must(admin, "PUT", "/v1/tenants/acme/key", map[string]any{"provider": "aws-kms", "key_id": alias}, nil)
	var rep awsReport
	c.must(admin, "POST", "/v1/tenants/acme/key/test", nil, &rep)
	statement := awskms.KeyPolicyStatement(awsPlatform, "acme")
	if name, remedy := rep.firstFailure(); rep.Passed || !strings.Contains(remedy, statement) {
		t.Fatalf("Test without the key policy statement: passed %v, first failure %s with remedy %q; want the statement to paste:\n%s", rep.Passed, name, remedy, statement)
	}
	if status, code := c.call(admin, "POST", "/v1/tenants/acme/key/proceed", map[string]any{"enforce_at": time.Now().Add(time.Hour)}, nil); status != 409 {
		t.Fatalf("Proceed after a failed test: %d %s, want 409", status, code)
	}
	granted := awsPolicy(t, awsCustomer, statement)
	if err := emu.PutKeyPolicy(key1.ARN, granted); err != nil {
		t.Fatal(err)
	}
	c.must(admin, "POST", "/v1/tenants/acme/key/test", nil, &rep)
	if !rep.Passed {
		t.Fatalf("Test fails with the statement pasted: %+v", rep.Checks)
	}

	// Proceed: chat is covered, analytics is not.
	c.must(admin, "POST", "/v1/tenants/acme/key/proceed", map[string]any{
		"enforce_at": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano),
		"coverage":   map[string]any{"all": true, "exclude": []string{"analytics"}},
	}, nil)
	waitFor(t, "activation", 30*time.Second, func() bool { return c.status(admin).State == "active" })
	if cur := c.status(admin).CurrentKeyID; cur != key1.ARN {
		t.Fatalf("current key after activation: %s, want the key ARN behind the alias %s", cur, key1.ARN)
	}
	chat := d.encrypt("chat", "covered by the customer's key")
	analytics := d.encrypt("analytics", "platform-managed")
	d.mustDecrypt("chat", chat, "covered by the customer's key")

	// The customer's KMS rotates the key material on demand: same key
	// ARN, nothing to re-wrap; a new wrap of the share (whose ciphertext
	// names the old backing key) still unwraps.
	if err := emu.RotateKey(key1.ARN); err != nil {
		t.Fatal(err)
	}
	rotateNow(t, c, admin, key1.ARN)
	d.mustDecrypt("chat", chat, "covered by the customer's key")
	if inv := inventory(c, admin); inv[key1.ARN].Shares != 1 || inv[key1.ARN].SafeToRetire {
		t.Fatalf("inventory after KMS rotated the key material: %+v; the key must still hold the share", inv)
	}

	// The customer points the alias at a new key: byok follows it, and the
	// old key is safe to retire (here: scheduled for deletion, and nothing
	// breaks).
	key2, err := emu.CreateKey(awsemu.KeySpec{Account: awsCustomer, Region: awsRegion, Rotation: true, Policy: granted})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.PutAlias(alias, key2.ARN); err != nil {
		t.Fatal(err)
	}
	rotateNow(t, c, admin, key2.ARN)
	inv := inventory(c, admin)
	if old, cur := inv[key1.ARN], inv[key2.ARN]; !old.SafeToRetire || old.Shares != 0 || cur.Shares != 1 || cur.SafeToRetire {
		t.Fatalf("inventory after the alias moved: %+v; want %s safe to retire and %s holding the share", inv, key1.ARN, key2.ARN)
	}
	if err := emu.ScheduleKeyDeletion(key1.ARN, 7); err != nil {
		t.Fatal(err)
	}
	d.mustDecrypt("chat", chat, "covered by the customer's key")

	// Revoke by disabling the key: the covered scope fails closed within
	// the check interval, the other keeps working; enabling restores.
	if err := emu.DisableKey(key2.ARN); err != nil {
		t.Fatal(err)
	}
	revokedDisable := d.failsClosed("the key was disabled", "chat", chat)
	d.mustDecrypt("analytics", analytics, "platform-managed")
	if status, code := c.call(service, "POST", "/v1/tenants/acme/encrypt", map[string]any{"scope": "chat", "plaintext": "eA=="}, nil); status != 403 || code != "key_revoked" {
		t.Fatalf("encrypt in the covered scope after revocation: %d %s", status, code)
	}
	if err := emu.EnableKey(key2.ARN); err != nil {
		t.Fatal(err)
	}
	restoredEnable := d.restored("the key was enabled", "chat", chat)
	waitFor(t, "the monitor marks the key active again", 3*e2eCheckInterval+5*time.Second, func() bool { return c.status(admin).State == "active" })

	// Revoke again by removing the statement from the key policy.
	if err := emu.PutKeyPolicy(key2.ARN, awsemu.DefaultKeyPolicy(awsCustomer)); err != nil {
		t.Fatal(err)
	}
	revokedPolicy := d.failsClosed("the key policy statement was removed", "chat", chat)
	if err := emu.PutKeyPolicy(key2.ARN, granted); err != nil {
		t.Fatal(err)
	}
	restoredPolicy := d.restored("the statement was put back", "chat", chat)
	waitFor(t, "the monitor marks the key active again", 3*e2eCheckInterval+5*time.Second, func() bool { return c.status(admin).State == "active" })

	// Disable BYOK, then disable the key: everything still decrypts.
	c.must(admin, "POST", "/v1/tenants/acme/key/disable", nil, nil)
	waitFor(t, "disable", 30*time.Second, func() bool {
		s := c.status(admin)
		for _, sc := range s.Scopes {
			if sc.Kind != "platform-managed" {
				return false
			}
		}
		return s.State == "disabled"
	})
	if err := emu.DisableKey(key2.ARN); err != nil {
		t.Fatal(err)
	}
	start := time.Now() // several health checks pass
	waitFor(t, "three check intervals with the key disabled", 10*e2eCheckInterval+5*time.Second, func() bool {
		d.mustDecrypt("chat", chat, "covered by the customer's key")
		d.mustDecrypt("analytics", analytics, "platform-managed")
		return time.Since(start) > 3*e2eCheckInterval
	})
	d.mustDecrypt("chat", d.encrypt("chat", "after disable"), "after disable")

	// Every KMS call that succeeded carried the tenant in its encryption
	// context, which the customer sees in CloudTrail (Test configuration's
	// probe with another tenant's context was refused), and what the share
	// is for: Test configuration's own probe, or the customer-managed key
	// of an epoch, as the keyring and the lifecycle bind it.
	shares := 0
	for _, call := range emu.Calls() {
		if call.Service != "kms" || call.ErrorCode != "" || call.Op != "Encrypt" && call.Op != "Decrypt" {
			continue
		}
		ec := call.EncryptionContext
		if ec[awskms.ContextTenant] != "acme" {
			t.Fatalf("%s without the tenant in its encryption context: %+v", call.Op, call)
		}
		switch ec[awskms.ContextKind] {
		case "test-configuration":
		case "customer-managed":
			if ec[awskms.ContextEpoch] == "" || ec[awskms.ContextEpoch] == "0" {
				t.Fatalf("%s of a customer share without its epoch: %+v", call.Op, call)
			}
			shares++
		default:
			t.Fatalf("%s without the kind of key its share is for: %+v", call.Op, call)
		}
	}
	if shares == 0 {
		t.Fatal("no KMS call wrapped or unwrapped a customer share")
	}

	// The audit log names, for each vault call, the request id AWS gave it
	// (the id CloudTrail records), beside byok's own.
	awsIDs := map[string]bool{}
	for _, call := range emu.Calls() {
		if call.Service == "kms" && call.RequestID != "" {
			awsIDs[call.RequestID] = true
		}
	}
	var events struct {
		Events []struct {
			Action  string            `json:"action"`
			Details map[string]string `json:"details"`
		} `json:"events"`
	}
	c.must(admin, "GET", "/v1/tenants/acme/audit?action=vault.&limit=1000", nil, &events)
	named := 0
	for _, e := range events.Events {
		if id := e.Details["provider_request_id"]; id != "" {
			if !awsIDs[id] {
				t.Fatalf("%s names AWS request id %q, which no KMS call had", e.Action, id)
			}
			named++
		}
	}
	if named == 0 || named < len(events.Events)/2 {
		t.Fatalf("%d of %d vault calls in the audit log name their AWS request id", named, len(events.Events))
	}
	t.Logf("revocation enforced %v after the key was disabled, %v after the statement was removed; restored %v after enabling, %v after the statement came back (check interval %v)",
		revokedDisable.Round(time.Millisecond), revokedPolicy.Round(time.Millisecond), restoredEnable.Round(time.Millisecond), restoredPolicy.Round(time.Millisecond), e2eCheckInterval)
}

// TestEndToEndAWSRole runs the AssumeRole path through the API: the
// tenant's settings name a role in the customer's account and the
// external id byok generated; a trust policy with another external id, or
// none, fails Test configuration with the trust policy to paste; the right
// one passes, and the key serves the tenant.
func TestEndToEndAWSRole(t *testing.T) {
	j := startAWSJourney(t)
	emu := j.emu
	const role = "arn:aws:iam::" + awsCustomer + ":role/byok-access"
	key, err := emu.CreateKey(awsemu.KeySpec{Account: awsCustomer, Region: awsRegion, Rotation: true,
		Policy: awsPolicy(t, awsCustomer, awskms.KeyPolicyStatement(role, "globex"))})
	if err != nil {
		t.Fatal(err)
	}
	extID := awskms.NewExternalID()
	if err := emu.PutRole(role, awskms.TrustPolicy(awsPlatform, "byok-pasted-from-another-tenant")); err != nil {
		t.Fatal(err)
	}
	c, admin, service := j.tenant("globex")
	d := data{t: t, c: c, service: service}
	c.must(admin, "PUT", "/v1/tenants/globex/key", map[string]any{"provider": "aws-kms", "key_id": key.ARN, "role_arn": role, "external_id": extID}, nil)
	var view struct {
		Settings map[string]any
	}
	c.must(admin, "GET", "/v1/tenants/globex/key", nil, &view)
	if view.Settings["role_arn"] != role || view.Settings["external_id"] != extID || view.Settings["provider"] != "aws-kms" {
		t.Fatalf("settings read back: %v", view.Settings)
	}

	trust := awskms.TrustPolicy(awsPlatform, extID)
	var rep awsReport
	c.must(admin, "POST", "/v1/tenants/globex/key/test", nil, &rep)
	if name, remedy := rep.firstFailure(); rep.Passed || name != awskms.CheckAssumeRole || !strings.Contains(remedy, trust) {
		t.Fatalf("Test with another external id in the trust policy: passed %v, first failure %s with remedy %q; want %s with the trust policy:\n%s",
			rep.Passed, name, remedy, awskms.CheckAssumeRole, trust)
	}
	// A trust policy without the external id condition lets anyone who
	// knows the role in (the confused deputy): refused too.
	open := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + awsPlatform + `"},"Action":"sts:AssumeRole"}]}`
	if err := emu.PutRole(role, open); err != nil {
		t.Fatal(err)
	}
	c.must(admin, "POST", "/v1/tenants/globex/key/test", nil, &rep)
	if name, remedy := rep.firstFailure(); rep.Passed || name != awskms.CheckExternalID || !strings.Contains(remedy, trust) {
		t.Fatalf("Test with a trust policy that does not require the external id: passed %v, first failure %s with remedy %q; want %s with the trust policy",
			rep.Passed, name, remedy, awskms.CheckExternalID)
	}
	if err := emu.PutRole(role, trust); err != nil {
		t.Fatal(err)
	}
	c.must(admin, "POST", "/v1/tenants/globex/key/test", nil, &rep)
	if !rep.Passed {
		t.Fatalf("Test with the trust policy pasted: %+v", rep.Checks)
	}

	c.must(admin, "POST", "/v1/tenants/globex/key/proceed", map[string]any{"enforce_at": time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)}, nil)
	waitFor(t, "activation", 30*time.Second, func() bool { return c.status(admin).State == "active" })
	chat := d.encrypt("chat", "through the customer's role")
	d.mustDecrypt("chat", chat, "through the customer's role")
	assumed := false
	for _, call := range emu.Calls() {
		if call.Service == "kms" && call.ErrorCode == "" && call.Op == "Encrypt" && strings.Contains(call.Principal, ":assumed-role/byok-access/") {
			assumed = true
		}
	}
	if !assumed {
		t.Fatal("no KMS call was made as a session of the customer's role")
	}

	// A key policy that no longer lets the role in revokes at once (a role
	// session outlives a trust policy change, not a key policy change).
	// AWS's default policy would not do: it delegates to the account's
	// IAM policies, and the role is the customer's own.
	adminOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + awsCustomer + `:user/admin"},"Action":"kms:*","Resource":"*"}]}`
	if err := emu.PutKeyPolicy(key.ARN, adminOnly); err != nil {
		t.Fatal(err)
	}
	d.failsClosed("the role's statement was removed", "chat", chat)
}
