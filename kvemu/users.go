package kvemu

import "github.com/openbyok/byok/kvemu/internal/entra"

// Interactive sign-in to apps (OpenID Connect): users, redirect URIs and
// the faults that make ID tokens wrong on purpose.
type (
	// User is a person of a tenant who signs in through the authorize
	// endpoint's test sign-in form: name, user principal name, object id
	// (oid), tenant (tid), groups, app roles and an optional fault.
	User = entra.User
	// SignInFault is a deliberate defect of the ID tokens issued to a
	// user: wrong audience, expired, wrong nonce or a bad signature.
	SignInFault = entra.SignInFault
)

// The faults a [User] may carry.
const (
	FaultNone           = entra.FaultNone
	FaultWrongAudience  = entra.FaultWrongAudience
	FaultExpiredIDToken = entra.FaultExpiredIDToken
	FaultWrongNonce     = entra.FaultWrongNonce
	FaultBadSignature   = entra.FaultBadSignature
)

// CreateUser adds a user to its tenant; an empty ObjectID gets a new GUID.
func (e *Emulator) CreateUser(u User) (User, error) { return e.entra.CreateUser(u) }

// Users lists the users, ordered by user principal name.
func (e *Emulator) Users() []User { return e.entra.Users() }

// SetSignInFault sets (or, with FaultNone, clears) the fault of the ID
// tokens issued to a user named by object id or user principal name.
func (e *Emulator) SetSignInFault(user string, f SignInFault) error {
	return e.entra.SetSignInFault(user, f)
}

// AddRedirectURI registers a web redirect URI on an app: the authorize
// endpoint sends codes to registered URIs only.
func (e *Emulator) AddRedirectURI(clientID, uri string) error {
	return e.entra.AddRedirectURI(clientID, uri)
}

// RotateIDTokenKey makes a new ID token signing key; the JWKS publishes it
// with the previous one.
func (e *Emulator) RotateIDTokenKey() error { return e.entra.RotateIDTokenKey() }

// IDTokenKeyID returns the kid of the current ID token signing key.
func (e *Emulator) IDTokenKeyID() string { return e.entra.IDTokenKeyID() }
