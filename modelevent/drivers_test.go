package modelevent

// The tests run every store on all three databases.
import (
	_ "github.com/go-eventbus/eventbus/modelevent/mysql"
	_ "github.com/go-eventbus/eventbus/modelevent/postgres"
	_ "github.com/go-eventbus/eventbus/modelevent/sqlite"
)
