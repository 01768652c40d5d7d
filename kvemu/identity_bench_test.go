package kvemu

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkTokenClientSecret measures one client-credentials token request
// (secret) through the emulator's HTTPS listener: form parsing, client
// authentication and RS256 signing of the access token.
func BenchmarkTokenClientSecret(b *testing.B) {
	e, err := Start(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	tn, err := e.CreateTenant(Tenant{})
	if err != nil {
		b.Fatal(err)
	}
	app, err := e.CreateApp(App{TenantID: tn.ID})
	if err != nil {
		b.Fatal(err)
	}
	sec, err := e.AddSecret(app.ClientID, Secret{})
	if err != nil {
		b.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID},
		"client_secret": {sec.Value}, "scope": {vaultScope}}.Encode()
	endpoint := "https://login.microsoftonline.com/" + tn.ID + "/oauth2/v2.0/token"
	hc := e.HTTPClient()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := hc.Post(endpoint, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
