package gcp

import (
	"context"

	"github.com/openbyok/byok/lifecycle"
)

// Platform is what a customer's administrator needs to let the platform
// reach a key: the service account to grant on it.
type Platform struct {
	// ServiceAccount is the platform's service account email, e.g.
	// byok@platform-project.iam.gserviceaccount.com; "" when it is not
	// known (Application Default Credentials without gcp.service_account)
	// or Cloud KMS is not offered.
	ServiceAccount string
	// NotOffered says why Cloud KMS is not offered ("gcp-kms is not
	// offered by this platform"); "" when it is.
	NotOffered string
}

// notOffered is Platform.NotOffered of a platform without the GCP
// connector.
const notOffered = "gcp-kms is not offered by this platform"

// Platform returns the platform's service account: Config.ServiceAccount,
// or else the client_email of Config.CredentialsJSON. It makes no call.
func (c *Connector) Platform(context.Context) Platform {
	return Platform{ServiceAccount: c.cfg.ServiceAccount}
}

// PlatformOf returns the platform offered by src: a GCP [Connector], or a
// lifecycle (a *lifecycle.Service) whose GCP connector it is; anything
// else offers none, with NotOffered "gcp-kms is not offered by this
// platform".
func PlatformOf(ctx context.Context, src any) Platform {
	if lc, ok := src.(interface {
		Connector(name string) (lifecycle.Connector, error)
	}); ok {
		conn, err := lc.Connector(Provider)
		if err != nil {
			return Platform{NotOffered: notOffered}
		}
		src = conn
	}
	c, ok := src.(*Connector)
	if !ok || c == nil {
		return Platform{NotOffered: notOffered}
	}
	return c.Platform(ctx)
}
