package awskms

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/openbyok/byok/kms"
)

var assumedRoleRE = regexp.MustCompile(`^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/[\w+=,.@-]+$`)

// principalOf returns the ARN to name in a policy for a caller ARN: an
// assumed-role session's role, else the ARN itself.
func principalOf(arn string) string {
	if m := assumedRoleRE.FindStringSubmatch(arn); m != nil {
		return "arn:" + m[1] + ":iam::" + m[2] + ":role/" + m[3]
	}
	return arn
}

// principal is the principal the key policy must name: the role byok
// assumes, else the platform's own principal.
func (t *tester) principal() string {
	if t.cfg.RoleARN != "" {
		return t.cfg.RoleARN
	}
	return t.platform
}

// stsCall runs one STS call with the provider's timeout and records its
// request id.
func (t *tester) stsCall(ctx context.Context, f func(context.Context) (middleware.Metadata, error)) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout())
	defer cancel()
	md, err := f(ctx)
	rid, _ := awsmiddleware.GetRequestIDMetadata(md)
	if err != nil {
		rid = RequestIDOf(err)
	}
	if rid != "" {
		t.stsIDs = append(t.stsIDs, rid)
	}
	return err
}

func (t *tester) checkCredentials(ctx context.Context) {
	if !t.needs(CheckCredentials, CheckSettings) {
		return
	}
	var out *sts.GetCallerIdentityOutput
	err := t.stsCall(ctx, func(ctx context.Context) (middleware.Metadata, error) {
		var err error
		out, err = t.p.stsClient(t.p.stsRegion()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return middleware.Metadata{}, err
		}
		return out.ResultMetadata, nil
	})
	if err != nil {
		ke := Classify("credentials", "", err)
		c := Check{Name: CheckCredentials, Status: Fail, Value: string(ke.Reason), Reason: "STS GetCallerIdentity failed: " + ke.Err.Error()}
		switch ke.Class {
		case kms.Authoritative:
			c.Remedy = "the platform's own AWS credentials are refused (wrong or deleted access key): the platform operator fixes them in byok's configuration; nothing is to change in the customer's account"
		default:
			c.Remedy = "allow outbound HTTPS from the platform to STS (sts.<region>.amazonaws.com), then test again"
		}
		t.add(c)
		return
	}
	t.platform = t.cfg.PlatformPrincipal
	if t.platform == "" {
		t.platform = principalOf(aws.ToString(out.Arn))
	}
	t.report.Principal = t.platform
	t.add(Check{Name: CheckCredentials, Status: Pass, Value: aws.ToString(out.Arn),
		Reason: fmt.Sprintf("the platform signs in to AWS as %s (account %s)", t.platform, aws.ToString(out.Account))})
}

// assume calls AssumeRole with the given external id ("" for none).
func (t *tester) assume(ctx context.Context, externalID, session string) (*sts.AssumeRoleOutput, error) {
	in := &sts.AssumeRoleInput{RoleArn: aws.String(t.cfg.RoleARN), RoleSessionName: aws.String(session),
		DurationSeconds: aws.Int32(int32(t.cfg.sessionDuration().Seconds()))}
	if externalID != "" {
		in.ExternalId = aws.String(externalID)
	}
	var out *sts.AssumeRoleOutput
	err := t.stsCall(ctx, func(ctx context.Context) (middleware.Metadata, error) {
		var err error
		out, err = t.p.stsClient(t.p.stsRegion()).AssumeRole(ctx, in)
		if err != nil {
			return middleware.Metadata{}, err
		}
		return out.ResultMetadata, nil
	})
	return out, err
}

func (t *tester) roleName() string {
	return t.cfg.RoleARN[strings.LastIndex(t.cfg.RoleARN, "/")+1:]
}

