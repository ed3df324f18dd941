package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// maxLoginForm bounds the login form's body.
const maxLoginForm = 8 << 10

// loginRoutes are the login form, its POST (both open) and logout (with
// the session it ends). Without auth (or over the unix socket) there is
// nothing to log in to.
func (s *Server) loginRoutes() []Route {
	form := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token == "" || trusted(r) {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		s.gui.Login(w, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
	})
	post := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token == "" || trusted(r) {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if r.Header.Get("Origin") != "" && !sameOrigin(r) {
			refuseOrigin(w, r)
			return
		}
		if left, locked := s.guesses.lockedOut(r); locked {
			secs := int(math.Ceil(left.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			s.gui.Login(w, http.StatusTooManyRequests, "/", fmt.Sprintf("too many wrong tokens from this address: wait %d s before trying again", secs))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
		if err := r.ParseForm(); err != nil {
			s.gui.Login(w, http.StatusBadRequest, "/", "could not read the form: "+err.Error())
			return
		}
		next := safeNext(r.PostFormValue("next"))
		if !equalToken(r.PostFormValue("token"), s.token) {
			s.log.Warn("GUI login refused", "remote", remote(r))
			s.guesses.failed(r)
			s.gui.Login(w, http.StatusUnauthorized, next, "wrong token: use the one in config/token of the server's data folder")
			return
		}
		s.guesses.succeeded(r)
		id, exp, err := s.sessions.create()
		if err != nil {
			s.gui.Login(w, http.StatusInternalServerError, next, "could not start a session: "+err.Error())
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: SessionCookie, Value: id, Path: "/", Expires: exp, MaxAge: int(time.Until(exp).Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		})
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
	logout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := sessionOf(r); id != "" {
			s.sessions.drop(id)
		}
		http.SetCookie(w, &http.Cookie{
			Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	return []Route{
		{Pattern: loginRoute, Policy: openRoute, Handler: form},
		{Pattern: loginPost, Policy: openRoute, Handler: post},
		{Pattern: logoutRoute, Policy: userRoute, Handler: logout},
	}
}
