package kms

import "context"

// Binding names what a wrapped value is for beyond the key that wraps it:
// byok's key kind ("customer-managed") and the epoch of the tenant key
// whose share it is. The keyring and the lifecycle put it on the context
// of every Wrap and Unwrap of a customer share ([WithBinding]). A provider
// that can bind data to a call binds it (AWS KMS in the encryption
// context, which the customer sees in CloudTrail), so that a share of one
// epoch or kind presented as another's is refused; others ignore it.
type Binding struct {
	Kind  string // letters, digits, '-' and '_'
	Epoch uint32
}

type bindingKey struct{}

// WithBinding returns ctx carrying b for the provider calls made under it.
func WithBinding(ctx context.Context, b Binding) context.Context {
	return context.WithValue(ctx, bindingKey{}, b)
}

// BindingOf returns the binding ctx carries, if any.
func BindingOf(ctx context.Context) (Binding, bool) {
	b, ok := ctx.Value(bindingKey{}).(Binding)
	return b, ok
}
