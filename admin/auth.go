package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
)

// Access is what a request may do in the console.
type Access int

// The access levels, in increasing order.
const (
	// AccessNone: the request is refused with 401 and a Basic auth challenge.
	AccessNone Access = iota
	// AccessRead: pages and GET endpoints; no buttons, 403 on every POST.
	AccessRead
	// AccessWrite: everything, including retry, replay, redrive and start/stop.
	AccessWrite
)

// String returns "none", "read" or "write".
func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessWrite:
		return "write"
	}
	return "none"
}

// Account is one user of BasicAuthAccounts.
type Account struct {
	User, Password string
	Access         Access
}

// BasicAuth returns an Authorize function that grants AccessWrite to requests with
// HTTP basic credentials user and password and AccessNone to every other request.
// The comparison takes constant time.
func BasicAuth(user, password string) func(*http.Request) Access {
	return BasicAuthAccounts(Account{User: user, Password: password, Access: AccessWrite})
}

// BasicAuthAccounts returns an Authorize function that grants each account its
// access when the request carries its HTTP basic credentials, and AccessNone
// otherwise. Every account is compared, in constant time, whatever matches.
func BasicAuthAccounts(accounts ...Account) func(*http.Request) Access {
	type hashed struct {
		user, pass [32]byte
		access     Access
	}
	list := make([]hashed, len(accounts))
	for i, a := range accounts {
		list[i] = hashed{sha256.Sum256([]byte(a.User)), sha256.Sum256([]byte(a.Password)), a.Access}
	}
	return func(r *http.Request) Access {
		u, p, ok := r.BasicAuth()
		if !ok {
			return AccessNone
		}
		hu, hp := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		granted := AccessNone
		for _, a := range list {
			match := subtle.ConstantTimeCompare(hu[:], a.user[:]) & subtle.ConstantTimeCompare(hp[:], a.pass[:])
			if match == 1 && granted == AccessNone {
				granted = a.access
			}
		}
		return granted
	}
}

func (h *handler) access(r *http.Request) Access {
	a := AccessWrite
	if h.opts.Authorize != nil {
		a = h.opts.Authorize(r)
	}
	if h.opts.ReadOnly && a > AccessRead {
		a = AccessRead
	}
	if a < AccessNone || a > AccessWrite {
		a = AccessNone
	}
	return a
}

type requestInfo struct {
	access Access
	base   string
}

type infoKey struct{}

func withRequestInfo(ctx context.Context, ri requestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, ri)
}

func info(r *http.Request) requestInfo {
	ri, _ := r.Context().Value(infoKey{}).(requestInfo)
	if ri.base == "" {
		ri.base = "/"
	}
	return ri
}

func itoa(n int) string { return strconv.Itoa(n) }
