package control_test

// The tests run the control plane on SQLite too, opened without package bus.
import _ "github.com/go-eventbus/eventbus/modelevent/sqlite"
