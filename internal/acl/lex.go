// Package acl reads the match expressions of OVN ACLs (the language of
// OVN's Logical_Flow match column, the subset kvm-compose.yaml accepts) and
// lowers them to a list of conjunctions of simple packet tests, which a
// firewall back end turns into rules: one rule per conjunction.
//
// The grammar, loosest binding first:
//
//	expr    = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | "(" expr ")" | atom
//	atom    = field [ op value ] | "1" | "0"
//	op      = "==" | "!=" | "<" | "<=" | ">" | ">="
//	value   = word | string | "{" value { "," value } "}"
//
// A field without a comparison is a protocol test (ip4, tcp, …); a value
// is an address or CIDR (quoted or not), a port number, or a port name.
package acl

import (
	"fmt"
	"strings"
)

// tokKind is the kind of a token.
type tokKind int

const (
	tokEOF    tokKind = iota
	tokWord           // ip4.src, 10.0.0.0/24, 80, fe80::1
	tokString         // '10.0.0.10' or "web"
	tokOp             // == != < <= > >= && || !
	tokLParen
	tokRParen
	tokLBrace
	tokRBrace
	tokComma
)

type token struct {
	kind tokKind
	text string // the value of a string, the text of anything else
	pos  int    // 1-based column of its first character
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "the end of the match"
	case tokString:
		return fmt.Sprintf("%q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// Error is a match that cannot be read: Token is what was found at column
// Pos (1-based, in bytes).
type Error struct {
	Pos   int
	Token string
	Msg   string
}

var _ error = (*Error)(nil)

func (e *Error) Error() string {
	return fmt.Sprintf("column %d: %s", e.Pos, e.Msg)
}

func errAt(t token, format string, args ...any) *Error {
	return &Error{Pos: t.pos, Token: t.text, Msg: fmt.Sprintf(format, args...)}
}

// isWord reports whether c may be part of a bare word: field names,
// numbers, IPv4 and IPv6 addresses and CIDRs, port names.
func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("._:/-", c) >= 0
}

// lex splits a match into tokens.
func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		pos := i + 1
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tokLParen, "(", pos})
			i++
		case c == ')':
			out = append(out, token{tokRParen, ")", pos})
			i++
		case c == '{':
			out = append(out, token{tokLBrace, "{", pos})
			i++
		case c == '}':
			out = append(out, token{tokRBrace, "}", pos})
			i++
		case c == ',':
			out = append(out, token{tokComma, ",", pos})
			i++
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, &Error{Pos: pos, Token: s[i:], Msg: fmt.Sprintf("the string %s is not closed", s[i:])}
			}
			out = append(out, token{tokString, s[i+1 : i+1+end], pos})
			i += end + 2
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") ||
			strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">=") ||
			strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			out = append(out, token{tokOp, s[i : i+2], pos})
			i += 2
		case c == '!' || c == '<' || c == '>':
			out = append(out, token{tokOp, s[i : i+1], pos})
			i++
		case isWord(c):
			j := i
			for j < len(s) && isWord(s[j]) {
				j++
			}
			out = append(out, token{tokWord, s[i:j], pos})
			i = j
		default:
			tok := s[i : i+1]
			if c == '&' || c == '|' || c == '=' {
				tok = string(c)
				return nil, &Error{Pos: pos, Token: tok, Msg: fmt.Sprintf("unexpected %q (write %s%s)", tok, tok, tok)}
			}
			return nil, &Error{Pos: pos, Token: tok, Msg: fmt.Sprintf("unexpected character %q", tok)}
		}
	}
	return append(out, token{kind: tokEOF, pos: len(s) + 1}), nil
}
