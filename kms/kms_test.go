package kms_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/openbyok/byok/kms"
)

var sentinels = map[kms.Class]error{
	kms.Transient:     kms.ErrTransient,
	kms.Authoritative: kms.ErrAuthoritative,
	kms.Invalid:       kms.ErrInvalid,
}

func TestErrorIsMatchesOnlyTheSentinelOfItsClass(t *testing.T) {
	for class := range sentinels {
		err := &kms.Error{Op: "wrap", KeyID: "local:platform", Class: class, Reason: kms.ReasonDenied}
		for other, sentinel := range sentinels {
			if got, want := errors.Is(err, sentinel), other == class; got != want {
				t.Errorf("errors.Is(%s error, %v) = %v, want %v", class, sentinel, got, want)
			}
			wrapped := fmt.Errorf("tenant t1: %w", err)
			if got, want := errors.Is(wrapped, sentinel), other == class; got != want {
				t.Errorf("errors.Is(wrapped %s error, %v) = %v, want %v", class, sentinel, got, want)
			}
		}
	}
}

func TestErrorIsReachesTheProviderError(t *testing.T) {
	cause := errors.New("azure: 403 Forbidden")
	err := fmt.Errorf("check: %w", &kms.Error{Op: "unwrap", Class: kms.Authoritative, Reason: kms.ReasonDenied, Err: cause})
	if !errors.Is(err, cause) {
		t.Error("errors.Is does not reach the provider's error through Error.Unwrap")
	}
	if errors.Is(err, io.EOF) {
		t.Error("errors.Is matches an unrelated error")
	}
	var e *kms.Error
	if !errors.As(err, &e) {
		t.Fatal("errors.As does not find the *kms.Error")
	}
	if e.Op != "unwrap" || e.Reason != kms.ReasonDenied {
		t.Errorf("errors.As found %+v", e)
	}
}

func TestErrorIsWithoutClassMatchesNoSentinel(t *testing.T) {
	err := &kms.Error{Op: "wrap"}
	for _, sentinel := range sentinels {
		if errors.Is(err, sentinel) {
			t.Errorf("an error of class 0 matches %v", sentinel)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  *kms.Error
		want string
	}{
		{
			&kms.Error{Op: "unwrap", KeyID: "local:platform/v2", Class: kms.Invalid, Reason: kms.ReasonUnwrapFailed},
			"kms: unwrap local:platform/v2: unwrap-failed (invalid)",
		},
		{
			&kms.Error{Op: "wrap", KeyID: "k", Class: kms.Transient, Reason: kms.ReasonThrottled, Err: errors.New("429 Too Many Requests")},
			"kms: wrap k: throttled (transient): 429 Too Many Requests",
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestClassString(t *testing.T) {
	tests := map[kms.Class]string{
		kms.Transient:     "transient",
		kms.Authoritative: "authoritative",
		kms.Invalid:       "invalid",
		0:                 "Class(0)",
		9:                 "Class(9)",
	}
	for c, want := range tests {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestClassOfAndReasonOf(t *testing.T) {
	revoked := &kms.Error{Op: "unwrap", Class: kms.Authoritative, Reason: kms.ReasonDisabled}
	tests := []struct {
		name   string
		err    error
		class  kms.Class
		reason kms.Reason
	}{
		{"kms error", revoked, kms.Authoritative, kms.ReasonDisabled},
		{"wrapped kms error", fmt.Errorf("tenant t1: %w", revoked), kms.Authoritative, kms.ReasonDisabled},
		{"joined kms error", errors.Join(errors.New("other"), revoked), kms.Authoritative, kms.ReasonDisabled},
		{"first kms error in chain wins",
			&kms.Error{Class: kms.Invalid, Reason: kms.ReasonBadRequest, Err: revoked}, kms.Invalid, kms.ReasonBadRequest},
		{"plain error", errors.New("connection reset"), kms.Transient, kms.ReasonUnavailable},
		{"canceled", context.Canceled, kms.Transient, kms.ReasonCanceled},
		{"wrapped deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), kms.Transient, kms.ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kms.ClassOf(tt.err); got != tt.class {
				t.Errorf("ClassOf = %v, want %v", got, tt.class)
			}
			if got := kms.ReasonOf(tt.err); got != tt.reason {
				t.Errorf("ReasonOf = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestCtxError(t *testing.T) {
	if err := kms.CtxError(context.Background(), "wrap", "k"); err != nil {
		t.Fatalf("CtxError of a live ctx = %v, want nil", err)
	}

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()

	tests := []struct {
		name   string
		ctx    context.Context
		cause  error
		reason kms.Reason
	}{
		{"canceled", canceled, context.Canceled, kms.ReasonCanceled},
		{"deadline", expired, context.DeadlineExceeded, kms.ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := kms.CtxError(tt.ctx, "unwrap", "local:platform/v1")
			var e *kms.Error
			if !errors.As(err, &e) {
				t.Fatalf("CtxError = %v (%T), want *kms.Error", err, err)
			}
			if e.Op != "unwrap" || e.KeyID != "local:platform/v1" || e.Class != kms.Transient || e.Reason != tt.reason {
				t.Errorf("CtxError = %+v, want op unwrap, key local:platform/v1, transient, %s", e, tt.reason)
			}
			if !errors.Is(err, tt.cause) || !errors.Is(err, kms.ErrTransient) {
				t.Errorf("CtxError = %v: does not wrap %v and match ErrTransient", err, tt.cause)
			}
		})
	}
}

func TestOperationID(t *testing.T) {
	ctx := context.Background()
	if got := kms.OperationID(ctx); got != "" {
		t.Errorf("OperationID of a bare ctx = %q, want empty", got)
	}
	ctx = kms.WithOperationID(ctx, "evt-1")
	inner := kms.WithOperationID(ctx, "evt-2")
	if got := kms.OperationID(ctx); got != "evt-1" {
		t.Errorf("OperationID = %q, want evt-1", got)
	}
	if got := kms.OperationID(inner); got != "evt-2" {
		t.Errorf("OperationID of the inner ctx = %q, want evt-2", got)
	}
	type foreignKey struct{}
	other := context.WithValue(context.Background(), foreignKey{}, "evt-3")
	if got := kms.OperationID(other); got != "" {
		t.Errorf("OperationID reads a foreign ctx value: %q", got)
	}
}
