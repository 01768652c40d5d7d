package awskms

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKeyARN(t *testing.T) {
	for _, tt := range []struct {
		in, want, reason string
	}{
		{in: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", want: "key"},
		{in: "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", want: "mrk"},
		{in: "arn:aws:kms:eu-west-1:111122223333:alias/byok/prod", want: "alias"},
		{in: "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", want: "key"},
		{in: "arn:aws-cn:kms:cn-north-1:111122223333:alias/byok", want: "alias"},
		{in: "", reason: "it is empty"},
		{in: "1234abcd-12ab-34cd-56ef-1234567890ab", reason: "bare key id"},
		{in: "alias/byok", reason: "bare alias name"},
		{in: "arn:aws:kms:eu-west-1:111122223333", reason: "does not have the form"},
		{in: "arn:azure:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", reason: "partition"},
		{in: "arn:aws:s3:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", reason: `"s3" service`},
		{in: "arn:aws:kms:europe:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", reason: "region"},
		{in: "arn:aws:kms:eu-west-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab", reason: "12-digit"},
		{in: "arn:aws:kms:eu-west-1:111122223333:key/1234ABCD-12ab-34cd-56ef-1234567890ab", reason: "in lower case"},
		{in: "arn:aws:kms:eu-west-1:111122223333:alias/aws/ebs", reason: "AWS managed key"},
		{in: "arn:aws:kms:eu-west-1:111122223333:grant/x", reason: "neither key/"},
	} {
		a, err := ParseKeyARN(tt.in)
		switch {
		case tt.reason != "":
			var ae *ARNError
			if err == nil || !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), "arn:aws:kms:eu-west-1:111122223333:key/") {
				t.Errorf("ParseKeyARN(%q) = %v, want an error with %q and an example", tt.in, err, tt.reason)
			} else if ce := Classify("wrap", tt.in, err); ce.Class.String() != "invalid" || !errors.As(err, &ae) {
				t.Errorf("ParseKeyARN(%q): class %v", tt.in, ce.Class)
			}
		case err != nil:
			t.Errorf("ParseKeyARN(%q): %v", tt.in, err)
		case a.String() != tt.in:
			t.Errorf("ParseKeyARN(%q).String() = %q", tt.in, a.String())
		case (tt.want == "alias") != a.IsAlias() || (tt.want == "mrk") != a.MultiRegion():
			t.Errorf("ParseKeyARN(%q) = %+v, want a %s", tt.in, a, tt.want)
		}
	}
}

func TestAlgorithmRoundTrip(t *testing.T) {
	for _, b := range []Binding{{Kind: "customer-managed", Epoch: 0}, {Kind: "platform_managed", Epoch: 4294967295}} {
		alg, err := algorithm(b, true)
		if err != nil {
			t.Fatal(err)
		}
		got, has, err := parseAlgorithm(alg)
		if err != nil || !has || got != b {
			t.Errorf("parseAlgorithm(%q) = %+v, %v, %v", alg, got, has, err)
		}
	}
	for _, bad := range []string{"RSAES_OAEP_SHA_256", "SYMMETRIC_DEFAULT;kind=;epoch=1", "SYMMETRIC_DEFAULT;kind=a;epoch=01",
		"SYMMETRIC_DEFAULT;kind=a;epoch=4294967296", "SYMMETRIC_DEFAULT;kind=a b;epoch=1", "SYMMETRIC_DEFAULT;kind=a"} {
		if _, _, err := parseAlgorithm(bad); err == nil {
			t.Errorf("parseAlgorithm(%q) accepted it", bad)
		}
	}
	if _, err := algorithm(Binding{Kind: "with space"}, true); err == nil {
		t.Error("a kind with a space was accepted")
	}
}
