package awsemu_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openbyok/byok/awsemu"
)

// The official SDK talks to the emulator through its HTTPClient; the key
// policy decides who may use the key.
func Example() {
	emu, err := awsemu.Start(awsemu.Options{})
	if err != nil {
		panic(err)
	}
	defer emu.Close()
	platform, _ := emu.AddUser("arn:aws:iam::999988887777:user/byok-platform", awsemu.AccessKey{})
	key, _ := emu.CreateKey(awsemu.KeySpec{Account: "111122223333", Region: "eu-west-1", Aliases: []string{"alias/byok"},
		Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`})

	client := kms.New(kms.Options{Region: "eu-west-1", HTTPClient: emu.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(platform.ID, platform.Secret, "")})
	ctx := context.Background()
	enc, err := client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("arn:aws:kms:eu-west-1:111122223333:alias/byok"), Plaintext: []byte("share")})
	if err != nil {
		panic(err)
	}
	dec, err := client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	fmt.Println(*enc.KeyId == key.ARN, string(dec.Plaintext), err)
	_, err = client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key.ARN)})
	fmt.Println(err != nil, emu.CallCounts()["DescribeKey"])
	// Output:
	// true share <nil>
	// true 1
}
