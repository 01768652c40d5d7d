package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/openbyok/byok/kms/gcpkms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/gcp"
)

// gcpSetup is the data of the Google Cloud KMS form.
type gcpSetup struct {
	// KeyName is the saved crypto key resource name ("" before GCP
	// settings are saved).
	KeyName string
	// Platform is the platform's service account, which the customer
	// grants on the key; Platform.NotOffered says why Cloud KMS cannot be
	// used when ServiceAccount is empty.
	Platform gcp.Platform
	// EncrypterCommand and ViewerCommand are the gcloud lines that grant
	// roles/cloudkms.cryptoKeyEncrypterDecrypter and roles/cloudkms.viewer
	// on the key to the platform's service account, built from KeyName
	// (placeholders before a key name is saved).
	EncrypterCommand, ViewerCommand string
}

// placeholderGCPKey stands for the customer's key in the gcloud lines
// shown before a key name is saved.
var placeholderGCPKey = gcpkms.KeyName{Project: "PROJECT", Location: "LOCATION", KeyRing: "RING", CryptoKey: "KEY"}

// gcpSteps returns the GCP form's data for k's saved settings.
func (c *console) gcpSteps(ctx context.Context, k lifecycle.CustomerKey) *gcpSetup {
	g := &gcpSetup{Platform: gcp.PlatformOf(ctx, c.cfg.Lifecycle)}
	if k.Settings.Provider == gcp.Provider {
		g.KeyName = k.Settings.KeyID
	}
	name, err := gcpkms.ParseKeyName(g.KeyName)
	if err != nil {
		name = placeholderGCPKey
	}
	name.Version = 0
	g.EncrypterCommand = gcpkms.GrantCommand(name, g.Platform.ServiceAccount, gcpkms.RoleEncrypterDecrypter)
	g.ViewerCommand = gcpkms.GrantCommand(name, g.Platform.ServiceAccount, gcpkms.RoleViewer)
	return g
}

// configureGCP saves the GCP form (the key's resource name) through
// Lifecycle.Configure, which checks the name's form; a refusal goes back
// to the GCP form with its text.
func (c *console) configureGCP(w http.ResponseWriter, r *http.Request, s *session) {
	back := c.tenantURL(s.tenant, "setup") + "?provider=" + url.QueryEscape(gcp.Provider)
	settings := gcp.Settings(strings.TrimSpace(r.PostFormValue("key_id")))
	_, err := c.cfg.Lifecycle.Configure(r.Context(), actor(s), s.tenant, settings)
	c.done(w, r, s, err, back, "Settings saved. Run Test configuration next.")
}
