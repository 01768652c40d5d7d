package awsemu

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// identity is the principal a request was signed by.
type identity struct {
	arn     string // user ARN, or arn:aws:sts::<acct>:assumed-role/<role>/<session>
	account string
	roleARN string // the role of a session; "" for a user
	userID  string // GetCallerIdentity's UserId
}

// AccessKey is a long-term access key of a user.
type AccessKey struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
}

// sessionCreds are temporary credentials issued by AssumeRole.
type sessionCreds struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time
}

// credential is what an access key id resolves to.
type credential struct {
	secret  string
	token   string    // session token; "" for a long-term key
	expires time.Time // zero for a long-term key
	who     *identity
}

// role is an IAM role that AssumeRole can enter.
type role struct {
	arn     string
	account string
	name    string
	id      string // AROA…
	trust   *policy
}

// arnRE matches the IAM ARNs awsemu knows: users and roles (with paths).
var (
	userARNRE     = regexp.MustCompile(`^arn:aws:iam::(\d{12}):user/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	roleARNRE     = regexp.MustCompile(`^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	accountRE     = regexp.MustCompile(`^\d{12}$`)
)

// errInvalid marks an invalid control request.
var errInvalid = errors.New("awsemu: invalid")

// AddUser creates the IAM user arn (arn:aws:iam::<account>:user/<name>)
// if it does not exist, and gives it the access key k. An empty k.ID or
// k.Secret is generated. It returns the key.
func (e *Emulator) AddUser(arn string, k AccessKey) (AccessKey, error) {
	m := userARNRE.FindStringSubmatch(arn)
	if m == nil {
		return AccessKey{}, fmt.Errorf("%w: %q is not a user ARN such as arn:aws:iam::111122223333:user/byok", errInvalid, arn)
	}
	if k.ID == "" {
		k.ID = "AKIA" + randomID(16)
	}
	if k.Secret == "" {
		k.Secret = randomSecret(30)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.creds[k.ID]; ok {
		return AccessKey{}, fmt.Errorf("%w: access key %s exists", errInvalid, k.ID)
	}
	who := e.users[arn]
	if who == nil {
		who = &identity{arn: arn, account: m[1], userID: "AIDA" + randomID(17)}
		e.users[arn] = who
	}
	e.creds[k.ID] = &credential{secret: k.Secret, who: who}
	return k, nil
}

// RemoveAccessKey deletes an access key: requests signed with it then fail
// with UnrecognizedClientException.
func (e *Emulator) RemoveAccessKey(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.creds, id)
}

// PutRole creates the role arn, or replaces its trust policy (the JSON
// policy document AssumeRole evaluates with the action sts:AssumeRole and
// the condition key sts:ExternalId).
func (e *Emulator) PutRole(arn, trustPolicy string) error {
	m := roleARNRE.FindStringSubmatch(arn)
	if m == nil {
		return fmt.Errorf("%w: %q is not a role ARN such as arn:aws:iam::111122223333:role/byok", errInvalid, arn)
	}
	p, err := parsePolicy(trustPolicy)
	if err != nil {
		return fmt.Errorf("%w: trust policy of %s: %v", errInvalid, arn, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.roles[arn]
	if r == nil {
		r = &role{arn: arn, account: m[1], name: m[2], id: "AROA" + randomID(17)}
		e.roles[arn] = r
	}
	r.trust = p
	return nil
}

// DeleteRole deletes a role. Sessions already issued keep working until
// they expire, as in AWS.
func (e *Emulator) DeleteRole(arn string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.roles, arn)
}

// ExpireSessions ends every temporary credential now: the next request
// signed with one fails with ExpiredTokenException.
func (e *Emulator) ExpireSessions() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.creds {
		if c.token != "" {
			c.expires = e.now().Add(-time.Second)
		}
	}
}

// assumeRole checks the trust policy of roleARN for caller and issues a
// session; the error is an STS error code and message.
func (e *Emulator) assumeRole(caller *identity, roleARN, session, externalID string, d time.Duration) (*sessionCreds, *identity, *apiError) {
	denied := &apiError{status: 403, code: "AccessDenied",
		msg: fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.arn, roleARN)}
	if !sessionNameRE.MatchString(session) {
		return nil, nil, &apiError{status: 400, code: "ValidationError",
			msg: fmt.Sprintf("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", session)}
	}
	if d < 15*time.Minute || d > 12*time.Hour {
		return nil, nil, &apiError{status: 400, code: "ValidationError",
			msg: fmt.Sprintf("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", int(d.Seconds()))}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.roles[roleARN]
	if r == nil {
		return nil, nil, denied
	}
	ctx := map[string]string{"aws:PrincipalArn": principalARN(caller), "aws:PrincipalAccount": caller.account}
	if externalID != "" {
		ctx["sts:ExternalId"] = externalID
	}
	if r.trust.evaluate(request{caller: caller, action: "sts:AssumeRole", resource: roleARN, context: ctx}) != allowed {
		return nil, nil, denied
	}
	who := &identity{
		arn:     fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", r.account, r.name, session),
		account: r.account, roleARN: r.arn, userID: r.id + ":" + session,
	}
	c := &sessionCreds{AccessKeyID: "ASIA" + randomID(16), SecretAccessKey: randomSecret(30),
		SessionToken: "IQoJb3JpZ2luX2VjE" + randomSecret(120), Expires: e.now().Add(d).UTC().Truncate(time.Second)}
	e.creds[c.AccessKeyID] = &credential{secret: c.SecretAccessKey, token: c.SessionToken, expires: c.Expires, who: who}
	return c, who, nil
}

// principalARN is aws:PrincipalArn: a session's role ARN, else the ARN.
func principalARN(c *identity) string {
	if c.roleARN != "" {
		return c.roleARN
	}
	return c.arn
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

func randomSecret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b), "=")
}
