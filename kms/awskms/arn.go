package awskms

import (
	"fmt"
	"regexp"
	"strings"
)

// KeyARN is a parsed AWS KMS key or alias ARN.
type KeyARN struct {
	// Partition is "aws", "aws-cn" or "aws-us-gov".
	Partition string
	// Region is the key's region, e.g. "eu-west-1".
	Region string
	// Account is the 12-digit id of the account that owns the key.
	Account string
	// KeyID is the key's id (a UUID, or mrk-<32 hex> for a multi-region
	// key); "" for an alias.
	KeyID string
	// Alias is the alias name, e.g. "alias/byok"; "" for a key.
	Alias string
}

// IsAlias reports whether a names an alias.
func (a KeyARN) IsAlias() bool { return a.Alias != "" }

// MultiRegion reports whether a names a multi-region key (mrk-…).
func (a KeyARN) MultiRegion() bool { return strings.HasPrefix(a.KeyID, "mrk-") }

func (a KeyARN) String() string {
	res := "key/" + a.KeyID
	if a.IsAlias() {
		res = a.Alias
	}
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":" + res
}

// ARNError says why a string is not a KMS key or alias ARN, and shows
// one.
type ARNError struct {
	Input  string // the rejected ARN
	Reason string // what is wrong
}

const arnExample = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab (or a multi-region key/mrk-…, or an alias such as arn:aws:kms:eu-west-1:111122223333:alias/byok)"

func (e *ARNError) Error() string {
	return fmt.Sprintf("awskms: %q is not a KMS key ARN: %s; expected an ARN such as %s", e.Input, e.Reason, arnExample)
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
	uuidRE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	mrkRE     = regexp.MustCompile(`^mrk-[0-9a-f]{32}$`)
	aliasRE   = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)
)

// ParseKeyARN parses a KMS key or alias ARN:
//
//	arn:aws:kms:<region>:<account>:key/<uuid or mrk-32hex>
//	arn:aws:kms:<region>:<account>:alias/<name>
//
// in the partitions aws, aws-cn and aws-us-gov. A bare key id or alias
// name is refused: it would resolve in the platform's own account, not the
// customer's. Any other form fails with an [*ARNError].
func ParseKeyARN(s string) (KeyARN, error) {
	bad := func(reason string) (KeyARN, error) { return KeyARN{}, &ARNError{Input: s, Reason: reason} }
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return bad("it is empty")
	case uuidRE.MatchString(strings.ToLower(t)) || mrkRE.MatchString(strings.ToLower(t)):
		return bad("it is a bare key id; give the key's full ARN, which names the customer's account and region")
	case strings.HasPrefix(t, "alias/"):
		return bad("it is a bare alias name; give the alias ARN, which names the customer's account and region")
	}
	parts := strings.SplitN(t, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return bad("it does not have the form arn:<partition>:kms:<region>:<account>:<key or alias>")
	}
	a := KeyARN{Partition: parts[1], Region: parts[3], Account: parts[4]}
	switch {
	case a.Partition != "aws" && a.Partition != "aws-cn" && a.Partition != "aws-us-gov":
		return bad(fmt.Sprintf("the partition %q is not aws, aws-cn or aws-us-gov", a.Partition))
	case parts[2] != "kms":
		return bad(fmt.Sprintf("it is an ARN of the %q service, not of kms", parts[2]))
	case !regionRE.MatchString(a.Region):
		return bad(fmt.Sprintf("the region %q is not a region such as eu-west-1", a.Region))
	case !accountRE.MatchString(a.Account):
		return bad(fmt.Sprintf("the account %q is not a 12-digit account id", a.Account))
	}
	res := parts[5]
	switch {
	case strings.HasPrefix(res, "key/"):
		id := strings.TrimPrefix(res, "key/")
		if !uuidRE.MatchString(id) && !mrkRE.MatchString(id) {
			return bad(fmt.Sprintf("the key id %q is not a UUID or mrk- followed by 32 hexadecimal digits (in lower case)", id))
		}
		a.KeyID = id
	case strings.HasPrefix(res, "alias/"):
		if !aliasRE.MatchString(res) || strings.HasPrefix(res, "alias/aws/") {
			return bad(fmt.Sprintf("the alias %q has characters other than letters, digits, '/', '_' and '-', or names an AWS managed key (alias/aws/…), which cannot be shared", res))
		}
		a.Alias = res
	default:
		return bad(fmt.Sprintf("the resource %q is neither key/<id> nor alias/<name>", res))
	}
	return a, nil
}
