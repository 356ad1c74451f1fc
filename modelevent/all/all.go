// Package all registers every store driver — sqlite, postgres and mysql: import it for
// its side effects when a program chooses its store by config, as the eventbus command
// does.
//
//	import _ "github.com/go-eventbus/eventbus/modelevent/all"
//
// A program with one store imports that driver's package alone (package bus already
// links sqlite, the embedded default).
package all

import (
	_ "github.com/go-eventbus/eventbus/modelevent/mysql"    // registers "mysql" (MySQL, MariaDB)
	_ "github.com/go-eventbus/eventbus/modelevent/postgres" // registers "postgres"
	_ "github.com/go-eventbus/eventbus/modelevent/sqlite"   // registers "sqlite"
)
