// Package admin is the eventbus console: an http.Handler with a JSON API and
// server-rendered HTML pages over a control.Inspector — the events list and detail,
// an overview of throughput, failures, slow handlers and top errors, and the
// EventManager of consumer processes.
//
// Mount it under any prefix with http.StripPrefix, so that the handler sees paths
// relative to its own root:
//
//	mux.Handle("/events/", http.StripPrefix("/events", admin.New(insp, admin.Options{})))
//
// Links and the API are relative to the mount prefix, which the handler reads from
// the request (or Options.BasePath behind a proxy that strips it). Pages work without
// JavaScript for reading; with it they refresh live and run actions through the JSON
// API.
//
// Every request is authorized by Options.Authorize (BasicAuth is built in) to none,
// read or write access; Options.ReadOnly caps everyone at read. Every state-changing
// request must come from the same origin (net/http's CrossOriginProtection) and needs
// write access. Actions on events (retry, replay, redrive) and consumers (start,
// stop) run through the Inspector: directly when it has a live bus in this process,
// otherwise as commands a live bus process claims within its command poll interval,
// or as desired state it applies within a heartbeat.
package admin
