package sqlbackend_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/go-eventbus/eventbus/internal/testenv"
)

// isolatedName returns a lower-case name unique to this run, for a schema or database.
func isolatedName() string {
	return "eb_" + strings.ToLower(watermill.NewShortUUID())
}

// target is one database the tests run on.
type target struct {
	driver string
	dsn    func(testing.TB) string
}

var targets = []target{
	{driver: "postgres", dsn: testenv.FreshPostgres},
	{driver: "mysql", dsn: testenv.FreshMySQL},
}

// settings returns backend_settings for driver and dsn, fast polling for tests.
func settings(driver, dsn string, extra ...any) map[string]any {
	s := map[string]any{
		"driver":          driver,
		"dsn":             dsn,
		"poll_interval":   "10ms",
		"resend_interval": "50ms",
		"retry_interval":  "100ms",
		"connect_timeout": "5s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		s[fmt.Sprint(extra[i])] = extra[i+1]
	}
	return s
}