func (t *tester) checkAssumeRole(ctx context.Context) {
	if t.cfg.RoleARN == "" {
		t.add(Check{Name: CheckAssumeRole, Status: Skip, Reason: "not needed: byok calls KMS as the platform's own principal, which the key policy names"})
		return
	}
	if !t.needs(CheckAssumeRole, CheckCredentials) {
		return
	}
	out, err := t.assume(ctx, t.cfg.ExternalID, t.cfg.sessionName())
	if err == nil {
		who := aws.ToString(out.AssumedRoleUser.Arn)
		t.report.Principal = who
		t.add(Check{Name: CheckAssumeRole, Status: Pass, Value: who,
			Reason: fmt.Sprintf("the platform assumed %s with the tenant's external id; the session expires %s and byok renews it", t.cfg.RoleARN, out.Credentials.Expiration.UTC().Format("2006-01-02 15:04 MST"))})
		return
	}
	ke := Classify("assume-role", t.cfg.RoleARN, err)
	c := Check{Name: CheckAssumeRole, Status: Fail, Value: string(ke.Reason), Reason: "STS refused AssumeRole: " + ke.Err.Error()}
	switch {
	case ke.Reason == kms.ReasonUnauthenticated && RequestIDOf(err) != "" && codeOf(err) == "AccessDenied":
		t.report.TrustPolicy = TrustPolicy(t.platform, t.cfg.ExternalID)
		c.Reason = fmt.Sprintf("the role %s does not let %s assume it with the external id byok generated for this tenant (%s): the role does not exist, its trust policy does not name the platform's principal, or its sts:ExternalId condition holds another value",
			t.cfg.RoleARN, t.platform, t.cfg.ExternalID)
		c.Remedy = fmt.Sprintf("in the IAM console, open Roles > %s > Trust relationships > Edit trust policy, and set it to the policy below (the external id must be exactly %s):\n%s",
			t.roleName(), t.cfg.ExternalID, t.report.TrustPolicy)
	case ke.Class == kms.Invalid:
		c.Remedy = "check the role ARN (IAM > Roles > the role > ARN)"
	case ke.Class == kms.Authoritative:
		c.Remedy = "the platform's own AWS credentials are refused: the platform operator fixes them"
	default:
		c.Remedy = "test again; STS may be throttling or unavailable"
	}
	t.add(c)
}

// checkExternalIDRequired assumes the role without an external id: a role
// that allows it can be used by anyone who learns its ARN and asks byok to
// (the confused deputy), so it fails.
func (t *tester) checkExternalIDRequired(ctx context.Context) {
	if t.cfg.RoleARN == "" {
		t.add(Check{Name: CheckExternalID, Status: Skip, Reason: "not needed: no role"})
		return
	}
	if !t.needs(CheckExternalID, CheckAssumeRole) {
		return
	}
	_, err := t.assume(ctx, "", "byok-test-configuration")
	switch {
	case err == nil:
		t.report.TrustPolicy = TrustPolicy(t.platform, t.cfg.ExternalID)
		t.add(Check{Name: CheckExternalID, Status: Fail, Value: "assumable without an external id",
			Reason: "the role's trust policy does not require the external id: another byok tenant that learns the role's ARN could have byok use your key",
			Remedy: fmt.Sprintf("in the IAM console, open Roles > %s > Trust relationships > Edit trust policy, and add the condition on sts:ExternalId:\n%s", t.roleName(), t.report.TrustPolicy)})
	case codeOf(err) == "AccessDenied":
		t.add(Check{Name: CheckExternalID, Status: Pass, Value: "required", Reason: "the role refuses to be assumed without the tenant's external id"})
	default:
		ke := Classify("assume-role", t.cfg.RoleARN, err)
		t.add(Check{Name: CheckExternalID, Status: Warn, Value: string(ke.Reason), Reason: "could not tell whether the role requires the external id: " + ke.Err.Error(),
			Remedy: "test again"})
	}
}

// codeOf returns the AWS error code in err's chain, or "".
func codeOf(err error) string {
	if ce := callError(err); ce != nil {
		return ce.Code
	}
	return ""
}
