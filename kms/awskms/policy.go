package awskms

import (
	"encoding/json"
	"fmt"
)

// Sids of the statements [KeyPolicyStatement] returns.
const (
	SidDescribe = "byokDescribeKey"
	SidWrap     = "byokEncryptDecrypt"
)

type statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    any                          `json:"Action"`
	Resource  string                       `json:"Resource,omitempty"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// KeyPolicyStatement returns, as indented JSON ready to paste into the
// key policy's Statement array (KMS console > Customer managed keys > the
// key > Key policy > Edit), the two statements byok needs for principal
// (the platform's IAM principal, or the customer's role byok assumes):
// kms:DescribeKey and kms:GetKeyRotationStatus, and kms:Encrypt and
// kms:Decrypt on the condition that the encryption context names tenant
// (kms:EncryptionContext:byok:tenant), so the key serves this byok tenant
// only.
func KeyPolicyStatement(principal, tenant string) string {
	st := []statement{
		{Sid: SidDescribe, Effect: "Allow", Principal: map[string]string{"AWS": principal},
			Action: []string{"kms:DescribeKey", "kms:GetKeyRotationStatus"}, Resource: "*"},
		{Sid: SidWrap, Effect: "Allow", Principal: map[string]string{"AWS": principal},
			Action: []string{"kms:Encrypt", "kms:Decrypt"}, Resource: "*",
			Condition: map[string]map[string]string{"StringEquals": {"kms:EncryptionContext:" + ContextTenant: tenant}}},
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	return string(b)
}

// TrustPolicy returns the trust policy (a whole document, as indented
// JSON) of the customer's role that lets platformPrincipal assume it only
// with externalID: IAM > Roles > the role > Trust relationships > Edit
// trust policy.
func TrustPolicy(platformPrincipal, externalID string) string {
	doc := struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{"2012-10-17", []statement{{Effect: "Allow", Principal: map[string]string{"AWS": platformPrincipal},
		Action: "sts:AssumeRole", Condition: map[string]map[string]string{"StringEquals": {"sts:ExternalId": externalID}}}}}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}

// pasteKeyPolicy is the remedy text that asks for the key policy
// statements.
func pasteKeyPolicy(principal, tenant string) string {
	return fmt.Sprintf("in the KMS console, open Customer managed keys > the key > Key policy > Edit, and add these statements to its Statement array (or grant the same actions in an IAM policy of %s, if the key policy delegates to the account):\n%s",
		principal, KeyPolicyStatement(principal, tenant))
}
