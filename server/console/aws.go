package console

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"

	"github.com/openbyok/byok/kms/awskms"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/aws"
	"github.com/openbyok/byok/lifecycle/azure"
	"github.com/openbyok/byok/lifecycle/gcp"
)

// providerChoice is one key provider the Create key form has a form for.
type providerChoice struct {
	// Name is the provider's name in settings (KeySettings.Provider).
	Name string
	// Label names it for people.
	Label string
}

// knownProviders are the providers the console has forms for, in the
// order the choice lists them; a deployment offers those its lifecycle
// has a connector for.
var knownProviders = []providerChoice{
	{Name: azure.Provider, Label: "Azure Key Vault (or Managed HSM)"},
	{Name: aws.Provider, Label: "AWS KMS"},
	{Name: gcp.Provider, Label: "Google Cloud KMS"},
}

// providerLabel names a provider for people: its label, or its name when
// the console has no form for it.
func providerLabel(name string) string {
	for _, p := range knownProviders {
		if p.Name == name {
			return p.Label
		}
	}
	return name
}

// connectorSource is what the console needs to learn which providers the
// lifecycle offers; *lifecycle.Service has it.
type connectorSource interface {
	Connector(name string) (lifecycle.Connector, error)
}

// offeredProviders returns the known providers the console's Lifecycle
// has a connector for. A Lifecycle that cannot say offers Azure only, the
// console's one form before the choice existed; so does one that offers
// none of the known providers.
func (c *console) offeredProviders() []providerChoice {
	cs, ok := c.cfg.Lifecycle.(connectorSource)
	if !ok {
		return knownProviders[:1]
	}
	var offered []providerChoice
	for _, p := range knownProviders {
		if _, err := cs.Connector(p.Name); err == nil {
			offered = append(offered, p)
		}
	}
	if len(offered) == 0 {
		return knownProviders[:1]
	}
	return offered
}

// providerView is the provider part of the setup page's data.
type providerView struct {
	// Providers are the providers offered; the page shows the choice
	// only when there are several.
	Providers []providerChoice
	// Provider is the chosen one, whose form the page shows.
	Provider string
	// AWS is the AWS form's data; nil unless Provider is AWS's.
	AWS *awsSetup
	// GCP is the Google Cloud KMS form's data; nil unless Provider is
	// GCP's.
	GCP *gcpSetup
}

// awsSetup is the data of the AWS form.
type awsSetup struct {
	// KeyARN is the saved key or alias ARN ("" before AWS settings are
	// saved).
	KeyARN string
	// Options are the saved AWS options, ExternalID being the one the
	// form shows and posts back: the saved one, or else the one generated
	// for this setup and kept in the session.
	Options aws.Options
	// Platform is the platform's principal, which the key policy (or the
	// role's trust policy) names; Platform.NotOffered says why AWS cannot
	// be used when Principal is empty.
	Platform aws.Platform
	// DirectPolicy is the key policy statement of access by the key
	// policy; RolePolicy and TrustPolicy are the key policy statement and
	// the role's trust policy of access by AssumeRole (with a placeholder
	// role ARN before one is saved).
	DirectPolicy, RolePolicy, TrustPolicy string
}

// Values of the AWS form's access field.
const (
	accessKeyPolicy  = "key-policy"
	accessAssumeRole = "assume-role"
)

// Access is the saved access mode: accessAssumeRole when the options name
// a role, else accessKeyPolicy.
func (a *awsSetup) Access() string {
	if a.Options.RoleARN != "" {
		return accessAssumeRole
	}
	return accessKeyPolicy
}

// placeholderRole stands for the customer's role in the key policy
// statement shown before a role ARN is saved.
const placeholderRole = "arn:aws:iam::<your-account-id>:role/<your-role>"

// providerSteps fills v's provider choice, and the AWS form's data when
// AWS or GCP is chosen: the provider of ?provider= if offered, else that of the
// saved settings if offered, else the first offered.
func (c *console) providerSteps(r *http.Request, s *session, v *setupView) {
	v.Providers = c.offeredProviders()
	v.Provider = v.Providers[0].Name
	for _, want := range []string{r.URL.Query().Get("provider"), v.Key.Settings.Provider} {
		if offersProvider(v.Providers, want) {
			v.Provider = want
			break
		}
	}
	if v.Provider == aws.Provider {
		v.AWS = c.awsSteps(r.Context(), s, v.Key)
	}
	if v.Provider == gcp.Provider {
		v.GCP = c.gcpSteps(r.Context(), v.Key)
	}
}

