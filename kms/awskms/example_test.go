package awskms_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/openbyok/byok/awsemu"
	"github.com/openbyok/byok/kms/awskms"
)

// A connector builds the configuration from a tenant's settings (key ARN,
// role ARN and external id, tenant) and the platform's own credentials,
// runs Test configuration, and then uses the Provider. Here the customer's
// account is awsemu.
func Example() {
	emu, _ := awsemu.Start(awsemu.Options{})
	defer emu.Close()
	platform, _ := emu.AddUser("arn:aws:iam::999988887777:user/byok-platform", awsemu.AccessKey{})
	key, _ := emu.CreateKey(awsemu.KeySpec{Account: "111122223333", Region: "eu-west-1", Rotation: true})
	emu.PutRole("arn:aws:iam::111122223333:role/byok-access",
		awskms.TrustPolicy("arn:aws:iam::999988887777:user/byok-platform", "byok-ext-7d2f"))

	cfg := awskms.Config{
		KeyARN:      key.ARN,
		Tenant:      "contoso",
		RoleARN:     "arn:aws:iam::111122223333:role/byok-access",
		ExternalID:  "byok-ext-7d2f",
		Credentials: credentials.NewStaticCredentialsProvider(platform.ID, platform.Secret, ""),
		HTTPClient:  emu.HTTPClient(), // the emulator; nil in production
	}
	report := awskms.TestConfiguration(context.Background(), cfg)
	for _, c := range report.Checks {
		fmt.Println(c.Name, c.Status)
	}

	p, _ := awskms.New(cfg)
	w, _ := p.Wrap(context.Background(), cfg.KeyARN, []byte("a 32-byte share ................"))
	ec, _ := awskms.EncryptionContext(cfg.Tenant, w.Algorithm)
	fmt.Println(w.KeyID == key.ARN, ec)
	// Output:
	// key-arn pass
	// settings pass
	// dns pass
	// tcp pass
	// tls pass
	// credentials pass
	// assume-role pass
	// external-id-required pass
	// key-read pass
	// key-manager pass
	// key-spec pass
	// key-usage pass
	// key-state pass
	// rotation pass
	// permissions pass
	// tenant-binding skip
	// round-trip pass
	// latency pass
	// true map[byok:tenant:contoso]
}
