package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	sdkconfig "github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/lifecycle/aws"
)

// awsConnector returns the connector of AWS KMS with the platform's AWS
// access the aws: block describes: its credentials (the SDK's default
// chain unless the block names web_identity, access_key or profile), its
// principal, endpoints and CA file. It asks STS once who the platform is
// and logs it (a warning if STS does not answer: customers then cannot be
// told which principal to grant, but byok still starts).
func awsConnector(ctx context.Context, c config.AWS, opts appOptions, logger *slog.Logger) (*aws.Connector, error) {
	region := c.Region
	if region == "" {
		region = opts.getenv("AWS_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	var client sdkaws.HTTPClient
	switch {
	case opts.awsHTTPClient != nil:
		client = opts.awsHTTPClient
	case c.CAFile != "":
		hc, err := httpClientTrusting("aws.ca_file", c.CAFile)
		if err != nil {
			return nil, err
		}
		client = hc
	}
	creds, err := awsCredentials(ctx, c, region, client, opts.getenv)
	if err != nil {
		return nil, err
	}
	conn, err := aws.New(aws.Config{Credentials: creds, PlatformPrincipal: c.PlatformPrincipal, Region: region,
		Endpoint: c.Endpoint, STSEndpoint: c.STSEndpoint, HTTPClient: client, Timeout: c.Timeout,
		SessionDuration: c.SessionDuration, Logger: logger})
	if err != nil {
		return nil, err
	}
	if p := conn.Platform(ctx); p.Principal != "" {
		logger.Info("aws-kms offered: customers grant the platform's principal in their key policy or role trust policy", "principal", p.Principal)
	} else {
		logger.Warn("aws-kms offered, but STS did not say who the platform is: check the platform's AWS credentials, or set aws.platform_principal")
	}
	return conn, nil
}

// awsCredentials returns the platform's own AWS credentials: nil (the
// SDK's default chain, which aws.New loads) when the block names none.
func awsCredentials(ctx context.Context, c config.AWS, region string, client sdkaws.HTTPClient, getenv func(string) string) (sdkaws.CredentialsProvider, error) {
	cr := c.Credentials
	switch {
	case cr.AccessKey != nil:
		k := cr.AccessKey
		id, secret := getenv(k.IDEnv), getenv(k.SecretEnv)
		if id == "" || secret == "" {
			return nil, fmt.Errorf("aws.credentials.access_key names %s and %s, and one of them is empty or unset: set both to the platform's access key (or use web_identity, or the SDK's default chain, which need no key)", k.IDEnv, k.SecretEnv)
		}
		token := ""
		if k.SessionTokenEnv != "" {
			token = getenv(k.SessionTokenEnv)
		}
		return awscreds.NewStaticCredentialsProvider(id, secret, token), nil
	case cr.WebIdentity != nil:
		w := cr.WebIdentity
		if err := checkTokenFile("aws.credentials.web_identity.token_file", w.TokenFile); err != nil {
			return nil, err
		}
		var base *string
		if c.STSEndpoint != "" {
			base = &c.STSEndpoint
		}
		stsClient := sts.New(sts.Options{Region: region, HTTPClient: client, BaseEndpoint: base, AppID: "byok"})
		p := stscreds.NewWebIdentityRoleProvider(stsClient, w.RoleARN, stscreds.IdentityTokenFile(w.TokenFile), func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = w.SessionName
			if o.RoleSessionName == "" {
				o.RoleSessionName = "byok"
			}
		})
		return sdkaws.NewCredentialsCache(p), nil
	case cr.Profile != "":
		ac, err := sdkconfig.LoadDefaultConfig(ctx, sdkconfig.WithSharedConfigProfile(cr.Profile), sdkconfig.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("aws.credentials.profile %q: %w", cr.Profile, err)
		}
		return ac.Credentials, nil
	}
	return nil, nil
}

// httpClientTrusting returns an HTTP client that trusts the CA
// certificates of the PEM file besides the system's.
func httpClientTrusting(field, file string) (*http.Client, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate; give the CA certificate of the endpoint (e.g. awsemu's ca.pem)", field, file)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = t.TLSClientConfig.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = new(tls.Config)
	}
	t.TLSClientConfig.RootCAs = pool
	return &http.Client{Transport: t}, nil
}