// offersProvider says whether name is one of ps.
func offersProvider(ps []providerChoice, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// awsSteps returns the AWS form's data for k's saved settings. Without a
// saved external id, one is generated once for this setup and kept in the
// session until the settings are saved with it.
func (c *console) awsSteps(ctx context.Context, s *session, k lifecycle.CustomerKey) *awsSetup {
	a := &awsSetup{Platform: aws.PlatformOf(ctx, c.cfg.Lifecycle)}
	if k.Settings.Provider == aws.Provider {
		a.KeyARN = k.Settings.KeyID
		a.Options, _ = aws.OptionsOf(k.Settings)
	}
	if a.Options.ExternalID == "" {
		if s.data.ExternalID == "" {
			s.data.ExternalID = awskms.NewExternalID()
			c.sessions.save(s)
		}
		a.Options.ExternalID = s.data.ExternalID
	}
	if a.Platform.Principal == "" {
		return a
	}
	a.DirectPolicy, _ = aws.SetupPolicies(a.Platform, aws.Settings(a.KeyARN, aws.Options{}), s.tenant)
	role := aws.Options{RoleARN: a.Options.RoleARN, ExternalID: a.Options.ExternalID}
	if role.RoleARN == "" {
		role.RoleARN = placeholderRole
	}
	a.RolePolicy, a.TrustPolicy = aws.SetupPolicies(a.Platform, aws.Settings(a.KeyARN, role), s.tenant)
	return a
}

// awsSettings reads the AWS form: the key ARN, the access mode, and with
// AssumeRole the role ARN and the external id posted back. The external
// id must be the one byok generated for the tenant (saved, or in the
// session): the customer never chooses it, so no tenant can name another
// tenant's role. A bad field is a *lifecycle.FieldError naming it; the
// lifecycle checks the rest (the ARNs' form) when the settings are saved.
func (c *console) awsSettings(r *http.Request, s *session, k lifecycle.CustomerKey) (lifecycle.KeySettings, error) {
	var o aws.Options
	switch access := r.PostFormValue("access"); access {
	case accessKeyPolicy:
	case accessAssumeRole:
		o.RoleARN = strings.TrimSpace(r.PostFormValue("role_arn"))
		o.ExternalID = strings.TrimSpace(r.PostFormValue("external_id"))
		if o.RoleARN == "" {
			return lifecycle.KeySettings{}, &lifecycle.FieldError{Field: "role_arn", Reason: "is empty; enter the ARN of the role byok assumes (IAM › Roles › your role › ARN), or choose access by the key policy"}
		}
		var saved aws.Options
		if k.Settings.Provider == aws.Provider {
			saved, _ = aws.OptionsOf(k.Settings)
		}
		if !sameText(o.ExternalID, saved.ExternalID) && !sameText(o.ExternalID, s.data.ExternalID) {
			return lifecycle.KeySettings{}, &lifecycle.FieldError{Field: "external_id", Reason: "is not the external id byok generated for your tenant; reload the setup page and use the trust policy it shows"}
		}
	default:
		return lifecycle.KeySettings{}, &lifecycle.FieldError{Field: "access", Reason: "choose how byok reaches your key: by your key policy, or by assuming a role in your account"}
	}
	return aws.Settings(strings.TrimSpace(r.PostFormValue("key_id")), o), nil
}

// sameText says whether a and b are the same non-empty text, in constant
// time.
func sameText(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// configureAWS saves the AWS form through Lifecycle.Configure; a refusal
// goes back to the AWS form with its text.
func (c *console) configureAWS(w http.ResponseWriter, r *http.Request, s *session) {
	back := c.tenantURL(s.tenant, "setup") + "?provider=" + url.QueryEscape(aws.Provider)
	k, err := c.cfg.Lifecycle.Status(r.Context(), s.tenant)
	if err != nil {
		c.internal(w, r, s, err)
		return
	}
	settings, err := c.awsSettings(r, s, k)
	if err == nil {
		_, err = c.cfg.Lifecycle.Configure(r.Context(), actor(s), s.tenant, settings)
	}
	c.done(w, r, s, err, back, "Settings saved. Run Test configuration next.")
}

// awsAccess says in plain words how byok reaches the AWS key of s, for
// the status page; "" for settings that are not AWS's.
func awsAccess(s lifecycle.KeySettings) string {
	if s.Provider != aws.Provider {
		return ""
	}
	o, err := aws.OptionsOf(s)
	switch {
	case err != nil:
		return "unreadable options: save the settings again"
	case o.RoleARN == "":
		return "as the platform's own principal, which your key policy names"
	}
	return "by assuming your role " + o.RoleARN + " with the external id " + o.ExternalID
}
