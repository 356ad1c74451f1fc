package middleware_test

// The tests keep their ModelEvents in SQLite stores opened without package bus.
import _ "github.com/go-eventbus/eventbus/modelevent/sqlite"
