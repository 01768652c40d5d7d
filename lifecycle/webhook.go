package lifecycle

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/openbyok/byok/audit"
)

// SignatureHeader carries a webhook's signature: "sha256=" followed by
// the lowercase hex HMAC-SHA256 of the request body under the endpoint's
// secret. A receiver recomputes it over the exact bytes it received and
// compares in constant time ([VerifySignature]); the body's "id" and "at"
// let it reject replays.
const SignatureHeader = "X-Byok-Signature"

// WebhookEvent is the JSON body of a webhook delivery.
type WebhookEvent struct {
	ID     string            `json:"id"`
	Type   string            `json:"type"` // "key.revoked", "key.restored", "key.unavailable", "key.state", "key.rotated", "key.disabled"
	Tenant string            `json:"tenant"`
	At     time.Time         `json:"at"`
	Data   map[string]string `json:"data,omitempty"`
}

// Sign returns the value of [SignatureHeader] for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header is the signature of body under
// secret, comparing in constant time.
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

// notify delivers an event to every webhook, once each, and logs failed
// deliveries: webhooks are best effort; the audit log is the record.
func (s *Service) notify(ctx context.Context, tenant, typ string, data map[string]string) {
	if len(s.cfg.Webhooks) == 0 {
		return
	}
	body, err := json.Marshal(WebhookEvent{ID: audit.NewID(), Type: typ, Tenant: tenant, At: s.cfg.Now().UTC(), Data: data})
	if err != nil {
		s.cfg.Logger.Error("webhook event not encoded", "type", typ, "error", err)
		return
	}
	for _, w := range s.cfg.Webhooks {
		if err := s.deliver(ctx, w, body); err != nil {
			s.cfg.Logger.Warn("webhook not delivered", "url", w.URL, "type", typ, "tenant", tenant, "error", err)
		}
	}
}

func (s *Service) deliver(ctx context.Context, w Webhook, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return nil
}
