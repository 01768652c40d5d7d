package postgres_test

import (
	"context"
	"errors"
	"log"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/store/postgres"
)

// Every replica opens the shared database and listens for the changes of
// the others; the one that changes a tenant's keys or scopes notifies.
func ExampleDB_Listen() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, "postgres://byok@db.internal:5432/byok?sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	var keyring *byok.Keyring // this replica's, built on db
	go func() {
		if err := db.Listen(ctx, keyring.Forget); err != nil && !errors.Is(err, context.Canceled) {
			log.Printf("cache invalidation stopped: %v", err)
		}
	}()

	// ... after changing the keys of tenant "acme" through db:
	if err := db.Notify(ctx, "acme"); err != nil {
		log.Print(err)
	}
}
